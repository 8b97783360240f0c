"""The optimisation options of ``motif train`` and how they become TRL's ``GRPOConfig``.

:class:`OptimArgs` fields map one to one onto ``trl.GRPOConfig``, which is only built when a
run starts (:func:`grpo_config`), so ``--dry-run`` validates a GPU recipe on a CPU machine
offline. The checks shared with ``motif sft`` live here too: ``bf16`` parsing and resolution
(:func:`parse_bf16`, :func:`resolve_bf16`), transformers enum choices (:func:`check_choice`)
and reporting integrations (:func:`check_report_to`). Nothing heavy is imported at import
time: torch, transformers and TRL only inside the functions that need them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from motif.compat import checkpointing_keyword
from motif.errors import ConfigError
from motif.textio import clip


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)


def parse_bf16(value: Any, flag: str = "--bf16") -> bool | str:
    """``auto`` (the default), or an explicit true/false (YAML bools and their strings)."""
    if value is None:
        return "auto"
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    table = {"auto": "auto", "true": True, "yes": True, "1": True}
    table.update({"false": False, "no": False, "0": False})
    if text not in table:
        raise ConfigError(f"{flag} must be auto, true or false; got {value!r}")
    return table[text]


def resolve_bf16(value: bool | str, use_cuda: bool) -> tuple[bool, str]:
    """(bf16 mixed precision on?, why) for a ``bf16`` setting on this machine.

    ``auto`` turns it on only where bf16 is faster than fp32, measured on CPUs
    (:func:`motif.backends.fast.bf16_training_is_fast`: CUDA with bf16 support; CPUs with AMX
    tiles, or whose measured bf16 GEMM rate is at least 1.3x fp32 — AVX512-BF16 CPUs are, CPUs
    without bf16 units run bf16 slower).
    """
    if value is not True and value is not False and value != "auto":
        value = parse_bf16(value)
    if value is True or value is False:
        return value, "set in the config"
    from motif.backends.fast import (
        bf16_training_is_fast,  # torch and transformers: loaded only when a model runs
    )

    fast, why = bf16_training_is_fast("cuda" if use_cuda else "cpu")
    return fast, f"auto: {why}"


@dataclass
class OptimArgs:
    """GRPO optimisation (paper values); each maps onto the ``GRPOConfig`` field of that name."""

    learning_rate: float = field(default=5e-6, metadata={"help": "Peak learning rate."})
    adam_beta1: float = field(default=0.9, metadata={"help": "Adam beta1."})
    adam_beta2: float = field(default=0.99, metadata={"help": "Adam beta2."})
    weight_decay: float = field(default=0.1, metadata={"help": "Weight decay."})
    warmup_ratio: float = field(
        default=0.1,
        metadata={"help": "Warm-up: a fraction of the steps if < 1, else a number of steps."},
    )
    lr_scheduler_type: str = field(default="cosine", metadata={"help": "Learning-rate schedule."})
    max_grad_norm: float = field(default=0.1, metadata={"help": "Gradient clipping norm."})
    beta: float = field(default=0.0, metadata={"help": "KL coefficient (paper: 0, no KL)."})
    loss_type: str = field(
        default="grpo", metadata={"help": "TRL loss type (grpo = the per-sequence GRPO loss)."}
    )
    optim: str = field(
        default="adamw_torch",
        metadata={
            "help": "Optimiser (the reference used 8-bit AdamW: adamw_8bit needs bitsandbytes)."
        },
    )
    prompts_per_device: int = field(
        default=1,
        metadata={
            "help": "Questions per device per step (the paper's per-device batch 1); TRL's "
            "per_device_train_batch_size is this x num_generations."
        },
    )
    gradient_accumulation_steps: int = field(default=1, metadata={"help": "Accumulation steps."})
    micro_batches: int = field(
        default=1,
        metadata={
            "help": "Split each step's replies on a device into this many micro-batches, one "
            "forward and backward each, gradients accumulated (less memory, the same questions, "
            "optimiser steps and loss; must divide prompts_per_device x num_generations). TRL's "
            "per_device_train_batch_size is then prompts_per_device x num_generations / this, "
            "its gradient_accumulation_steps and steps_per_generation this x "
            "gradient_accumulation_steps."
        },
    )
    num_generations: int = field(
        default=8, metadata={"help": "Round-1 completions m per question."}
    )
    max_completion_length: int = field(
        default=1024, metadata={"help": "Most tokens of a round-1 completion."}
    )
    temperature: float = field(default=0.9, metadata={"help": "Round-1 sampling temperature."})
    top_p: float = field(default=1.0, metadata={"help": "Round-1 top_p."})
    top_k: int = field(default=0, metadata={"help": "Round-1 top_k; 0 = off (TRL's default)."})
    min_p: float | None = field(
        default=None,
        metadata={
            "help": "Round-1 min_p (TRL's flag); set, round 1 is sampled by TRL's own "
            "generation (--round1-generation trl)."
        },
    )
    repetition_penalty: float = field(
        default=1.0,
        metadata={
            "help": "Round-1 repetition penalty (TRL's flag; 1 = none); other than 1, round 1 is "
            "sampled by TRL's own generation."
        },
    )
    generation_kwargs: dict | str | None = field(
        default=None,
        metadata={
            "help": "More round-1 generate() options, a YAML mapping or JSON string (TRL's "
            "flag); set, round 1 is sampled by TRL's own generation."
        },
    )
    max_steps: int = field(default=1000, metadata={"help": "Optimiser steps."})
    save_steps: int = field(default=100, metadata={"help": "Checkpoint every this many steps."})
    save_total_limit: int | None = field(default=None, metadata={"help": "Keep at most this many."})
    logging_steps: int = field(default=1, metadata={"help": "Log metrics every this many steps."})
    seed: int = field(default=42, metadata={"help": "Training seed."})
    bf16: str = field(
        default="auto",
        metadata={
            "help": "bf16 mixed precision: true, false, or auto (on only where bf16 matrix "
            "products are faster: CUDA with bf16, CPUs with AMX)."
        },
    )
    gradient_checkpointing: bool = field(
        default=False,
        metadata={"help": "Save activation memory (transformers' activation_checkpointing)."},
    )
    use_vllm: bool = field(default=False, metadata={"help": "Generate with vLLM (TRL's flag)."})
    vllm_mode: str = field(
        default="colocate", metadata={"help": "colocate or server (TRL's flag)."}
    )
    vllm_gpu_memory_utilization: float = field(
        default=0.3, metadata={"help": "GPU memory share of colocated vLLM."}
    )
    vllm_server_host: str = field(default="0.0.0.0", metadata={"help": "vLLM server host."})
    vllm_server_port: int = field(default=8000, metadata={"help": "vLLM server port."})
    report_to: str = field(default="tensorboard", metadata={"help": "tensorboard, wandb or none."})

    def __post_init__(self) -> None:
        self.bf16 = parse_bf16(self.bf16)  # type: ignore[assignment]
        self.generation_kwargs = _mapping("--generation-kwargs", self.generation_kwargs)
        _require(
            self.num_generations >= 2,
            f"--num-generations must be >= 2 (GRPO needs a group to compare); got {self.num_generations}",
        )
        _require(self.prompts_per_device >= 1, "--prompts-per-device must be >= 1")
        replies = self.prompts_per_device * self.num_generations
        _require(
            self.micro_batches >= 1 and replies % self.micro_batches == 0,
            f"--micro-batches must divide the {replies} replies per step and device "
            f"(--prompts-per-device {self.prompts_per_device} x --num-generations "
            f"{self.num_generations}); got {self.micro_batches}",
        )
        _require(self.max_steps >= 1, f"--max-steps must be >= 1; got {self.max_steps}")
        _require(self.save_steps >= 1, f"--save-steps must be >= 1; got {self.save_steps}")
        _require(self.learning_rate > 0, f"--learning-rate must be > 0; got {self.learning_rate}")
        _require(self.max_completion_length >= 1, "--max-completion-length must be >= 1")
        _require(self.vllm_mode in ("colocate", "server"), "--vllm-mode must be colocate or server")
        self._check_ranges()

    def _check_ranges(self) -> None:
        """Values TRL or torch would reject only once training starts (after the run dir is
        written), or accept silently although they are meaningless."""
        _require(
            self.temperature > 0,
            f"--temperature must be > 0 (GRPO samples a group of round-1 completions; TRL "
            f"refuses 0); got {self.temperature}",
        )
        _require(0 < self.top_p <= 1, f"--top-p must be in (0, 1]; got {self.top_p}")
        _require(self.top_k >= 0, f"--top-k must be >= 0 (0 = off); got {self.top_k}")
        _require(
            self.min_p is None or 0 <= self.min_p <= 1,
            f"--min-p must be in [0, 1]; got {self.min_p}",
        )
        _require(
            self.repetition_penalty > 0,
            f"--repetition-penalty must be > 0 (1 = none); got {self.repetition_penalty}",
        )
        _require(self.beta >= 0, f"--beta (the KL coefficient) must be >= 0; got {self.beta}")
        for name in ("adam_beta1", "adam_beta2"):
            value = getattr(self, name)
            _require(0 <= value < 1, f"--{name.replace('_', '-')} must be in [0, 1); got {value}")
        _require(self.weight_decay >= 0, f"--weight-decay must be >= 0; got {self.weight_decay}")
        _require(self.warmup_ratio >= 0, f"--warmup-ratio must be >= 0; got {self.warmup_ratio}")
        _require(self.max_grad_norm > 0, f"--max-grad-norm must be > 0; got {self.max_grad_norm}")

    def to_grpo_kwargs(self, output_dir: str, use_cuda: bool) -> dict[str, Any]:
        """Keyword arguments for ``trl.GRPOConfig``, with every drifting default set explicitly.

        ``bf16: auto`` is resolved by :func:`resolve_bf16`; ``gradient_checkpointing`` is passed
        under the installed transformers' name for it (:func:`motif.compat.checkpointing_keyword`).
        """
        kwargs = asdict(self)
        prompts = kwargs.pop("prompts_per_device")
        split = kwargs.pop("micro_batches")
        kwargs.pop("bf16")
        # transformers 5 folds the warm-up ratio into warmup_steps (a float < 1 is a ratio).
        kwargs["warmup_steps"] = kwargs.pop("warmup_ratio")
        kwargs[checkpointing_keyword()] = kwargs.pop("gradient_checkpointing")
        kwargs.update(
            output_dir=output_dir,
            # one generation batch of prompts x m replies, split into `split` micro-batches
            per_device_train_batch_size=prompts * self.num_generations // split,
            gradient_accumulation_steps=self.gradient_accumulation_steps * split,
            steps_per_generation=self.gradient_accumulation_steps * split,
            bf16=resolve_bf16(self.bf16, use_cuda)[0],
            use_cpu=not use_cuda,
            report_to=[] if self.report_to == "none" else [self.report_to],
            save_strategy="steps",
            remove_unused_columns=False,
            log_completions=False,
        )
        if not self.use_vllm:
            for key in (
                "vllm_mode",
                "vllm_gpu_memory_utilization",
                "vllm_server_host",
                "vllm_server_port",
            ):
                kwargs.pop(key)
        return kwargs


def _mapping(flag: str, value: Any) -> dict | None:
    """A mapping option given as a YAML mapping or a JSON string; None stays None."""
    if value is None or isinstance(value, dict):
        return value
    import json

    try:
        parsed = json.loads(value)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{flag} must be a JSON mapping: {exc}") from None
    _require(isinstance(parsed, dict), f"{flag} must be a JSON mapping; got {value!r}")
    return parsed


def check_choice(flag: str, value: str, choices: Any) -> None:
    """``value`` must name a member of the transformers enum ``choices`` (as the run checks)."""
    try:
        choices(value)
    except ValueError:
        names = ", ".join(str(c.value) for c in choices)
        raise ConfigError(f"{flag} {value!r} is not one of: {names}") from None


def check_report_to(flag: str, report_to: str) -> None:
    """``report_to`` must name a transformers reporting integration that is installed."""
    if report_to == "none":
        return
    from transformers.integrations import get_reporting_integration_callbacks

    try:
        callbacks = get_reporting_integration_callbacks([report_to])
        for callback in callbacks:
            callback()  # checks that the integration's package is installed; writes nothing
    except (ValueError, RuntimeError, ImportError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"{flag} {report_to!r}: {first}") from None


def trl_loss_types() -> list[str]:
    """The loss types TRL's ``GRPOConfig`` documents as supported (its field's help text)."""
    import re

    from trl import GRPOConfig

    help_text = GRPOConfig.__dataclass_fields__["loss_type"].metadata.get("help", "")
    listed = help_text.split("Supported values are", 1)[-1].split(".", 1)[0]
    return re.findall(r"'([a-z_]+)'", listed)


def grpo_config(optim: OptimArgs, output_dir: str, use_cuda: bool) -> Any:
    """``trl.GRPOConfig`` of the run, every option value checked first (one-line errors).

    The schedule and optimiser names are checked against transformers' own enums, the loss
    type against TRL's documented list, ``report_to`` by building its callback; anything
    else ``GRPOConfig`` rejects becomes a :class:`ConfigError` too.
    """
    from transformers.trainer_utils import SchedulerType
    from transformers.training_args import OptimizerNames
    from trl import GRPOConfig

    check_choice("--lr-scheduler-type", optim.lr_scheduler_type, SchedulerType)
    check_choice("--optim", optim.optim, OptimizerNames)
    losses = trl_loss_types()
    _require(
        not losses or optim.loss_type in losses,
        f"--loss-type {optim.loss_type!r} is not one of: {', '.join(losses)}",
    )
    check_report_to("--report-to", optim.report_to)
    try:
        return GRPOConfig(**optim.to_grpo_kwargs(output_dir, use_cuda))
    except (ValueError, TypeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"TRL rejects the optimisation settings: {clip(first, 300)}") from None
