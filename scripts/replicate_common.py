"""The replication's layout, read by its stages (scripts/replicate.py) and its summary
(scripts/replicate_summary.py): recipes, run directories and their step times.

Dependencies go one way: replicate.py -> replicate_summary.py -> replicate_common.py (and
replicate.py -> replicate_common.py); this module imports neither script.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

RECIPES = Path("recipes/replicate")


def recipe(name: str) -> dict:
    """The replication's recipe ``name`` (recipes/replicate/<name>.yaml, from the checkout)."""
    return yaml.safe_load((RECIPES / f"{name}.yaml").read_text())


def run_dir(out: Path, method: str, seed: int) -> Path:
    """Where the training run of ``method`` with ``seed`` goes: ``out/<method>-s<seed>``."""
    return out / f"{method}-s{seed}"


def step_seconds(run: Path) -> dict[int, float]:
    """Seconds of each optimiser step (the last record wins when a resumed run repeats one)."""
    seconds: dict[int, float] = {}
    path = run / "metrics.jsonl"
    for line in path.read_text().splitlines() if path.exists() else []:
        row = json.loads(line)
        if "step_seconds" in row:
            seconds[int(row["step"])] = float(row["step_seconds"])
    return seconds


def finished(run: Path, steps: int) -> bool:
    """A training run that reached ``steps`` (its final adapter is saved at the root)."""
    done = (run / "adapter_model.safetensors").exists()
    return done and max(step_seconds(run), default=0) >= steps


def wall_matched_step(grpo: Path, motif: Path, every: int) -> int:
    """The last GRPO checkpoint whose training time fits in MOTIF's whole training time."""
    budget = sum(step_seconds(motif).values())
    spent, best = 0.0, every
    for step, seconds in sorted(step_seconds(grpo).items()):
        spent += seconds
        if spent > budget:
            break
        if step % every == 0:
            best = step
    return best
