"""The cold start: supervised LoRA warm-up on demonstrations that split the work (``motif sft``).

Small models do not write the protocol's tags on their own, so every reward of the paper's
protocol is 0 and GRPO groups carry no signal. ``motif sft`` fine-tunes a LoRA adapter with
TRL's ``SFTTrainer`` on demonstrations written by :mod:`motif.training.demos` from a task's
own answers, loss on the completion only: ``summary`` one conversational prompt-completion row
per round; ``tail`` one token-id row per chunk of the thought (:func:`demos.tail_rows`). The
saved adapter is the ``--init-adapter`` of ``motif train``, for both methods alike.

Before any model loads, the demonstrations are checked with the model's tokenizer: every round
gets a share of the work, every round fits the per-round budget (``--eval-max-new-tokens``;
``tail``: every thought fits the ``--tail-*`` window) and every row fits ``--max-length``.

The output directory holds the adapter (``adapter_config.json``, ``adapter_model.safetensors``),
the tokenizer, ``motif_config.yaml`` (the resolved configuration) and ``sft_metrics.json``
(training numbers and, with ``eval_size > 0``, the held-out check of :mod:`.heldout`).
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from motif.config import TAIL_OPTIONS, ModelArgs, ProtocolArgs, unused_options
from motif.errors import ConfigError
from motif.outdir import OutputDir
from motif.tasks import check_task_config
from motif.textio import clip
from motif.training.config import LoraArgs, parse_bf16
from motif.training.demos import SUPPORTED_TASKS
from motif.training.heldout import evaluate_adapter, format_report  # noqa: F401 (public here)
from motif.training.sft_rows import (  # noqa: F401 (public here, as before the split)
    Format,
    build_rows,
    check_demonstrations,
    check_extra_carry_over,
    demo_round_counts,
    formats,
    total_steps,
    training_rows,
)

logger = logging.getLogger(__name__)

CONFIG_FILE = "motif_config.yaml"
METRICS_FILE = "sft_metrics.json"
REPORT_TO = ("none", "tensorboard", "wandb")


@dataclass
class SftArgs:
    """The demonstrations, the optimisation and the run directory of a cold start."""

    output_dir: str | None = field(
        default=None, metadata={"help": "Where the adapter, tokenizer and config are saved."}
    )
    overwrite: bool = field(
        default=False, metadata={"help": "Delete an existing non-empty --output-dir first."}
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
        if isinstance(self.extra_rounds, (int, str)):
            self.extra_rounds = str(self.extra_rounds).split(",")
        counts = [str(r).strip() for r in self.extra_rounds or []]
        if not all(c.isascii() and c.isdecimal() and int(c) >= 1 for c in counts):
            raise ConfigError(f"--extra-rounds must be round counts >= 1; got {self.extra_rounds}")
        self.extra_rounds = [int(c) for c in counts] if self.extra_rounds is not None else None
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
        if self.sft.extra_rounds and self.protocol.carry_over != "summary":
            raise ConfigError(
                f"--extra-rounds demonstrates other round counts of --carry-over summary; "
                f"drop it with --carry-over {self.protocol.carry_over}"
            )
        check_extra_carry_over(self.sft.extra_carry_over, self.protocol.carry_over)
        why = "they apply to tail demonstrations: --carry-over tail or --extra-carry-over tail"
        unused = (
            None if self.demonstrates_tail() else unused_options(self.protocol, TAIL_OPTIONS, why)
        )
        self.notes: list[str] = [unused] if unused else []  # for the plan and the log

    def demonstrates_tail(self) -> bool:
        """Some demonstrations are Delethink tail chunks (the ``--tail-*`` options apply)."""
        return self.protocol.carry_over == "tail" or "tail" in (self.sft.extra_carry_over or [])

    def to_dict(self) -> dict[str, Any]:
        """The resolved configuration, flat (as a recipe would write it)."""
        flat: dict[str, Any] = {}
        for part in (self.sft, self.model, self.protocol, self.lora):
            flat.update(asdict(part))
        for key in ("dry_run", "overwrite", "adapter", "eval_base"):
            flat.pop(key, None)
        return flat


@dataclass
class SftChecked:
    """The outcome of :func:`check_sft`: what a run needs, found without loading a model."""

    blocks: list[tuple[Format, list[dict]]]
    output: OutputDir | None
    bf16: tuple[bool, str]
    model: str
    trainer_args: Any

    @property
    def rows(self) -> list[dict]:
        """Every demonstration row, format by format."""
        return [row for _, rows in self.blocks for row in rows]


def check_sft(config: SftConfig) -> SftChecked:
    """Check everything that can be checked before a model loads; deletes and writes nothing.

    Option values are checked by building TRL's ``SFTConfig`` (and the reporting callback) as
    the run does; also the model path, the LoRA settings, the demonstrations and the output
    directory. ``--dry-run`` runs exactly this.
    """
    from motif.models import check_model
    from motif.outdir import check_output_dir
    from motif.training.config import resolve_bf16

    use_cuda = _uses_cuda(config.model.device)
    args = sft_trainer_config(config, use_cuda)
    model = check_model(config.model.model)
    config.lora.peft_config()  # validates the LoRA settings
    blocks = check_demonstrations(config)
    output = None
    if config.sft.output_dir and not config.sft.eval_base:
        output = check_output_dir(config.sft.output_dir, kind="sft", overwrite=config.sft.overwrite)
    return SftChecked(blocks, output, resolve_bf16(config.sft.bf16, use_cuda), model, args)


def _uses_cuda(device: str) -> bool:
    import torch

    return device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())


def sft_trainer_config(config: SftConfig, use_cuda: bool) -> Any:
    """TRL ``SFTConfig`` with every drifting default set explicitly."""
    from transformers.trainer_utils import SchedulerType
    from trl import SFTConfig

    from motif.training.config import check_choice, check_report_to, resolve_bf16

    sft = config.sft
    check_choice("--lr-scheduler-type", sft.lr_scheduler_type, SchedulerType)
    check_report_to("--report-to", sft.report_to)
    try:
        return _sft_config(SFTConfig, config, use_cuda, resolve_bf16(sft.bf16, use_cuda)[0])
    except (ValueError, TypeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"TRL rejects the SFT settings: {clip(first, 300)}") from None


def _sft_config(cls: Any, config: SftConfig, use_cuda: bool, bf16: bool) -> Any:
    sft = config.sft
    return cls(
        output_dir=str(sft.output_dir),
        num_train_epochs=sft.epochs,
        max_steps=sft.max_steps,
        learning_rate=sft.learning_rate,
        lr_scheduler_type=sft.lr_scheduler_type,
        warmup_steps=sft.warmup_steps,
        weight_decay=sft.weight_decay,
        per_device_train_batch_size=sft.per_device_batch_size,
        gradient_accumulation_steps=sft.gradient_accumulation_steps,
        max_length=sft.max_length,
        completion_only_loss=True,
        assistant_only_loss=False,
        packing=False,
        activation_checkpointing=sft.gradient_checkpointing,
        bf16=bf16,
        fp16=False,
        use_cpu=not use_cuda,
        optim="adamw_torch",
        seed=sft.seed,
        data_seed=sft.seed,
        logging_steps=sft.logging_steps,
        report_to=[] if sft.report_to == "none" else [sft.report_to],
        save_strategy="no",
        disable_tqdm=True,
        dataloader_num_workers=0,
    )


def load_base(config: SftConfig) -> tuple[Any, Any]:
    """(model, tokenizer) to train: fp32 master weights unless a dtype is forced."""
    from motif.models import load_model

    args = config.model
    dtype = "float32" if args.dtype == "auto" else args.dtype
    model, tokenizer = load_model(args.model, None, dtype, args.device, args.trust_remote_code)
    drop_gguf_marker(model)
    model.train()
    return model, tokenizer


def drop_gguf_marker(model: Any) -> None:
    """Unflag a plain checkpoint converted from GGUF so the Trainer accepts it.

    The converted default checkpoint keeps ``quantization_config: gguf`` in its config
    although its weights are plain floats; transformers then refuses to train it.
    """
    quantizer = getattr(model, "hf_quantizer", None)
    method = getattr(getattr(quantizer, "quantization_config", None), "quant_method", None)
    if quantizer is None or str(getattr(method, "value", method)).lower() != "gguf":
        return
    if not all(p.is_floating_point() for p in model.parameters()):
        return
    model.hf_quantizer = None
    if "is_quantized" in vars(model):
        model.is_quantized = False
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config


def peft_config(config: SftConfig, model: Any) -> Any:
    """The LoRA config, limited to the last ``lora_last_layers`` layers when set."""
    lora = config.lora.peft_config()
    last = config.sft.lora_last_layers
    if last:
        layers = int(model.config.get_text_config().num_hidden_layers)
        if last > layers:
            raise ConfigError(f"--lora-last-layers {last} exceeds the model's {layers} layers")
        lora = replace(lora, layers_to_transform=list(range(layers - last, layers)))
    return lora


def run_sft(config: SftConfig, checked: SftChecked | None = None) -> dict[str, Any]:
    """Train the cold-start adapter and save it; returns the metrics written to the run dir.

    Everything is checked (:func:`check_sft`) and the trainer built (model loaded) before an
    old run is deleted (``--overwrite``) or anything is written.
    """
    from datasets import Dataset
    from trl import SFTTrainer

    sft = config.sft
    checked = checked or check_sft(config)
    if checked.output is None:
        raise ConfigError("--output-dir is required (where the adapter is saved)")
    from motif.compat import library_deprecations

    model, tokenizer = load_base(config)
    with library_deprecations():  # peft reads a deprecated transformers property
        trainer = SFTTrainer(
            model=model,
            args=checked.trainer_args,
            train_dataset=Dataset.from_list(training_rows(checked.rows)),
            processing_class=tokenizer,
            peft_config=peft_config(config, model),
        )
    from motif.training.console import train_with_console, use_console

    use_console(trainer, "motif sft")
    out = checked.output.claim()
    start = time.perf_counter()
    with library_deprecations():
        result = train_with_console(trainer)
    train_seconds = time.perf_counter() - start
    trainer.save_model(str(out))
    tokenizer.save_pretrained(str(out))
    _write_config(out, config)
    metrics = _train_metrics(config, len(checked.rows), result, train_seconds)
    metrics["rows_seen"] = rows_seen(config, len(checked.rows), metrics["steps"], trainer.args)
    metrics["bf16"], metrics["bf16_reason"] = checked.bf16
    if sft.eval_size > 0:
        metrics["held_out"] = evaluate_adapter(config, str(out))
    (out / METRICS_FILE).write_text(json.dumps(metrics, indent=2) + "\n")
    return metrics


def _write_config(out: Path, config: SftConfig) -> None:
    import yaml

    (out / CONFIG_FILE).write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))


def rows_seen(config: SftConfig, rows: int, steps: int, args: Any) -> int:
    """Demonstration rows the optimiser went through: ``steps`` batches of
    ``per_device_batch_size x gradient_accumulation_steps x processes`` rows, at most
    ``rows x epochs`` (a last batch may be short; ``--max-steps`` may stop before)."""
    sft = config.sft
    per_step = sft.per_device_batch_size * sft.gradient_accumulation_steps
    per_step *= int(getattr(args, "world_size", 1) or 1)
    return int(min(steps * per_step, math.ceil(rows * sft.epochs)))


def _train_metrics(config: SftConfig, rows: int, result: Any, seconds: float) -> dict[str, Any]:
    return {
        "task": config.sft.task,
        "carry_over": config.protocol.carry_over,
        "rounds": config.protocol.rounds,
        "demonstrated_rounds": demo_round_counts(config),
        "demonstrated": [f.label for f in formats(config)],
        "problems": config.sft.num_examples,
        "rows": rows,
        "steps": int(result.global_step),
        "train_loss": float(result.training_loss),
        "train_seconds": round(seconds, 1),
    }
