"""The one reader of a training folder (``motif train``/``motif sft --output-dir``).

What ``motif report``, ``--resume`` and the studies read: the logged steps
(:func:`read_metrics`, :func:`metrics_by_step`), the step times (:func:`step_seconds`,
:func:`logged_steps`, :func:`training_seconds`), the resolved configuration and identity
(:func:`read_run_config`, :func:`read_identity`, :func:`samples_per_step`), the checkpoints
(:func:`checkpoints`, :func:`latest_checkpoint`) and adapters (:func:`complete_adapter`).
:mod:`motif.training.rundir` is the writer. File names: :mod:`motif.runs.layout`.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from motif.errors import MotifError
from motif.runs.layout import (
    ADAPTER_FILES,
    CHECKPOINT_GLOB,
    CHECKPOINT_NAME,
    IDENTITY_FILE,
    METRICS_FILE,
    TRAIN_CONFIG_FILE,
    TRAINER_STATE_FILE,
)

logger = logging.getLogger(__name__)


def is_finite(value: object) -> bool:
    """A logged number that can be plotted or averaged: int or float, not bool, NaN or inf."""
    return is_number(value) and math.isfinite(value)  # type: ignore[arg-type]


def is_number(value: object) -> bool:
    """An int or float that is not a bool (NaN and inf included)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


# --------------------------------------------------------------------------- metrics.jsonl


def read_metrics(run: str | Path) -> list[dict]:
    """The rows of ``run``'s ``metrics.jsonl`` with a finite numeric ``step``, sorted by step
    (a step logged twice, as by a resumed run, keeps its records in file order); [] when the
    file does not exist. Bad lines (not JSON, no step) are skipped (logged). A non-finite value
    (NaN, inf) of another key stays in its row: readers skip it with :func:`is_finite`."""
    path = Path(run) / METRICS_FILE
    if not path.is_file():
        return []
    rows, bad = [], 0
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            bad += 1
            continue
        if isinstance(row, dict) and is_finite(row.get("step")):
            rows.append(row)
        else:
            bad += 1
    if bad:
        logger.warning("%s: skipped %d line(s) without JSON or a step", path, bad)
    return sorted(rows, key=lambda r: r["step"])


def metrics_by_step(run: str | Path) -> dict[int, dict]:
    """``step -> record`` of :func:`read_metrics`: the records of a step logged more than once
    are merged, a later record's value of a key winning."""
    merged: dict[int, dict] = {}
    for row in read_metrics(run):
        merged.setdefault(int(row["step"]), {}).update(row)
    return merged


def step_seconds(run: str | Path) -> dict[int, float]:
    """Seconds of each optimiser step that logged ``step_seconds`` (the last record wins when a
    resumed run repeats a step); {} when none did or the run has no ``metrics.jsonl``."""
    seconds: dict[int, float] = {}
    for row in read_metrics(run):
        if is_number(row.get("step_seconds")):
            seconds[int(row["step"])] = float(row["step_seconds"])
    return seconds


def logged_steps(run: str | Path) -> int:
    """The last optimiser step whose time ``run``'s ``metrics.jsonl`` logged (0: none)."""
    return max(step_seconds(run), default=0)


def training_seconds(run: str | Path) -> float:
    """``run``'s training time in seconds: the sum of its logged step times (0.0: none)."""
    return sum(step_seconds(run).values())


# --------------------------------------------------------------------------- config and identity


def read_run_config(run: str | Path) -> dict | None:
    """The resolved configuration ``motif_config.yaml`` (None when missing; {} when empty).

    Raises:
        MotifError: it is not valid YAML, or not a mapping.
    """
    path = Path(run) / TRAIN_CONFIG_FILE
    if not path.is_file():
        return None
    try:
        config = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise MotifError(f"{path} is not valid YAML: {exc}") from exc
    if config is not None and not isinstance(config, dict):
        raise MotifError(f"{path} is not a mapping of settings; remove it or the run")
    return config or {}


def read_identity(run: str | Path) -> dict | None:
    """``run_identity.json`` as written (its ``run`` block is metadata: precision, start
    time); None when missing.

    Raises:
        MotifError: it is not a JSON object.
    """
    path = Path(run) / IDENTITY_FILE
    if not path.is_file():
        return None
    try:
        identity = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise MotifError(f"{path} is not valid JSON ({exc.msg}); remove it or the run") from exc
    if not isinstance(identity, dict):
        raise MotifError(f"{path} is not a JSON object; remove it or the run")
    return identity


def samples_per_step(run: str | Path) -> int | None:
    """Round-1 samples per optimiser step of one process: ``prompts_per_device x
    num_generations x gradient_accumulation_steps`` from ``motif_config.yaml``; None when it
    does not hold the first two as integers. Raises as :func:`read_run_config`."""
    config = read_run_config(run)
    keys = ("prompts_per_device", "num_generations")
    if not config or not all(isinstance(config.get(k), int) for k in keys):
        return None
    accumulation = config.get("gradient_accumulation_steps") or 1
    return config["prompts_per_device"] * config["num_generations"] * int(accumulation)


# --------------------------------------------------------------------------- checkpoints, adapters


def checkpoints(run: str | Path) -> dict[int, Path]:
    """``step -> checkpoint-N directory`` of the complete checkpoints, by step.

    A run killed while saving leaves a checkpoint without ``trainer_state.json`` (the Trainer
    writes it after the weights and optimiser): it is skipped with a warning.
    """
    found = {}
    for path in Path(run).glob(CHECKPOINT_GLOB):
        if (match := CHECKPOINT_NAME.match(path.name)) is None:
            continue
        if not (path / TRAINER_STATE_FILE).exists():
            logger.warning("skipping %s: incomplete (no %s)", path, TRAINER_STATE_FILE)
            continue
        found[int(match.group(1))] = path
    return dict(sorted(found.items()))


def latest_checkpoint(run: str | Path) -> Path | None:
    """The complete checkpoint with the largest step (:func:`checkpoints`), if any."""
    found = checkpoints(run)
    return found[max(found)] if found else None


def complete_adapter(folder: str | Path) -> bool:
    """``folder`` holds both files of a LoRA adapter (``adapter_model.safetensors`` and
    ``adapter_config.json``): a run's final adapter, or a copy of one."""
    return all((Path(folder) / name).is_file() for name in ADAPTER_FILES)


# --------------------------------------------------------------------------- one folder


@dataclass
class TrainRun:
    """One training folder's logged steps (:func:`read_metrics`)."""

    path: Path
    rows: list[dict] = field(default_factory=list)

    @property
    def label(self) -> str:
        """The directory name."""
        return self.path.name


def load_training_run(run: str | Path) -> TrainRun:
    """The training folder ``run`` with its logged steps (none when it has no metrics)."""
    return TrainRun(Path(run), read_metrics(run))
