"""Training curves of ``motif report``: reward and future accuracy against step, samples or time.

Reads :class:`motif.runs.training.TrainRun` rows (``metrics.jsonl``), finds each tracked key
among the logged ones (:func:`metric_key`), groups seeds of one method (:func:`method_of`),
smooths like TensorBoard (:func:`ema`) and gives :mod:`motif.report.plots` one curve per run or
method (:func:`training_curves`); :func:`nonfinite_note` says which values were skipped.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import fmean

from motif.errors import MotifError
from motif.runs.layout import TRAIN_CONFIG_FILE
from motif.runs.training import TrainRun, is_finite, is_number, samples_per_step

TRAINING_KEYS = ("reward", "future_accuracy")
"""The logged keys a report tracks: a column each in the table, a panel each in the plot."""
# TensorBoard's smoothing (default 0.6 there); 0.8 = a 5-step time constant, the 5-step mean
# studies/replicate_summary.py uses: a step here averages 16 samples, so per-step values are noisy.
DEFAULT_SMOOTHING = 0.8
X_AXES = ("step", "samples", "wall-clock")
_SEED_SUFFIX = re.compile(r"^(?P<method>.+?)[-_.]s(?:eed)?[-_]?\d+$")


def metric_key(rows: Sequence[dict], name: str) -> str | None:
    """The logged numeric key for ``name``, else None.

    Exact (``future_accuracy``); else a ``/``-segment equal to it (``rewards/future_accuracy``
    or ``.../mean``); else a segment that starts with ``name_``
    (``rewards/future_accuracy_reward/mean``). Keys holding ``std`` never match.
    """
    keys = sorted({k for row in rows for k, v in row.items() if is_finite(v) and "std" not in k})
    if name in keys:
        return name
    for match in (
        lambda seg: seg == name,
        lambda seg: seg.startswith(f"{name}_"),
    ):
        hits = [k for k in keys if any(match(seg) for seg in k.split("/"))]
        if hits:
            return hits[0]
    return None


def nonfinite_steps(rows: Sequence[dict], key: str | None) -> list[int]:
    """The steps whose ``key`` is a non-finite number (NaN, inf): skipped by every reader."""
    if key is None:
        return []
    return [int(r["step"]) for r in rows if is_number(r.get(key)) and not is_finite(r[key])]


def nonfinite_note(trains: Sequence[TrainRun], keys: Sequence[str] = ()) -> list[str]:
    """One line per run and tracked key (default :data:`TRAINING_KEYS`) that logged non-finite
    values: how many were skipped and at which steps (the first five)."""
    lines = []
    for run in trains:
        for name in keys or TRAINING_KEYS:
            key = metric_key(run.rows, name) or name  # a key logged only as NaN has no match
            steps = nonfinite_steps(run.rows, key)
            if steps:
                shown = ", ".join(map(str, steps[:5])) + (", ..." if len(steps) > 5 else "")
                lines.append(
                    f"- {run.label}: {len(steps)} non-finite {key} value(s) skipped "
                    f"(NaN or inf; step {shown})"
                )
    return lines


def ema(values: Sequence[float], weight: float = DEFAULT_SMOOTHING) -> list[float]:
    """Debiased exponential moving average, TensorBoard's scalar smoothing.

    ``s_i = weight * s_{i-1} + (1 - weight) * v_i`` from ``s_{-1} = 0``, divided by
    ``1 - weight ** n`` (n: finite values so far) so the first points are not pulled towards 0
    (TensorBoard's ``vz_line_chart`` smoothing). A non-finite value (NaN, inf) is skipped as
    TensorBoard does: its output is the value itself and the average goes on without it, so
    one NaN never ends the curve. ``weight`` in [0, 1): 0 = raw values.
    """
    if not 0 <= weight < 1:
        raise MotifError(f"smoothing must be in [0, 1); got {weight}")
    out, last, seen = [], 0.0, 0
    for value in values:
        if not math.isfinite(value):
            out.append(value)
            continue
        last, seen = weight * last + (1 - weight) * value, seen + 1
        out.append(last / (1 - weight**seen))
    return out


def method_of(label: str) -> str:
    """The method a run belongs to: its name without a seed suffix (``grpo-s1`` -> ``grpo``)."""
    match = _SEED_SUFFIX.match(label)
    return match.group("method") if match else label


def training_points(
    run: TrainRun, key: str, x_axis: str = "step"
) -> dict[int, tuple[float, float]]:
    """``step -> (x, value)`` of one logged key; the last record of a repeated step wins.

    ``x_axis``: ``step``; ``samples`` = step x round-1 samples per step of one process
    (:func:`motif.runs.training.samples_per_step`, from the run's ``motif_config.yaml``);
    ``wall-clock`` = minutes, the running sum of ``step_seconds`` (else ``step_time``).
    A non-finite value (NaN, inf) is skipped: its step has no point, and a non-finite step time
    is left out of the sum (and its step's point with it); :func:`nonfinite_note` says how
    many. Raises :class:`MotifError` naming the run when the x axis cannot be
    computed (a step that logs no time at all).
    """
    if x_axis not in X_AXES:
        raise MotifError(f"x axis {x_axis!r} is not one of {', '.join(X_AXES)}")
    rows = {int(r["step"]): r for r in run.rows}
    per_step = _samples_per_step(run) if x_axis == "samples" else None
    points, minutes = {}, 0.0
    for step in sorted(rows):
        row = rows[step]
        if x_axis == "wall-clock":
            seconds = row.get("step_seconds", row.get("step_time"))
            if not is_number(seconds):
                raise MotifError(
                    f"{run.path}: step {step} logs no step_seconds or step_time; "
                    "plot it against step or samples"
                )
            if not is_finite(seconds):
                continue
            minutes += seconds / 60
        if is_finite(row.get(key)):
            x = {"step": step, "samples": step * (per_step or 0), "wall-clock": minutes}[x_axis]
            points[step] = (float(x), float(row[key]))
    return points


def _samples_per_step(run: TrainRun) -> int:
    per_step = samples_per_step(run.path)
    if per_step is None:
        raise MotifError(
            f"{run.path}: samples per step need prompts_per_device and num_generations from "
            f"{TRAIN_CONFIG_FILE} (written by `motif train`); plot it against step or wall-clock"
        )
    return per_step


@dataclass
class Curve:
    """One line of a training panel: a run, or the mean of a method's seeds with its band."""

    label: str
    method: str
    x: list[float]
    raw: list[float]
    smooth: list[float]
    low: list[float] | None = None
    high: list[float] | None = None


def training_curves(
    trains: Sequence[TrainRun],
    name: str,
    x_axis: str = "step",
    smoothing: float = DEFAULT_SMOOTHING,
) -> list[Curve]:
    """Curves of metric ``name``: runs grouped by :func:`method_of`; a group of several seeds is
    their mean (EMA of each run, then mean; band = min..max of the smoothed runs) over the steps
    all of them logged, x = the mean of their x at that step (wall-clock differs by seed)."""
    groups: dict[str, list[tuple[str, dict]]] = {}
    for run in trains:
        key = metric_key(run.rows, name)
        points = training_points(run, key, x_axis) if key else {}
        if points:
            groups.setdefault(method_of(run.label), []).append((f"{run.label} ({key})", points))
    curves = []
    for method, members in groups.items():
        if len(members) == 1:
            label, points = members[0]
            xs, ys = zip(*points.values(), strict=True)
            curves.append(Curve(label, method, list(xs), list(ys), ema(ys, smoothing)))
            continue
        steps = sorted(set.intersection(*(set(p) for _, p in members)))
        smoothed = [ema([p[s][1] for s in steps], smoothing) for _, p in members]
        columns = list(zip(*smoothed, strict=True))
        curves.append(
            Curve(
                f"{method} (mean of {len(members)} seeds, min-max band)",
                method,
                [fmean(p[s][0] for _, p in members) for s in steps],
                [fmean(p[s][1] for _, p in members) for s in steps],
                [fmean(c) for c in columns],
                [min(c) for c in columns],
                [max(c) for c in columns],
            )
        )
    return curves
