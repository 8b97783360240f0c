"""Typed training configuration: one dataclass per concern, defaults from the paper.

Every field is a ``motif train`` flag (dashed spelling accepted) and a YAML recipe key. The
optimisation fields (:class:`OptimArgs`) map one to one onto TRL's ``GRPOConfig``, which is
only built when a run starts (:mod:`motif.training.trl_args`), so ``--dry-run`` validates a
GPU recipe on a CPU machine offline.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from motif.carryover import strategy_classes
from motif.config import DECODE_DTYPES, ProtocolArgs, unused_options
from motif.data import REASONING_GYM_PREFIX
from motif.errors import ConfigError
from motif.tasks import TASK_KINDS
from motif.training.credit_schemes import CREDIT_SCHEMES, CreditScheme, credit_scheme
from motif.training.trajectory import LOSS_NORMS
from motif.training.trl_args import (  # noqa: F401 (check_choice .. resolve_bf16: public here)
    OptimArgs,
    check_choice,
    check_report_to,
    grpo_config,
    parse_bf16,
    resolve_bf16,
)

METHODS = ("motif", "grpo")
CREDITS = tuple(CREDIT_SCHEMES)
CREDIT_OPTIONS = tuple(dict.fromkeys(o for s in CREDIT_SCHEMES.values() for o in s.own_options))
"""The options only some credit scheme reads: saved only under that scheme."""
STRATEGY_OPTIONS = tuple(dict.fromkeys(o for cls in strategy_classes() for o in cls.own_options))
"""The options only some carry-over reads (``--tail-*``): saved only under that carry-over."""
PAPER_LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)


def unset_if_blank(value: str | None) -> str | None:
    """``""`` or ``none`` given for an optional path means "not set" (clears a recipe's value)."""
    if value is None or value.strip() == "" or value.strip().lower() == "none":
        return None
    return value


@dataclass
class RunArgs:
    """What to train, from where, into where."""

    method: str = field(
        default="motif",
        metadata={"help": "motif (n rounds, future-accuracy reward) or grpo (vanilla, 1 round)."},
    )
    model: str | None = field(
        default=None,
        metadata={
            "help": "Hub id or local checkpoint. Default: the offline SmolLM2-135M-Instruct."
        },
    )
    init_adapter: str | None = field(
        default=None,
        metadata={
            "help": 'LoRA adapter to start from (e.g. the `motif sft` cold start); "" or '
            "none clears a recipe's value (a new LoRA)."
        },
    )
    output_dir: str = field(default="runs/motif", metadata={"help": "The run directory."})
    resume: bool = field(
        default=False, metadata={"help": "Continue from the newest checkpoint in --output-dir."}
    )
    overwrite: bool = field(
        default=False, metadata={"help": "Delete an existing run in --output-dir first."}
    )
    dry_run: bool = field(
        default=False,
        metadata={"help": "Resolve and validate the config, print the plan; load nothing."},
    )
    dtype: str = field(
        default="auto", metadata={"help": "auto (fp32 on CPU, bf16 on CUDA), float32, bfloat16."}
    )
    trust_remote_code: bool = field(
        default=False, metadata={"help": "Allow model code from the hub."}
    )

    def __post_init__(self) -> None:
        self.model = unset_if_blank(self.model)
        self.init_adapter = unset_if_blank(self.init_adapter)
        _require(
            self.method in METHODS,
            f"--method must be one of {', '.join(METHODS)}; got {self.method!r}",
        )
        _require(
            not (self.resume and self.overwrite),
            "--resume and --overwrite exclude each other: resume a run, or start it again",
        )
        _require(
            self.dtype in ("auto", "float32", "bfloat16", "float16"),
            f"--dtype must be auto, float32, bfloat16 or float16; got {self.dtype!r}",
        )


@dataclass
class DataArgs:
    """The training questions and their gold answers."""

    dataset: str = field(
        default="gsm8k_train",
        metadata={
            "help": "Benchmark name (gsm8k_train), a local .jsonl/.parquet path, or "
            "reasoning_gym:<task>."
        },
    )
    data_dir: str | None = field(
        default=None, metadata={"help": "Directory with local JSONL copies of named data sets."}
    )
    question_field: str | None = field(
        default=None, metadata={"help": "Question column of a local file."}
    )
    answer_field: str | None = field(
        default=None, metadata={"help": "Gold answer column of a local file."}
    )
    dataset_size: int | None = field(
        default=None,
        metadata={
            "help": "Rows to use (reasoning-gym: how many to generate). Default: all / 1000."
        },
    )
    dataset_seed: int = field(default=0, metadata={"help": "Seed for generated tasks."})
    task_config: dict | str | None = field(
        default=None,
        metadata={"help": "reasoning-gym task options (YAML mapping or JSON string)."},
    )
    skip_bad_rows: bool = field(
        default=False,
        metadata={"help": "Skip rows with no question or gold (logged) instead of failing."},
    )

    def __post_init__(self) -> None:
        if isinstance(self.task_config, str):
            import json

            try:
                self.task_config = json.loads(self.task_config)
            except json.JSONDecodeError as exc:
                raise ConfigError(f"--task-config must be a JSON mapping: {exc}") from exc
        _require(
            self.dataset_size is None or self.dataset_size >= 1,
            f"--dataset-size must be >= 1; got {self.dataset_size}",
        )


@dataclass
class LoraArgs:
    """The LoRA adapter (paper: r=64, alpha 64, all projections)."""

    use_peft: bool = field(
        default=True,
        metadata={
            "help": "Train a LoRA adapter (TRL's use_peft); false: full fine-tuning, every weight "
            "of the policy trained (an --init-adapter is merged in first), and the run folder "
            "holds a whole model to evaluate with --model RUN."
        },
    )
    lora_r: int = field(default=64, metadata={"help": "LoRA rank."})
    lora_alpha: int = field(default=64, metadata={"help": "LoRA alpha."})
    lora_dropout: float = field(
        default=0.0, metadata={"help": "LoRA dropout (the reference states none; 0)."}
    )
    lora_target_modules: list[str] = field(
        default_factory=lambda: list(PAPER_LORA_TARGETS),
        metadata={"help": "Module names that get adapters."},
    )

    def __post_init__(self) -> None:
        _require(self.lora_r >= 1, f"--lora-r must be >= 1; got {self.lora_r}")
        _require(self.lora_alpha >= 1, f"--lora-alpha must be >= 1; got {self.lora_alpha}")
        _require(
            0 <= self.lora_dropout < 1, f"--lora-dropout must be in [0, 1); got {self.lora_dropout}"
        )
        _require(bool(self.lora_target_modules), "--lora-target-modules must name at least one")

    def peft_config(self) -> Any:
        """The ``peft.LoraConfig`` for a causal LM."""
        from peft import LoraConfig

        return LoraConfig(
            r=self.lora_r,
            lora_alpha=self.lora_alpha,
            lora_dropout=self.lora_dropout,
            target_modules=list(self.lora_target_modules),
            task_type="CAUSAL_LM",
        )


_MOTIF_CHOICES = {
    "round1_generation": ("motif", "trl"),
    "rollout_decode_dtype": DECODE_DTYPES,
    "scoring": ("default", "paper"),
    "format_rewards": ("fixed", "paper", "none"),
    "summary_rule": ("paper", "strict"),
    "trajectory_loss_norm": LOSS_NORMS,
}
"""MotifArgs' fields that take one of a few words, and those words."""


def _require_choice(args: Any, name: str, allowed: tuple[str, ...]) -> None:
    """ConfigError ``--name must be a, b or c; got 'x'`` unless the field is one of ``allowed``."""
    value = getattr(args, name)
    words = f"{', '.join(allowed[:-1])} or {allowed[-1]}"
    _require(value in allowed, f"--{name.replace('_', '-')} must be {words}; got {value!r}")


@dataclass
class MotifArgs(ProtocolArgs):
    """The multi-round protocol and the MOTIF reward (paper: n=3, k=4, T=0.8, top_p=0.95).

    A :class:`motif.config.ProtocolArgs` (its checks, its rounds rule, its ``protocol()`` and
    ``strategy()``) with training's defaults and help: ``rounds`` defaults to 3, and
    ``early_stop`` is no option (every round runs; it stays False).

    ``carry_over`` picks how a round-1 completion is continued by the reward (see
    docs/training.md): ``summary`` (the paper: rounds 2..n each a fresh chat carrying the
    previous ``<answer>``) or ``tail`` (Delethink, arXiv 2510.06557: round 1 is chunk 1 of one
    thought, the continuations write chunks 2..I of that same thought). Under ``tail`` the
    rounds are the chunks: ``rounds`` is set to ``tail_chunks``. ``none`` (one pass) is one
    round; with ``--method motif`` it is refused (:class:`TrainConfig`). ``credit`` picks the
    rounds GRPO trains: ``first`` (the paper), ``all`` (every round by its own future
    accuracy, :mod:`motif.training.credit`; ``summary`` carry-over and ``rounds >= 2`` only)
    or ``trajectory`` (every round with its trajectory's advantage,
    :mod:`motif.training.trajectory`); :mod:`motif.training.credit_schemes`.
    """

    rounds: int = field(  # type: ignore[assignment]  # always set here
        default=3,
        metadata={"help": "Rounds n (grpo always uses 1; --carry-over tail: --tail-chunks)."},
    )
    summary_rule: str = field(
        default="paper", metadata={"help": "What is carried between rounds: paper or strict."}
    )
    early_stop: bool = field(default=False, init=False)  # not an option: every round runs
    carry_over: str = field(
        default="summary",
        metadata={
            "help": "How the reward continues a round-1 completion: summary (MOTIF: rounds 2..n "
            "each see the question and the previous <answer>), tail (Delethink: round 1 is "
            "chunk 1 of one thought of --tail-chunk tokens, the continuations write chunks "
            "2..--tail-chunks of that same thought from its first --tail-head and last "
            "--tail-keep tokens), or none (one pass: use --method grpo)."
        },
    )
    k: int = field(
        default=4, metadata={"help": "Continuation trajectories per round-1 completion."}
    )
    continuation_temperature: float = field(
        default=0.8, metadata={"help": "Sampling temperature of rounds 2..n."}
    )
    continuation_top_p: float = field(default=0.95, metadata={"help": "top_p of rounds 2..n."})
    continuation_max_new_tokens: int = field(
        default=2048, metadata={"help": "Most tokens per continuation round (reference: 2048)."}
    )
    continuation_batch_size: int = field(
        default=64,
        metadata={"help": "Most sequences per continuation (and motif round-1) generate batch."},
    )
    round1_generation: str = field(
        default="motif",
        metadata={
            "help": "Who samples the trained replies: motif (motif's decode path through TRL's "
            "rollout_func hook: same distribution, shared prefill, finished rows dropped) or trl "
            "(model.generate). motif falls back to trl, and the plan says so, for settings it "
            "lacks: --min-p, --repetition-penalty other than 1, --generation-kwargs, --use-vllm."
        },
    )
    rollout_decode_dtype: str = field(
        default="auto",
        metadata={
            "help": "The dtype the transformers backend samples training rollouts in (round 1 "
            "under --round1-generation motif, the continuations, the held-out check): auto (a "
            "bf16 copy of a float32 policy where bf16 matmuls are faster; docs/decode.md), "
            "model (the policy's own dtype, which TRL scores in when --bf16 is false), or "
            "bfloat16. vLLM runs use vLLM's own dtype."
        },
    )
    accuracy_weight: float = field(
        default=2.0, metadata={"help": "Reward for a correct final answer (reference scale: 2)."}
    )
    scoring: str = field(
        default="default",
        metadata={
            "help": "default (math-verify on the boxed answer) or paper (the reference's "
            "substring score: 2 in <answer>, 1 elsewhere)."
        },
    )
    format_rewards: str = field(
        default="fixed",
        metadata={"help": "fixed (multi-line aware), paper (reference regexes) or none."},
    )
    credit: str = field(
        default="first",
        metadata={
            "help": "Which rounds GRPO trains: first (the paper: round-1 replies only), all "
            "(rounds 2..n too: a round-r group is m replies to one round-r state from the "
            "latest rollouts, each rewarded by the accuracy of k continuations from it; the "
            "last round by its own accuracy) or trajectory (every round or tail chunk of each "
            "sampled trajectory, with the trajectory's advantage from its final accuracy: "
            "Delethink, InftyThink+). docs/training.md."
        },
    )
    credit_first_share: float | None = field(
        default=None,
        metadata={
            "help": "--credit all: fraction of GRPO groups that answer fresh questions (round "
            "1); the others take rounds 2..n in turn. Default 1/n (every round alike)."
        },
    )
    credit_buffer: int = field(
        default=64,
        metadata={
            "help": "--credit all: round-r states kept per round (the newest, from the "
            "latest steps' rollouts) to draw round-r groups from."
        },
    )
    trajectory_loss_norm: str = field(
        default="trace",
        metadata={
            "help": "--credit trajectory: trace (Delethink's seq-mean-token-norm-trace-length: "
            "each trajectory weighs 1, its tokens 1/its total tokens) or token (InftyThink+: "
            "a plain average over all rounds' tokens)."
        },
    )
    efficiency_reward: bool = field(
        default=False,
        metadata={
            "help": "InftyThink+'s efficiency term (arXiv 2602.06960): each trajectory's "
            "accuracy reward times 1 - ((n-1)/phi)^2, n its rounds, phi --max-rounds; needs "
            "--round-end model."
        },
    )

    def __post_init__(self) -> None:
        _require(self.rounds >= 1, f"--rounds must be >= 1; got {self.rounds}")
        self.given_rounds = self.rounds  # not a field: for the plan's note when it is replaced
        if not self.carry_class().takes_rounds:
            self.rounds = None  # type: ignore[assignment]  # the strategy's own count
        super().__post_init__()  # carry-over, C, h, m, I checked; rounds resolved
        if self.efficiency_reward:
            self.carry_class().check_efficiency_reward()
        _require(self.k >= 1, f"--k must be >= 1; got {self.k}")
        _require(
            self.continuation_temperature >= 0,
            f"--continuation-temperature must be >= 0; got {self.continuation_temperature}",
        )
        _require(
            0 < self.continuation_top_p <= 1,
            f"--continuation-top-p must be in (0, 1]; got {self.continuation_top_p}",
        )
        _require(
            self.continuation_max_new_tokens >= 1, "--continuation-max-new-tokens must be >= 1"
        )
        _require(self.continuation_batch_size >= 1, "--continuation-batch-size must be >= 1")
        for name, allowed in _MOTIF_CHOICES.items():
            _require_choice(self, name, allowed)
        self._check_credit()

    def _check_credit(self) -> None:
        credit_scheme(self.credit)  # a known name
        share = self.credit_first_share
        _require(
            share is None or 0 < share < 1,
            f"--credit-first-share must be in (0, 1) (round 1 makes the states the other "
            f"rounds start from); got {share}",
        )
        _require(self.credit_buffer >= 1, f"--credit-buffer must be >= 1; got {self.credit_buffer}")

    def credit_scheme(self) -> type[CreditScheme]:
        """The :class:`motif.training.credit_schemes.CreditScheme` ``--credit`` names."""
        return credit_scheme(self.credit)

    def first_share(self) -> float:
        """``--credit all``: the share of groups that train round 1 (default ``1/rounds``)."""
        return self.credit_first_share or 1.0 / self.rounds

    def accuracy_reward_weight(self) -> float:
        """The reward of a right final answer: 2.0 under ``--scoring paper`` (the reference's
        2 / 1 / 0), else ``--accuracy-weight``."""
        return 2.0 if self.scoring == "paper" else self.accuracy_weight

    def round1_budget(self, given: int) -> tuple[int, str | None]:
        """(round 1's new-token budget, the option that sets it) when the carry-over sets it
        itself (``tail``: round 1 is chunk 1, ``--tail-chunk`` tokens); else ``(given, None)``:
        ``--max-completion-length`` (``given``) sets it."""
        carry = self.strategy()
        if not carry.sets_budgets:
            return given, None
        return carry.max_new_tokens(1, given, None), carry.largest_budget(given, None)[1]


@dataclass
class WatchArgs:
    """The held-out check during training (:mod:`motif.training.watch`): greedy rollouts of
    unseen items of the training task with the current policy, logged with the step's metrics."""

    heldout_every: int = field(
        default=0,
        metadata={
            "help": "Every this many optimiser steps (and after the last), roll out "
            "--heldout-size held-out items greedily with the current policy and log "
            "heldout/accuracy, /step_accuracy, /skipped_steps, ...; 0 = off. Needs --dataset "
            "reasoning_gym:<task> of a task motif checks (chain_sum, basic_arithmetic, "
            "letter_counting)."
        },
    )
    heldout_size: int = field(
        default=32,
        metadata={
            "help": "Held-out items per check (seed: --dataset-seed + 1000003, never a "
            "training question); split over the processes."
        },
    )

    def __post_init__(self) -> None:
        _require(
            self.heldout_every >= 0,
            f"--heldout-every must be >= 0 (0 = no held-out check); got {self.heldout_every}",
        )
        _require(self.heldout_size >= 1, f"--heldout-size must be >= 1; got {self.heldout_size}")


@dataclass
class TrainConfig:
    """Everything ``motif train`` needs, grouped by concern."""

    run: RunArgs
    data: DataArgs
    lora: LoraArgs
    motif: MotifArgs
    optim: OptimArgs
    watch: WatchArgs = field(default_factory=WatchArgs)

    def __post_init__(self) -> None:
        self.notes: list[str] = []  # settings derived from others, for the plan
        self._check_credit()  # first: a credit that needs rounds names itself
        self._check_carry_over()
        self._check_watch()
        self.notes += filter(None, self._unused())
        self.notes += self.motif.credit_scheme().adjust(self)
        if self.run.method == "grpo" and self.motif.rounds != 1:
            self.motif.rounds = 1  # vanilla GRPO is single-round by definition
        given = self.optim.max_completion_length
        budget, option = self.motif.round1_budget(given)
        if option is not None and budget != given:  # tail: round 1 is chunk 1, of C tokens
            self.optim.max_completion_length = budget
            unit = self.motif.strategy().unit
            self.notes.append(
                f"--max-completion-length {given} replaced by {option} {budget} "
                f"(--carry-over {self.motif.carry_over}: round 1 is {unit} 1)"
            )

    def _unused(self) -> list[str | None]:
        """Notes for options set away from their defaults that this run does not use (a
        recipe shared by several arms may set them; the plan says so)."""
        m, notes = self.motif, []
        if self.run.method == "grpo":
            names = ("rounds",) if m.rounds != 1 else ()  # grpo's own 1 is no note
            names += ("k", "continuation_temperature", "continuation_top_p")
            names += ("continuation_max_new_tokens", "summary_rule")
            notes.append(unused_options(m, names, "--method grpo answers in one round"))
        notes.append(m.unused_tail())
        carry = m.strategy()
        if not carry.takes_rounds and self.run.method == "motif" and m.given_rounds != 3:
            if carry.later_rounds:
                rounds = f"{carry.rounds_option} sets the {carry.unit}s"
            else:
                rounds = carry.label(1)
            notes.append(
                f"--rounds {m.given_rounds}: not used (--carry-over {m.carry_over}: {rounds})"
            )
        if m.scoring == "paper":
            why = "--scoring paper gives the reference's 2 / 1 / 0"
            notes.append(unused_options(m, ("accuracy_weight",), why))
        for scheme in CREDIT_SCHEMES.values():
            if scheme.name != m.credit and scheme.own_options:
                why = f"they apply to --credit {scheme.name}"
                notes.append(unused_options(m, scheme.own_options, why))
        notes.append(self._unused_rollout_dtype())
        notes.append(self._round1_fallback())
        names = ("lora_r", "lora_alpha", "lora_dropout", "lora_target_modules")
        if not self.lora.use_peft:
            why = "--use-peft false: full fine-tuning"
            notes.append(unused_options(self.lora, names, why))
        elif self.run.init_adapter is not None:
            why = f"--init-adapter {self.run.init_adapter} brings its own LoRA settings"
            notes.append(unused_options(self.lora, names, why))
        if not self.optim.use_vllm:
            names = ("vllm_mode", "vllm_gpu_memory_utilization", "vllm_server_host")
            names += ("vllm_server_port",)
            notes.append(unused_options(self.optim, names, "--use-vllm is off"))
        if self.watch.heldout_every == 0:
            why = "the held-out check is off: --heldout-every 0"
            notes.append(unused_options(self.watch, ("heldout_size",), why))
        return notes

    def _unused_rollout_dtype(self) -> str | None:
        """A note when no rollout runs on the transformers backend: vLLM generates, or GRPO
        leaves round 1 to TRL and the held-out check is off."""
        trl_round1 = self.run.method == "grpo" and self.motif.round1_generation == "trl"
        if self.optim.use_vllm:
            why = "--use-vllm samples in vLLM's own dtype"
        elif trl_round1 and self.watch.heldout_every == 0:
            why = "TRL samples round 1 (--round1-generation trl) and nothing else is rolled out"
        else:
            return None
        return unused_options(self.motif, ("rollout_decode_dtype",), why)

    def _round1_fallback(self) -> str | None:
        """A note when ``--round1-generation motif`` must leave round 1 to TRL's generate."""
        o = self.optim
        if self.motif.round1_generation != "motif" or o.use_vllm:
            return None
        lacks = [
            f"--min-p {o.min_p}" if o.min_p is not None else "",
            f"--repetition-penalty {o.repetition_penalty}" if o.repetition_penalty != 1 else "",
            "--generation-kwargs" if o.generation_kwargs else "",
        ]
        if not any(lacks):
            return None
        given = ", ".join(filter(None, lacks))
        return f"round 1 is sampled by TRL's generate, not motif's decode path ({given})"

    def _check_credit(self) -> None:
        """What the credit scheme refuses (:meth:`CreditScheme.check`)."""
        self.motif.credit_scheme().check(self)

    def _check_watch(self) -> None:
        """``--heldout-every`` needs held-out items whose work :mod:`motif.tasks` can check."""
        if self.watch.heldout_every == 0:
            return

        dataset = self.data.dataset
        task = dataset[len(REASONING_GYM_PREFIX) :]
        _require(
            dataset.startswith(REASONING_GYM_PREFIX) and task in TASK_KINDS,
            f"--heldout-every draws held-out items of the training task and checks their "
            f"steps, which motif can do for --dataset "
            f"{', '.join(REASONING_GYM_PREFIX + t for t in TASK_KINDS)}; got --dataset "
            f"{dataset} (use one of those, or --heldout-every 0)",
        )

    def _check_carry_over(self) -> None:
        """The carry-over must fit the method: ``tail`` continues, ``none`` never does."""
        method, carry = self.run.method, self.motif.strategy()
        _require(
            not (method == "motif" and not carry.later_rounds),
            "--carry-over none is one pass with nothing for the future-accuracy reward to "
            "continue: use --method grpo (the one-pass baseline) or --carry-over summary/tail",
        )
        _require(
            not (method == "grpo" and carry.continues_turn),
            "--carry-over tail continues round 1 in chunks, which --method grpo never does: "
            "use --method motif, or --carry-over none for the one-pass baseline",
        )
        _require(
            not (method == "grpo" and carry.round_end != "budget"),
            f"--round-end {carry.round_end} lets the model end its rounds, and --method grpo "
            "answers in one: use --method motif, or drop --round-end",
        )
        options = ("--max-completion-length", "--continuation-max-new-tokens")
        later = self.motif.continuation_max_new_tokens
        carry.check_budgets(self.optim.max_completion_length, later, options)

    def to_dict(self) -> dict[str, Any]:
        """The resolved configuration, flat (as a recipe would write it).

        The ``tail_*`` options only under ``carry_over: tail``, ``carry_over`` only when it
        is not ``summary``, and the ``credit*`` options only under ``credit: all``: they do not
        shape a step otherwise, and the saved config and run identity of a run from before
        these options existed stay the same (``--resume`` works); likewise each scheme's own
        options (``trajectory_loss_norm``) only under it. The ``heldout_*`` options
        only when the check is on (they never shape a step: not part of the run identity).
        """
        flat: dict[str, Any] = {}
        for part in (self.run, self.data, self.lora, self.motif, self.optim, self.watch):
            flat.update(asdict(part))
        del flat["early_stop"]  # ProtocolArgs' field, not an option of training
        if self.watch.heldout_every == 0:
            for key in ("heldout_every", "heldout_size"):
                del flat[key]
        carry = self.motif.strategy()
        for key in STRATEGY_OPTIONS:
            if key not in carry.own_options:
                del flat[key]
        if carry.legacy:  # runs from before --carry-over were this strategy's
            del flat["carry_over"]
        scheme = self.motif.credit_scheme()
        for key in CREDIT_OPTIONS:
            if key not in scheme.own_options:
                del flat[key]
        if scheme.legacy:  # runs from before --credit were this scheme's
            del flat["credit"]
        if not self.motif.efficiency_reward:  # runs from before it existed had none
            del flat["efficiency_reward"]
        if self.lora.use_peft:  # runs from before full fine-tuning were LoRA runs
            del flat["use_peft"]
        return flat


CONFIG_TYPES = (RunArgs, DataArgs, LoraArgs, MotifArgs, OptimArgs, WatchArgs)
