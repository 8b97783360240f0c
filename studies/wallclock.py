"""The wall-clock match both studies make: the GRPO checkpoint whose training time fits in a
MOTIF run's (step times from the package's training-run reader, motif.runs.training).

Imports no study.
"""

from __future__ import annotations

from pathlib import Path

from motif.runs.training import step_seconds, training_seconds


def wall_matched_step(grpo: Path, motif: Path, every: int) -> int:
    """The last checkpoint step of ``grpo`` (a multiple of ``every``) whose cumulated step
    seconds fit in ``motif``'s whole training time; ``every`` when none fits or when the GRPO
    run logged no step time."""
    budget = training_seconds(motif)
    spent, best = 0.0, every
    for step, seconds in sorted(step_seconds(grpo).items()):
        spent += seconds
        if spent > budget:
            break
        if step % every == 0:
            best = step
    return best
