"""``motif report``: a side-by-side Markdown table and plots from eval and training runs."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class ReportArgs:
    """Where the report goes."""

    output: str = field(
        default="report.md",
        metadata={"help": "Markdown file to write; the PNG plots go next to it."},
    )


DESCRIPTION = (
    "Side-by-side pass@1 table (rows: runs, columns: benchmarks) and plots from eval "
    "directories (summary.json) and training directories (metrics.jsonl)."
)


def run(argv: list[str]) -> int:
    """Parse the flags, write the report, print its path."""
    from motif.cli.common import parse
    from motif.report import write_report

    args, pos = parse(
        "motif report",
        (ReportArgs,),
        argv,
        DESCRIPTION,
        positional={"dirs": {"nargs": "+", "metavar": "DIR", "help": "Eval or training run dirs."}},
    )
    path = write_report(pos.dirs, args.output)
    print(path)
    return 0
