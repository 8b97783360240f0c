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
the tokenizer, ``motif_config.yaml`` (the resolved configuration), ``run_identity.json`` (what
``--resume`` must find unchanged, as :mod:`.rundir` writes it for ``motif train``) and
``sft_metrics.json`` (training numbers and, with ``eval_size > 0``, the held-out check of
:mod:`.heldout`). With ``--save-steps N`` a ``checkpoint-N`` folder (Transformers' Trainer:
adapter, optimiser, scheduler, RNG states) is kept while the run lasts, so that a run stopped
part way continues with ``--resume``; it is removed once ``sft_metrics.json`` is written.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import shutil
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from motif import identity as weights_identity  # through the module: tests replace it
from motif import models
from motif.compat import checkpointing_keyword, library_deprecations
from motif.errors import ConfigError
from motif.outdir import OutputDir, check_output_dir
from motif.runs.layout import CHECKPOINT_GLOB, SFT_METRICS_FILE, checkpoint_step
from motif.textio import clip
from motif.training.config import check_choice, check_report_to, resolve_bf16
from motif.training.console import train_with_console, use_console
from motif.training.heldout import evaluate_adapter, format_report  # noqa: F401 (public here)
from motif.training.rundir import resume_hint, resume_point, run_identity, start_run
from motif.training.sft_config import SftConfig
from motif.training.sft_rows import (  # noqa: F401 (public here, as before the split)
    Format,
    build_rows,
    check_demonstrations,
    demo_round_counts,
    formats,
    total_steps,
    training_rows,
)

logger = logging.getLogger(__name__)

METRICS_FILE = SFT_METRICS_FILE
NOT_IN_IDENTITY = (
    "eval_size",
    "eval_max_new_tokens",
    "backend",
    "max_batch_size",
    "decode",
    "decode_dtype",
    "context_overflow",
    "early_stop",
)
"""Options of a cold start that change no training step, only the held-out check after it
(the demonstrations they could shape are in the identity as rows), on top of
:data:`.rundir.NOT_IDENTITY`: they may differ when a run is resumed."""


@dataclass
class SftChecked:
    """The outcome of :func:`check_sft`: what a run needs, found without loading a model."""

    blocks: list[tuple[Format, list[dict]]]
    output: OutputDir | None
    bf16: tuple[bool, str]
    model: str
    trainer_args: Any
    identity: dict | None = None
    resume_from: Path | None = None

    @property
    def rows(self) -> list[dict]:
        """Every demonstration row, format by format."""
        return [row for _, rows in self.blocks for row in rows]


def check_sft(config: SftConfig) -> SftChecked:
    """Check everything that can be checked before a model loads; deletes and writes nothing.

    Option values are checked by building TRL's ``SFTConfig`` (and the reporting callback) as
    the run does; also the model path, the LoRA settings, the demonstrations, the output
    directory and, with ``--resume``, the run's identity and last checkpoint. ``--dry-run``
    runs exactly this.
    """
    sft = config.sft
    use_cuda = _uses_cuda(config.model.device)
    args = sft_trainer_config(config, use_cuda)
    model = models.check_model(config.model.model)
    config.lora.peft_config()  # validates the LoRA settings
    blocks = check_demonstrations(config)
    bf16 = resolve_bf16(sft.bf16, use_cuda)
    checked = SftChecked(blocks, None, bf16, model, args)
    if sft.output_dir and not sft.eval_base:
        checked.output = check_output_dir(
            sft.output_dir,
            kind="sft",
            overwrite=sft.overwrite,
            resume=sft.resume,
            resume_hint=resume_hint(sft.output_dir),
        )
        checked.identity = sft_identity(config, bf16[0], checked.rows)
        if sft.resume:
            checked.resume_from = resume_point(checked.output.path, checked.identity, added={})
    return checked


def sft_identity(config: SftConfig, bf16: bool, rows: list[dict]) -> dict:
    """What ``--resume`` must find unchanged: the settings that shape a step (not
    :data:`NOT_IN_IDENTITY`), the base model's weights and the demonstration rows (sha256)."""
    settings = {**config.to_dict(), "bf16": bf16}
    settings = {k: v for k, v in settings.items() if k not in NOT_IN_IDENTITY}
    data = hashlib.sha256(json.dumps(training_rows(rows), sort_keys=True).encode()).hexdigest()
    return run_identity(settings, config.model.model, None, data)


def _uses_cuda(device: str) -> bool:
    import torch  # heavy: the other functions of this module and `motif --help` do without

    return device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())


