"""``motif report``: a side-by-side Markdown table and plots from eval, training and grid runs."""

from __future__ import annotations

from dataclasses import dataclass, field

from motif.cli.common import parse
from motif.report import DEFAULT_SMOOTHING, X_AXES, write_report


@dataclass
class ReportArgs:
    """Where the report goes."""

    output: str = field(
        default="report.md",
        metadata={"help": "Markdown file to write; the PNG plots go next to it."},
    )
    x_axis: str = field(
        default="step",
        metadata={
            "help": "x axis of the training curves: step, samples (round-1 samples, from each "
            "run's motif_config.yaml) or wall-clock (minutes, summed step times).",
            "choices": list(X_AXES),
        },
    )
    smoothing: float = field(
        default=DEFAULT_SMOOTHING,
        metadata={
            "help": "EMA weight of the training curves in [0, 1) (TensorBoard's bias-corrected "
            "EMA; 0 = raw). Default 0.8: a 5-step time constant, see docs/evaluation.md."
        },
    )


DESCRIPTION = (
    "Side-by-side pass@1 table (rows: runs, columns: benchmarks) and plots from eval "
    "directories (summary.json), training directories (metrics.jsonl) and equal-budget grids "
    "(grid.json from motif eval --grid: their table and accuracy-against-budget plot)."
)


def run(argv: list[str]) -> int:
    """Parse the flags, write the report, print its path."""
    args, pos = parse(
        "motif report",
        (ReportArgs,),
        argv,
        DESCRIPTION,
        positional={
            "dirs": {"nargs": "+", "metavar": "DIR", "help": "Eval, training or grid run dirs."}
        },
    )
    path = write_report(pos.dirs, args.output, x_axis=args.x_axis, smoothing=args.smoothing)
    print(path)
    return 0
