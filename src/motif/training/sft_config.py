"""The configuration of a cold start (``motif sft``): its options, checked as they are read.

:class:`SftArgs` (the demonstrations, the optimisation, the run directory) and
:class:`SftConfig` (those with the model, protocol and LoRA options). Its own module so that
the rows (:mod:`.sft_rows`), the held-out check (:mod:`.heldout`) and the run
(:mod:`.sft`) all import it downward.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from motif.carryover import carry_over_class
from motif.config import TAIL_OPTIONS, ModelArgs, ProtocolArgs, unused_options
from motif.errors import ConfigError
from motif.tasks import check_task_config
from motif.training.config import LoraArgs, parse_bf16
from motif.training.demos import SUPPORTED_TASKS

REPORT_TO = ("none", "tensorboard", "wandb")
EXTRA_CARRY_OVERS = ("tail", "none")
"""What ``--extra-carry-over`` may add to a ``--carry-over summary`` cold start."""


def check_extra_carry_over(values: list[str] | None, carry_over: str) -> None:
    """Raise a one-line :class:`ConfigError` for a bad ``--extra-carry-over``."""
    for value in values or []:
        if value not in EXTRA_CARRY_OVERS:
            raise ConfigError(
                f"--extra-carry-over takes {' or '.join(EXTRA_CARRY_OVERS)}; got {value!r}"
            )
    if values and not carry_over_class(carry_over).hands_state:
        raise ConfigError(
            f"--extra-carry-over adds formats to a --carry-over summary cold start; drop it "
            f"with --carry-over {carry_over} (or train that strategy with --carry-over summary "
            f"--extra-carry-over {carry_over})"
        )


@dataclass
class SftArgs:
    """The demonstrations, the optimisation and the run directory of a cold start."""

    output_dir: str | None = field(
        default=None, metadata={"help": "Where the adapter, tokenizer and config are saved."}
    )
    overwrite: bool = field(
        default=False, metadata={"help": "Delete an existing non-empty --output-dir first."}
    )
    save_steps: int = field(
        default=0,
        metadata={
            "help": "Checkpoint every this many optimiser steps (0: none), so that a run "
            "stopped part way continues with --resume. The last checkpoint is removed once "
            "sft_metrics.json is written."
        },
    )
    resume: bool = field(
        default=False,
        metadata={
            "help": "Continue the run in --output-dir from its last checkpoint (it must have "
            "been started with --save-steps and the same settings)."
        },
    )
    dry_run: bool = field(
        default=False,
        metadata={"help": "Validate the config and print the plan and a sample; load no model."},
    )
    task: str = field(
        default="chain_sum",
        metadata={"help": f"reasoning-gym task to demonstrate: {', '.join(SUPPORTED_TASKS)}."},
    )
    task_config: dict | str | None = field(
        default=None,
        metadata={
            "help": "reasoning-gym task options (YAML mapping or JSON string). The knob "
            "min_terms/max_terms (chain sums) or min_words/max_words (letter_counting), 1 to "
            "1000, scales the work of an item linearly."
        },
    )
    num_examples: int = field(
        default=256,
        metadata={"help": "Task items demonstrated; each gives one training row per round."},
    )
    data_seed: int = field(default=0, metadata={"help": "Seed of the demonstrated items."})
    extra_rounds: list[int] | None = field(
        default=None,
        metadata={
            "help": "Also demonstrate the same items with these round counts (e.g. [1]: the "
            "vanilla single-round prompt), so one cold start serves single-round GRPO and "
            "n-round MOTIF alike. The held-out check uses --rounds."
        },
    )
    extra_carry_over: list[str] | None = field(
        default=None,
        metadata={
            "help": "Also demonstrate the same items in these carry-over strategies (tail: the "
            "chunks of one thought in the --tail-* window; none: one pass), so one cold start "
            "serves every arm of a bounded-context comparison (motif eval --grid). Needs "
            "--carry-over summary; the held-out check uses --carry-over."
        },
    )
    extra_round_end: list[str] | None = field(
        default=None,
        metadata={
            "help": "Also demonstrate the --rounds summary rounds with these round ends (model: "
            "rounds the model ends, InftyThink's prompts, at most phi = --rounds, the last "
            "concluding), so one cold start also serves an arm trained with --round-end model. "
            "Needs --carry-over summary with --round-end budget."
        },
    )
    epochs: float = field(default=1.0, metadata={"help": "Passes over the demonstrations."})
    max_steps: int = field(
        default=-1, metadata={"help": "Stop after this many optimiser steps (-1: use --epochs)."}
    )
    learning_rate: float = field(default=2e-4, metadata={"help": "Peak learning rate (LoRA)."})
    lr_scheduler_type: str = field(default="cosine", metadata={"help": "Learning-rate schedule."})
    warmup_steps: float = field(
        default=0.05, metadata={"help": "Warm-up: steps, or a fraction of all steps if < 1."}
    )
    weight_decay: float = field(default=0.0, metadata={"help": "AdamW weight decay."})
    per_device_batch_size: int = field(default=8, metadata={"help": "Rows per device per step."})
    gradient_accumulation_steps: int = field(default=1, metadata={"help": "Accumulation steps."})
    max_length: int = field(
        default=1024, metadata={"help": "Longest tokenized row (prompt + completion)."}
    )
    lora_last_layers: int = field(
        default=0,
        metadata={
            "help": "Put LoRA on the last N transformer layers only (0: all). The backward "
            "pass then stops at layer N from the top: much cheaper on a CPU."
        },
    )
    gradient_checkpointing: bool = field(
        default=False, metadata={"help": "Trade compute for activation memory."}
    )
    bf16: str = field(
        default="auto",
        metadata={
            "help": "bf16 autocast: true, false, or auto (on only where bf16 matrix products "
            "are faster: CUDA with bf16, CPUs with AMX)."
        },
    )
    seed: int = field(default=42, metadata={"help": "Training seed (shuffling, LoRA init)."})
    logging_steps: int = field(default=5, metadata={"help": "Log every this many steps."})
    report_to: str = field(default="none", metadata={"help": "none, tensorboard or wandb."})
    eval_size: int = field(
        default=0,
        metadata={"help": "Held-out items to roll out greedily after training (0: skip)."},
    )
    eval_base: bool = field(
        default=False,
        metadata={
            "help": "Train nothing: run the held-out check (--eval-size items) on the base "
            "model and print it, for a before/after comparison."
        },
    )
    eval_max_new_tokens: int = field(
        default=128,
        metadata={
            "help": "Per-round budget in new tokens: every demonstrated round must fit it "
            "(summary, none; tail rounds are the --tail-* window) and the held-out check "
            "generates at most this many per round."
        },
    )

    def __post_init__(self) -> None:
        self.bf16 = parse_bf16(self.bf16)  # type: ignore[assignment]
        if isinstance(self.task_config, str):
            try:
                self.task_config = json.loads(self.task_config)
            except json.JSONDecodeError as exc:
                raise ConfigError(f"--task-config must be a JSON mapping: {exc}") from exc
        if self.task_config is not None and not isinstance(self.task_config, dict):
            raise ConfigError(f"--task-config must be a mapping; got {self.task_config!r}")
        if self.task not in SUPPORTED_TASKS:
            raise ConfigError(
                f"--task {self.task!r} has no demonstration writer; "
                f"use one of {', '.join(SUPPORTED_TASKS)}"
            )
        check_task_config(self.task, self.task_config)
        if isinstance(self.extra_carry_over, str):
            self.extra_carry_over = [x.strip() for x in self.extra_carry_over.split(",")]
        if isinstance(self.extra_round_end, str):
            self.extra_round_end = [x.strip() for x in self.extra_round_end.split(",")]
        if isinstance(self.extra_rounds, (int, str)):
            self.extra_rounds = str(self.extra_rounds).split(",")
        counts = [str(r).strip() for r in self.extra_rounds or []]
        if not all(c.isascii() and c.isdecimal() and int(c) >= 1 for c in counts):
            raise ConfigError(f"--extra-rounds must be round counts >= 1; got {self.extra_rounds}")
        self.extra_rounds = [int(c) for c in counts] if self.extra_rounds is not None else None
        if self.resume and self.overwrite:
            raise ConfigError(
                "--resume and --overwrite exclude each other: resume a run, or start it again"
            )
        if self.eval_base and self.eval_size < 1:
            raise ConfigError("--eval-base needs --eval-size >= 1 (how many held-out items)")
        for name, ok, rule in self._checks():
            if not ok:
                value = getattr(self, name)
                raise ConfigError(f"--{name.replace('_', '-')} must be {rule}; got {value!r}")

    def _checks(self) -> list[tuple[str, bool, str]]:
        return [
            ("num_examples", self.num_examples >= 1, ">= 1"),
            ("epochs", self.epochs > 0, "> 0"),
            ("max_steps", self.max_steps == -1 or self.max_steps >= 1, ">= 1, or -1 for --epochs"),
            ("learning_rate", self.learning_rate > 0, "> 0"),
            ("warmup_steps", self.warmup_steps >= 0, ">= 0"),
            ("weight_decay", self.weight_decay >= 0, ">= 0"),
            ("per_device_batch_size", self.per_device_batch_size >= 1, ">= 1"),
            ("gradient_accumulation_steps", self.gradient_accumulation_steps >= 1, ">= 1"),
            ("max_length", self.max_length >= 16, ">= 16"),
            ("logging_steps", self.logging_steps >= 1, ">= 1"),
            ("save_steps", self.save_steps >= 0, ">= 0 (0: no checkpoints)"),
            ("report_to", self.report_to in REPORT_TO, " or ".join(REPORT_TO)),
            ("lora_last_layers", self.lora_last_layers >= 0, ">= 0 (0: every layer)"),
            ("eval_size", self.eval_size >= 0, ">= 0"),
            ("eval_max_new_tokens", self.eval_max_new_tokens >= 1, ">= 1"),
        ]


@dataclass
class SftConfig:
    """Everything ``motif sft`` needs, grouped by concern."""

    sft: SftArgs
    model: ModelArgs
    protocol: ProtocolArgs
    lora: LoraArgs

    def __post_init__(self) -> None:
        if self.model.adapter is not None:
            raise ConfigError("--adapter is not used by motif sft: it trains a new LoRA adapter")
        if self.model.backend == "vllm":
            raise ConfigError(
                "--backend vllm is not used by motif sft: it trains, and runs its held-out "
                "check, with transformers; drop --backend"
            )
        if not (self.sft.dry_run or self.sft.eval_base) and not self.sft.output_dir:
            raise ConfigError("--output-dir is required (where the adapter is saved)")
        if self.sft.extra_rounds and not carry_over_class(self.protocol.carry_over).hands_state:
            raise ConfigError(
                f"--extra-rounds demonstrates other round counts of --carry-over summary; "
                f"drop it with --carry-over {self.protocol.carry_over}"
            )
        check_extra_carry_over(self.sft.extra_carry_over, self.protocol.carry_over)
        self._check_extra_round_end()
        self._check_model_ended()
        why = "they apply to tail demonstrations: --carry-over tail or --extra-carry-over tail"
        unused = (
            None if self.demonstrates_tail() else unused_options(self.protocol, TAIL_OPTIONS, why)
        )
        self.notes: list[str] = [unused] if unused else []  # for the plan and the log

    def _check_extra_round_end(self) -> None:
        """``--extra-round-end``: round ends other than ``budget`` that apply to the
        ``--carry-over`` (summary), beside budget-ended rounds."""
        for value in self.sft.extra_round_end or []:
            if value == "budget":
                raise ConfigError("--extra-round-end takes model; budget-ended rounds are --rounds")
            carry_over_class(self.protocol.carry_over, "--carry-over", value)  # applies?
            if self.protocol.round_end == value:
                raise ConfigError(
                    f"--extra-round-end {value}: --round-end {value} already demonstrates it; "
                    f"drop one"
                )

    def _check_model_ended(self) -> None:
        """``--round-end model``: every demonstrated round fits the stated smallest cap, and
        every ``--extra-rounds`` count concludes within phi (``--max-rounds``)."""
        carry = self.protocol.carry_class()
        carry.check_budgets(self.sft.eval_max_new_tokens, None, ("--eval-max-new-tokens", ""))
        if carry.round_end != "model":
            return
        over = [r for r in self.sft.extra_rounds or [] if r > self.protocol.rounds]
        if over:
            raise ConfigError(
                f"--extra-rounds {over[0]} is more rounds than --max-rounds {self.protocol.rounds}"
                f" (phi, the cap) allows: use --extra-rounds up to {self.protocol.rounds}, or "
                f"--max-rounds {over[0]}"
            )

    def demonstrates_tail(self) -> bool:
        """Some demonstrations are Delethink tail chunks (the ``--tail-*`` options apply)."""
        names = [self.protocol.carry_over, *(self.sft.extra_carry_over or [])]
        return any(carry_over_class(name).continues_turn for name in names)

    def to_dict(self) -> dict[str, Any]:
        """The resolved configuration, flat (as a recipe would write it)."""
        flat: dict[str, Any] = {}
        for part in (self.sft, self.model, self.protocol, self.lora):
            flat.update(asdict(part))
        for key in ("dry_run", "overwrite", "resume", "adapter", "eval_base"):
            flat.pop(key, None)
        return flat
