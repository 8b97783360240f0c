"""``motif sft``: the format cold start (LoRA SFT on multi-round demonstrations)."""

from __future__ import annotations

import json

from motif.cli.common import parse, print_notes, quiet_libraries
from motif.config import ModelArgs, ProtocolArgs
from motif.textio import plural
from motif.training.config import LoraArgs
from motif.training.demos import rows_text, sample_text
from motif.training.sft import METRICS_FILE, check_sft, evaluate_adapter, run_sft, total_steps
from motif.training.sft_config import SftArgs, SftConfig

DESCRIPTION = (
    "Supervised warm-up that teaches the protocol's format: LoRA SFT (TRL SFTTrainer) on "
    "multi-round demonstrations written from a reasoning-gym task's own answers. The adapter "
    "in --output-dir is the --init-adapter of `motif train`."
)


def print_plan(config: SftConfig, checked) -> None:
    """The resolved config, the plan and one sample demonstration; loads no model."""
    import yaml

    sft, blocks = config.sft, checked.blocks
    print("# motif sft: resolved configuration")
    print(yaml.safe_dump(config.to_dict(), sort_keys=False), end="")
    print("\n# plan")
    print(f"model:          {checked.model}")
    texts = [
        rows_text(sft.task, sft.num_examples, [f.rounds], rows, tail=f.thought)
        for f, rows in blocks
    ]
    if len(blocks) == 1:
        print(f"demonstrations: {texts[0]}")
    else:
        rows = plural(len(checked.rows), "row")
        print(f"demonstrations: {len(blocks)} formats of the same items = {rows}")
        for (f, _), text in zip(blocks, texts, strict=True):
            print(f"  {f.label}: {text}")
    steps = plural(total_steps(config, len(checked.rows)), "step")
    print(f"optimiser:      {steps} of {plural(sft.per_device_batch_size, 'row')}")
    on, why = checked.bf16
    print(f"precision:      bf16 autocast {'on' if on else 'off'} ({why})")
    check = f"{sft.eval_size} items, greedy" if sft.eval_size else "off (--eval-size 0)"
    print(f"held-out check: {check}")
    for note in config.notes:
        print(f"note:           {note}")
    output = (
        checked.output.describe() if checked.output else "not set: a real run needs --output-dir"
    )
    print(f"output dir:     {output}")
    if checked.resume_from is not None:
        print(f"resume from:    {checked.resume_from}")
    if sft.save_steps:
        print(f"checkpoints:    every {plural(sft.save_steps, 'step')} (removed once saved)")
    for f, rows in blocks:
        print(f"\n# sample demonstration, {f.label} (item 1, every round or chunk)")
        print(sample_text(rows, f.rounds, tail=f.thought))


HELD_OUT_SHOWN = (
    ("accuracy", "accuracy"),
    ("format_rate", "format"),
    ("step_accuracy", "steps right"),
    ("state_right_rate", "states right"),
)
"""(key, shown name) of the held-out check's rates in the summary line, in this order."""


def held_out_line(held: dict) -> str:
    """``4 items, 8 replies: accuracy 50.0%, format 100.0%, ...`` (rates that are None: left
    out; truncated replies and cut trajectories: counted when there are any)."""
    rates = [
        f"{name} {100 * held[key]:.1f}%"
        for key, name in HELD_OUT_SHOWN
        if isinstance(held.get(key), (int, float))
    ]
    counts = [
        f"{plural(held[key], word)}"
        for key, word in (
            ("truncated", "truncated reply"),
            ("context_overflow_cut", "cut trajectory"),
        )
        if held.get(key)
    ]
    head = f"{plural(held.get('items', 0), 'item')}, {plural(held.get('responses', 0), 'reply', 'replies')}"
    return f"{head}: " + ", ".join(rates + counts)


def trained_rows(metrics: dict) -> str:
    """``16 rows``, ``8 of 16 rows`` (stopped by --max-steps) or ``32 rows: 2 passes over 16``."""
    rows, seen = metrics["rows"], metrics.get("rows_seen", metrics["rows"])
    if seen < rows:
        return f"{seen} of {plural(rows, 'row')}"
    if seen > rows:
        return f"{plural(seen, 'row')}: {seen / rows:.3g} passes over {rows}"
    return plural(rows, "row")


def print_summary(metrics: dict, output_dir: str) -> None:
    """One block of results after training."""
    print(
        f"trained {plural(metrics['steps'], 'step')} ({trained_rows(metrics)}) in "
        f"{metrics['train_seconds']} s (loss {metrics['train_loss']:.4f})"
    )
    held = metrics.get("held_out")
    if held:
        print(f"held-out check: {held_out_line(held)} (all of it in {output_dir}/{METRICS_FILE})")
    print(f"adapter saved in {output_dir} (use it as `motif train --init-adapter {output_dir}`)")


def run(argv: list[str]) -> int:
    """Parse the flags, then print the plan (``--dry-run``) or train and save the adapter."""

    sft, model, protocol, lora = parse(
        "motif sft", (SftArgs, ModelArgs, ProtocolArgs, LoraArgs), argv, description=DESCRIPTION
    )
    config = SftConfig(sft, model, protocol, lora)

    checked = check_sft(config)  # the dry run and the real run share every check
    if sft.dry_run:
        print_plan(config, checked)
        return 0
    print_notes(config.notes)
    quiet_libraries()
    from datasets.utils.logging import disable_progress_bar

    disable_progress_bar()
    if sft.eval_base:
        report = evaluate_adapter(config, None)
        print(json.dumps(report, indent=2))
        return 0
    metrics = run_sft(config, checked)
    print_summary(metrics, str(sft.output_dir))
    return 0
