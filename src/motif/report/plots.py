"""The PNG plots of ``motif report``: accuracy by round, and the training curves.

Drawn through :mod:`motif.plotting` (matplotlib is imported when the first figure is drawn).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from motif.plotting import pyplot, save_figure
from motif.report.loading import EvalRun
from motif.report.training import (
    DEFAULT_SMOOTHING,
    TRAINING_KEYS,
    method_of,
    training_curves,
)
from motif.runs.training import TrainRun

X_LABELS = {
    "step": "step",
    "samples": "round-1 samples",
    "wall-clock": "wall-clock (min, sum of step times)",
}


def plot_round_accuracy(evals: Sequence[EvalRun], path: Path) -> Path:
    """Accuracy (%) if the answer were read after each round, one line per eval run; writes
    the PNG to ``path`` and returns it."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for run in evals:
        acc = run.summary["metrics"]["rounds"]["accuracy"]
        xs = list(range(1, len(acc) + 1))
        ys = [100 * a if a is not None else float("nan") for a in acc]
        ax.plot(xs, ys, marker="o", label=f"{run.label} · {run.benchmark}")
    ax.set_xlabel("answer read after round")
    ax.set_ylabel("accuracy (%)")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return save_figure(fig, path)


def plot_training(
    trains: Sequence[TrainRun],
    path: Path,
    x_axis: str = "step",
    smoothing: float = DEFAULT_SMOOTHING,
) -> Path:
    """Reward and future accuracy, one panel each, read like TensorBoard: per run (or method,
    seeds pooled) the EMA-smoothed line (``smoothing``) over its raw values drawn faint, and
    for several seeds the min-max band of their smoothed curves. x: ``step``, ``samples``
    or ``wall-clock`` (:func:`motif.report.training.training_points`). Writes the PNG to
    ``path`` and returns it."""
    plt = pyplot()
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
    return save_figure(fig, path)
