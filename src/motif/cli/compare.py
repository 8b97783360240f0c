"""``motif compare``: paired differences with standard errors between eval runs on the same items."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

from motif.cli.common import parse
from motif.eval.compare import compare_dirs, comparison_table


@dataclass
class CompareArgs:
    """How the comparison is printed."""

    json: bool = field(
        default=False,
        metadata={"help": "Print the runs and comparisons as JSON instead of a Markdown table."},
    )


DESCRIPTION = (
    "Compare eval runs (directories of `motif eval`) item by item: per pair of runs, each "
    "accuracy, the paired difference ± its standard error, a 95% interval and the items only "
    "one run got right. The runs must hold the same items (same benchmark, data seed, --limit); "
    "with several samples per item, each item's share of right samples is compared."
)


def run(argv: list[str]) -> int:
    """Parse the flags, compare the directories, print the table (or JSON)."""
    args, pos = parse(
        "motif compare",
        (CompareArgs,),
        argv,
        DESCRIPTION,
        positional={
            "dirs": {"nargs": "+", "metavar": "DIR", "help": "Two or more eval run directories."}
        },
    )
    runs, comparisons = compare_dirs(pos.dirs)
    if args.json:
        runs_out = [
            {"dir": r.name, "label": r.label, "items": len(r.scores), "samples": r.samples}
            for r in runs
        ]
        data = {"runs": runs_out, "comparisons": [asdict(c) for c in comparisons]}
        print(json.dumps(data, indent=2))
    else:
        print(comparison_table(runs, comparisons))
    return 0
