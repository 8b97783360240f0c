"""The replication's layout, read by its stages (studies.replicate) and its tables
(studies.replicate_summary): its recipes and run directories, and whether a run finished.

Imports no other module of the replication.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from motif.runs.layout import ADAPTER_WEIGHTS
from motif.runs.training import logged_steps

RECIPES = Path("recipes/replicate")


def recipe(name: str) -> dict:
    """The replication's recipe ``name`` (recipes/replicate/<name>.yaml, from the checkout)."""
    return yaml.safe_load((RECIPES / f"{name}.yaml").read_text())


def run_dir(out: Path, method: str, seed: int) -> Path:
    """Where the training run of ``method`` with ``seed`` goes: ``out/<method>-s<seed>``."""
    return out / f"{method}-s{seed}"


def finished(run: Path, steps: int) -> bool:
    """A training run that reached ``steps`` (its final adapter is saved at the root)."""
    done = (run / ADAPTER_WEIGHTS).exists()
    return done and logged_steps(run) >= steps
