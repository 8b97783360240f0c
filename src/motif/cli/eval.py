"""``motif eval``: evaluate a model (optionally with an adapter) on a benchmark, resumably."""

from __future__ import annotations

import json
import logging
import shlex
import sys

from motif.backends.vllm_options import VllmArgs
from motif.carryover import carry_over_class
from motif.cli.common import parse, print_notes, quiet_libraries, read_config, take_config
from motif.config import EvalGenerationArgs, ModelArgs, ProtocolArgs
from motif.eval.grid import (
    GRID_FILE,
    GRID_PLOT,
    GRID_TABLE,
    GridArgs,
    check_cell_options,
    run_grid,
    unused_tail,
)
from motif.eval.grid_output import KEPT_NOTE, any_kept, grid_caption, grid_table
from motif.eval.runner import EvalArgs, run_eval
from motif.report import summary_text
from motif.textio import plural

DESCRIPTION = (
    "Evaluate on a benchmark with the multi-round protocol (--rounds N; 1 = vanilla prompt). "
    "Greedy pass@1 by default (round 1 at most --max-new-tokens, later rounds twice that unless "
    "--later-max-new-tokens); --samples K with --temperature gives avg@K and pass@k. Results "
    "stream to <output-dir>/samples.jsonl; re-running the same command resumes. --grid compares "
    "carry-over strategies at equal total budgets (docs/bounded-context.md)."
)


def overflow_line(metrics: dict, carry_over: str = "summary") -> str:
    """How many trajectories a context overflow cut, in which rounds, and what would help."""

    over = metrics.get("context_overflow") or {"cut": 0, "cut_by_round": {}}
    if not over["cut"]:
        return "  context overflow: none (every round fit the model's context)"
    rounds = ", ".join(f"round {r}: {n}" for r, n in over["cut_by_round"].items())
    cut = plural(over["cut"], "trajectory", "trajectories")
    fix = overflow_fix([int(r) for r in over["cut_by_round"]], carry_over)
    return f"  context overflow: {cut} cut and ungraded ({rounds}); {fix}"


def overflow_fix(rounds: list[int], carry_over: str) -> str:
    """The options that would make the cut ``rounds`` (1-based) fit: round 1's budget for
    round 1, the later rounds' budget or a cut summary for the others, the chunk for ``tail``
    (:meth:`motif.carryover.CarryOver.overflow_fix`)."""
    return carry_over_class(carry_over).overflow_fix(rounds)


def run(argv: list[str]) -> int:
    """Parse the flags, evaluate (resuming), print the summary."""

    args, model, gen, proto, vllm, grid = parse(
        "motif eval",
        (EvalArgs, ModelArgs, EvalGenerationArgs, ProtocolArgs, VllmArgs, GridArgs),
        argv,
        DESCRIPTION,
    )
    if grid.grid:
        check_cell_options(given_options(argv))
    quiet_libraries()
    logging.getLogger("motif.eval").setLevel(logging.INFO)
    if grid.grid:
        code = run_grid_command(args, grid, model, gen, proto, vllm)
        print_notes([unused_tail(grid, proto)])  # after the checks: an error stays one line
        return code
    summary = run_eval(args, model, gen, proto, vllm=vllm)
    if args.json:
        print(json.dumps(summary, indent=2, ensure_ascii=False))
    else:
        print(summary_text(summary))
        print(overflow_line(summary["metrics"], proto.carry_over))
    out_dir = summary["output_dir"]
    print(f"results: {out_dir}", file=sys.stderr)
    # the trajectory page (written to <output-dir>/view.html)
    print(f"view the trajectories: motif view {shlex.quote(out_dir)}", file=sys.stderr)
    print_notes(proto.unused_in_run(gen))
    return 0


def given_options(argv: list[str]) -> set[str]:
    """Option names set on the command line or in its ``--config`` file (dashed, no ``--``)."""

    rest, config = take_config(argv)
    names = {a[2:].split("=", 1)[0].replace("_", "-") for a in rest if a.startswith("--")}
    if config is not None:
        names |= {key.replace("_", "-") for key in read_config(config)}
    return names


def run_grid_command(args, grid, model, gen, proto, vllm) -> int:
    """``motif eval --grid``: every cell (model loaded once), then the table and the paths."""

    doc = run_grid(args, grid, model, gen, proto, vllm=vllm)
    if args.json:
        print(json.dumps(doc, indent=2, ensure_ascii=False))
    else:
        print(grid_caption(doc))
        print(grid_table(doc))
        if any_kept(doc):
            print(f"*{KEPT_NOTE}")
    out = doc["output_dir"]
    for name in (GRID_FILE, GRID_TABLE, GRID_PLOT):
        print(f"{name}: {out}/{name}", file=sys.stderr)
    print(f"report: motif report {shlex.quote(out)}", file=sys.stderr)
    return 0
