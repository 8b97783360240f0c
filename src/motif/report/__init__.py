"""Reports: a text view of one evaluation, and a Markdown report with plots over many runs.

``motif report DIR...`` reads *eval directories* (holding ``summary.json``, written by
``motif eval``), *training directories* (holding ``metrics.jsonl``: one JSON object per
logged step with ``step`` and reward keys such as ``reward`` and ``future_accuracy``), and
*equal-budget grids* (holding ``grid.json``, written by ``motif eval --grid``; their cells are
eval directories), all read through :mod:`motif.runs`. A directory holding none of them is
searched one level down. The report has each grid's table and plot (accuracy against total
budget; :mod:`motif.eval.grid_output`), the paper's Table 1 layout (rows: runs, columns:
benchmarks, pass@1 in %), a details table, and PNG plots next to the Markdown file: accuracy by
round, and reward / future accuracy against step (the training curves).

Modules: :mod:`~motif.report.summary` (one ``summary.json`` as text),
:mod:`~motif.report.loading` (the runs of a report), :mod:`~motif.report.tables`,
:mod:`~motif.report.training` (training keys, smoothing, curves), :mod:`~motif.report.plots`,
:mod:`~motif.report.document` (:func:`write_report`).
"""

from motif.report.document import grid_sections, write_report
from motif.report.loading import EvalRun, load_runs
from motif.report.plots import plot_round_accuracy, plot_training
from motif.report.summary import summary_text
from motif.report.tables import details_table, handover_table, main_table, training_table
from motif.report.training import (
    DEFAULT_SMOOTHING,
    TRAINING_KEYS,
    X_AXES,
    Curve,
    ema,
    method_of,
    metric_key,
    nonfinite_note,
    nonfinite_steps,
    training_curves,
    training_points,
)
from motif.runs.training import TrainRun, is_finite

__all__ = [
    "DEFAULT_SMOOTHING",
    "TRAINING_KEYS",
    "X_AXES",
    "Curve",
    "EvalRun",
    "TrainRun",
    "details_table",
    "ema",
    "grid_sections",
    "handover_table",
    "is_finite",
    "load_runs",
    "main_table",
    "method_of",
    "metric_key",
    "nonfinite_note",
    "nonfinite_steps",
    "plot_round_accuracy",
    "plot_training",
    "summary_text",
    "training_curves",
    "training_points",
    "training_table",
    "write_report",
]