def sft_trainer_config(config: SftConfig, use_cuda: bool) -> Any:
    """TRL ``SFTConfig`` with every drifting default set explicitly."""
    from transformers.trainer_utils import SchedulerType  # heavy: only where TRL is configured
    from trl import SFTConfig

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
        **{checkpointing_keyword(): sft.gradient_checkpointing},  # named by release (compat)
        bf16=bf16,
        fp16=False,
        use_cpu=not use_cuda,
        optim="adamw_torch",
        seed=sft.seed,
        data_seed=sft.seed,
        logging_steps=sft.logging_steps,
        report_to=[] if sft.report_to == "none" else [sft.report_to],
        save_strategy="steps" if sft.save_steps else "no",
        save_steps=sft.save_steps or 500,  # read only with save_strategy "steps"
        save_total_limit=1,  # resuming needs only the last
        disable_tqdm=True,
        dataloader_num_workers=0,
    )


def load_base(config: SftConfig) -> tuple[Any, Any]:
    """(model, tokenizer) to train: fp32 master weights unless a dtype is forced."""
    args = config.model
    dtype = "float32" if args.dtype == "auto" else args.dtype
    model, tokenizer = models.load_model(
        args.model, None, dtype, args.device, args.trust_remote_code
    )
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
    old run is deleted (``--overwrite``) or anything is written. With ``--resume`` training
    continues from the checkpoint :func:`check_sft` found (``train_seconds`` then counts this
    sitting only; ``resumed_from`` names the step).
    """
    sft = config.sft
    checked = checked or check_sft(config)
    if checked.output is None:
        raise ConfigError("--output-dir is required (where the adapter is saved)")
    trainer, tokenizer = build_sft_trainer(config, checked)
    # read again once loaded: the default model converted from its GGUF, or a hub model
    # downloaded, by this load is fingerprinted as a resume will find it
    checked.identity["model_weights"] = weights_identity.model_fingerprint(config.model.model)
    out = checked.output.claim()
    resume_from = checked.resume_from
    start_run(out, config.to_dict(), checked.identity, checked.bf16, resume_from)
    start = time.perf_counter()
    with library_deprecations():
        result = train_with_console(
            trainer, resume_from_checkpoint=str(resume_from) if resume_from else None
        )
    seconds = time.perf_counter() - start
    trainer.save_model(str(out))
    tokenizer.save_pretrained(str(out))
    metrics = _train_metrics(config, checked, result, seconds, trainer.args)
    if sft.eval_size > 0:
        metrics["held_out"] = evaluate_adapter(config, str(out))
    (out / METRICS_FILE).write_text(json.dumps(metrics, indent=2) + "\n")
    for done in out.glob(CHECKPOINT_GLOB):  # resume points of a run now finished and recorded
        shutil.rmtree(done)
    return metrics


def rows_seen(config: SftConfig, rows: int, steps: int, args: Any) -> int:
    """Demonstration rows the optimiser went through: ``steps`` batches of
    ``per_device_batch_size x gradient_accumulation_steps x processes`` rows, at most
    ``rows x epochs`` (a last batch may be short; ``--max-steps`` may stop before)."""
    sft = config.sft
    per_step = sft.per_device_batch_size * sft.gradient_accumulation_steps
    per_step *= int(getattr(args, "world_size", 1) or 1)
    return int(min(steps * per_step, math.ceil(rows * sft.epochs)))


def build_sft_trainer(config: SftConfig, checked: SftChecked) -> tuple[Any, Any]:
    """(TRL ``SFTTrainer`` with the step display, tokenizer): the base model loaded
    (:func:`load_base`), the LoRA of :func:`peft_config`, the demonstration rows."""
    from datasets import Dataset  # heavy: only a training run needs them
    from trl import SFTTrainer

    model, tokenizer = load_base(config)
    with library_deprecations():  # peft reads a deprecated transformers property
        trainer = SFTTrainer(
            model=model,
            args=checked.trainer_args,
            train_dataset=Dataset.from_list(training_rows(checked.rows)),
            processing_class=tokenizer,
            peft_config=peft_config(config, model),
        )
    use_console(trainer, "motif sft")
    return trainer, tokenizer


def _train_metrics(
    config: SftConfig, checked: SftChecked, result: Any, seconds: float, args: Any
) -> dict[str, Any]:
    """sft_metrics.json's training numbers. ``train_loss`` and ``train_seconds`` are this
    sitting's (Transformers' mean loss over the steps it trained): the whole run's unless it
    resumed from ``resumed_from``."""
    rows, resumed = len(checked.rows), checked.resume_from
    steps = int(result.global_step)
    return {
        "task": config.sft.task,
        "carry_over": config.protocol.carry_over,
        "rounds": config.protocol.rounds,
        "demonstrated_rounds": demo_round_counts(config),
        "demonstrated": [f.label for f in formats(config)],
        "problems": config.sft.num_examples,
        "rows": rows,
        "steps": steps,
        "train_loss": float(result.training_loss),
        "train_seconds": round(seconds, 1),
        "resumed_from": checkpoint_step(resumed) if resumed else None,
        "rows_seen": rows_seen(config, rows, steps, args),
        "bf16": checked.bf16[0],
        "bf16_reason": checked.bf16[1],
    }
