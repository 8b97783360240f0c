"""Training curves of ``motif report``: reward and future accuracy against step, samples or time.

Reads :class:`motif.report.TrainRun` rows (``metrics.jsonl``), groups seeds of one method
(:func:`method_of`), smooths like TensorBoard (:func:`ema`) and draws one panel per
:data:`motif.report.TRAINING_KEYS` (:func:`plot_training`); :func:`motif.report.write_report`
puts the PNG in the report.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from statistics import fmean

from motif.errors import MotifError
from motif.report import (
    DEFAULT_SMOOTHING,
    TRAINING_KEYS,
    TrainRun,
    _pyplot,
    _save_figure,
    is_finite,
    metric_key,
)

X_AXES = ("step", "samples", "wall-clock")
_SEED_SUFFIX = re.compile(r"^(?P<method>.+?)[-_.]s(?:eed)?[-_]?\d+$")
RUN_CONFIG_FILE = "motif_config.yaml"


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

    ``x_axis``: ``step``; ``samples`` = step x round-1 samples per step (``prompts_per_device x
    num_generations x gradient_accumulation_steps`` from the run's ``motif_config.yaml``, one
    process); ``wall-clock`` = minutes, the running sum of ``step_seconds`` (else ``step_time``).
    A non-finite value (NaN, inf) is skipped: its step has no point, and a non-finite step time
    is left out of the sum (and its step's point with it); :func:`motif.report.nonfinite_note`
    says how many. Raises :class:`MotifError` naming the run when the x axis cannot be
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
            if not isinstance(seconds, (int, float)) or isinstance(seconds, bool):
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
    import yaml

    path = run.path / RUN_CONFIG_FILE
    try:
        config = yaml.safe_load(path.read_text(encoding="utf-8")) if path.is_file() else None
    except yaml.YAMLError as exc:
        raise MotifError(f"{path} is not valid YAML: {exc}") from exc
    keys = ("prompts_per_device", "num_generations")
    if not isinstance(config, dict) or not all(isinstance(config.get(k), int) for k in keys):
        raise MotifError(
            f"{run.path}: samples per step need prompts_per_device and num_generations from "
            f"{RUN_CONFIG_FILE} (written by `motif train`); plot it against step or wall-clock"
        )
    accumulation = config.get("gradient_accumulation_steps") or 1
    return config["prompts_per_device"] * config["num_generations"] * int(accumulation)


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


X_LABELS = {
    "step": "step",
    "samples": "round-1 samples",
    "wall-clock": "wall-clock (min, sum of step times)",
}


def plot_training(
    trains: Sequence[TrainRun],
    path: Path,
    x_axis: str = "step",
    smoothing: float = DEFAULT_SMOOTHING,
) -> Path:
    """Reward and future accuracy, one panel each, read like TensorBoard: per run (or method,
    seeds pooled) the EMA-smoothed line (``smoothing``) over its raw values drawn faint, and
    for several seeds the min-max band of their smoothed curves. x: ``step``, ``samples``
    or ``wall-clock`` (:func:`training_points`)."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(TRAINING_KEYS), figsize=(11, 4.2), squeeze=False)
    methods = list(dict.fromkeys(method_of(run.label) for run in trains))  # one colour each
    for ax, name in zip(axes[0], TRAINING_KEYS, strict=True):
        curves = training_curves(trains, name, x_axis, smoothing)
        for curve in curves:
            color = f"C{methods.index(curve.method) % 10}"
            ax.plot(curve.x, curve.raw, color=color, alpha=0.25, linewidth=0.9)
            if curve.low is not None:
                ax.fill_between(curve.x, curve.low, curve.high, color=color, alpha=0.15, lw=0)
            ax.plot(curve.x, curve.smooth, color=color, linewidth=2, label=curve.label)
        ax.set_title(f"{name} (EMA {smoothing:g}; raw faint)" if curves else name)
        ax.set_xlabel(X_LABELS[x_axis])
        ax.grid(alpha=0.3)
        if curves:
            ax.legend(fontsize="small")
        else:
            ax.text(0.5, 0.5, f"no '{name}' logged", ha="center", va="center")
    return _save_figure(fig, path)
