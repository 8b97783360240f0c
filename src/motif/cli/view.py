"""``motif view``: one self-contained HTML page of an eval run's trajectories (or two runs')."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

from motif.cli.common import parse
from motif.view import write_page


@dataclass
class ViewArgs:
    """Where the page goes."""

    output: str | None = field(
        default=None,
        metadata={
            "help": "HTML file to write. Default: RUN_DIR/view.html, or "
            "RUN_DIR/view-vs-<OTHER_RUN_DIR name>.html with two runs."
        },
    )
    title: str | None = field(
        default=None, metadata={"help": "Page title. Default: the runs' labels."}
    )


DESCRIPTION = (
    "Write one self-contained HTML page (no network) from the per-sample rows of `motif eval`: "
    "a filterable problem list and, per problem, every round as a column (its output, the state "
    "handed to the next round, tokens, cut by the budget) and the verdict. With OTHER_RUN_DIR "
    "(same benchmark) both runs side by side, and a filter for right in one, wrong in the other."
)


def default_output(run_dirs: list[str]) -> Path:
    """``RUN_DIR/view.html``; with two runs ``RUN_DIR/view-vs-<other>.html``."""
    first = Path(run_dirs[0])
    if len(run_dirs) == 1:
        return first / "view.html"
    return first / f"view-vs-{Path(run_dirs[1]).resolve().name}.html"


def run(argv: list[str]) -> int:
    """Parse the flags, write the page, print its path."""
    args, pos = parse(
        "motif view",
        (ViewArgs,),
        argv,
        DESCRIPTION,
        positional={
            "dirs": {
                "nargs": "+",
                "metavar": "RUN_DIR",
                "help": "An eval run directory (samples.jsonl), and optionally a second to compare.",
            }
        },
    )
    output = args.output or default_output(pos.dirs)
    path, data = write_page(pos.dirs, output, title=args.title)
    for run_info in data["runs"]:
        if run_info["skipped"]:
            print(
                f"motif view: {run_info['dir']}: skipped {run_info['skipped']} unreadable row(s) "
                f"({run_info['skipped_lines'][0]}); the page shows the count",
                file=sys.stderr,
            )
    print(path)
    return 0
