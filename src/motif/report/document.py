"""``motif report``: the Markdown report over many runs, with its plots next to it."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from motif.errors import MotifError
from motif.eval.grid_output import KEPT_NOTE, any_kept, grid_caption, grid_table, plot_grid
from motif.report.loading import load_runs
from motif.report.plots import plot_round_accuracy, plot_training
from motif.report.tables import (
    details_table,
    handover_table,
    heldout_table,
    main_table,
    training_table,
)
from motif.report.training import DEFAULT_SMOOTHING, TRAINING_KEYS, X_AXES, ema, nonfinite_note
from motif.runs.eval import find_grids, read_grid


def write_report(
    dirs: Sequence[str | Path],
    output: str | Path,
    *,
    x_axis: str = "step",
    smoothing: float = DEFAULT_SMOOTHING,
) -> Path:
    """Write the Markdown report and its plots (next to ``output``); returns its path.

    ``x_axis`` (``step``, ``samples``, ``wall-clock``) and ``smoothing`` (EMA weight in
    [0, 1)) shape the training curves (:func:`motif.report.plots.plot_training`).

    Raises:
        MotifError: a bad ``x_axis``/``smoothing``, ``output`` not a ``.md`` file, or a run
            folder that cannot be read (:func:`motif.report.loading.load_runs`).
    """
    if x_axis not in X_AXES:
        raise MotifError(f"--x-axis must be one of {', '.join(X_AXES)}; got {x_axis!r}")
    ema([], smoothing)  # validates the weight before anything is read or written
    evals, trains = load_runs(dirs)
    out = Path(output)
    if out.suffix.lower() != ".md":
        raise MotifError(f"--output {output} must be a .md file")
    out.parent.mkdir(parents=True, exist_ok=True)
    parts = ["# MOTIF evaluation report", "", *grid_sections(dirs, out)]
    if evals:
        plot = plot_round_accuracy(evals, out.with_name(f"{out.stem}_accuracy_by_round.png"))
        parts += ["## pass@1 (%)", "", main_table(evals), "", "## Details", ""]
        parts += [details_table(evals), "", f"![accuracy by round]({plot.name})", ""]
        handover = handover_table(evals)
        if handover is not None:
            parts += ["## Hand-over watch (% of hand-overs, by round)", "", handover, ""]
    if trains:
        plot = plot_training(trains, out.with_name(f"{out.stem}_training.png"), x_axis, smoothing)
        parts += ["## Training", "", training_table(trains), ""]
        heldout = heldout_table(trains)
        if heldout is not None:
            parts += ["### Held-out check during training (%, last check)", "", heldout, ""]
        clock = ("step_seconds", "step_time") if x_axis == "wall-clock" else ()
        skipped = nonfinite_note(trains, (*TRAINING_KEYS, *clock))
        if skipped:
            parts += ["Skipped in the table and the curves:", "", *skipped, ""]
        parts += [f"![training]({plot.name})", ""]
    out.write_text("\n".join(parts), encoding="utf-8")
    return out


def grid_sections(dirs: Sequence[str | Path], out: Path) -> list[str]:
    """A section per equal-budget grid among ``dirs`` and their subdirectories: caption,
    table and plot (written next to ``out``)."""
    parts: list[str] = []
    for i, path in enumerate(find_grids(dirs), start=1):
        doc = read_grid(path)
        plot = plot_grid(doc, out.with_name(f"{out.stem}_grid{'' if i == 1 else i}.png"))
        parts += [f"## Equal-budget grid: {doc['benchmark']} (`{path}`)", ""]
        parts += [grid_caption(doc), "", grid_table(doc), ""]
        if any_kept(doc):
            parts += [f"\\*{KEPT_NOTE}", ""]
        parts += [f"![grid]({plot.name})", ""]
    return parts
