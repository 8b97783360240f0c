"""``motif train``: MOTIF or vanilla GRPO training from a YAML recipe plus flag overrides."""

from __future__ import annotations

from motif.cli.common import parse, print_notes, quiet_libraries
from motif.training.config import CONFIG_TYPES, TrainConfig
from motif.training.trainer import check_config, plan, train


def parse_config(argv: list[str]):
    """Parse ``argv`` (``--config recipe.yaml`` + flags) into a validated :class:`TrainConfig`."""

    parts = parse(
        "motif train",
        CONFIG_TYPES,
        argv,
        description="Train with MOTIF (--method motif) or vanilla GRPO (--method grpo) on TRL.",
    )
    return TrainConfig(*parts)


def run(argv: list[str]) -> int:
    """Check everything, print the plan, then stop (--dry-run) or train.

    The dry run and the real run share one check (``check_config``), so they fail alike.
    """
    config = parse_config(argv)

    checked = check_config(config)
    print(plan(config, checked), flush=True)

    print_notes()  # a repeated option, after the checks: an error stays one line
    if config.run.dry_run:
        print("dry run: configuration valid; nothing loaded")
        return 0

    quiet_libraries()

    out = train(config, checked)
    print(f"done: adapter and checkpoints in {out}")
    return 0
