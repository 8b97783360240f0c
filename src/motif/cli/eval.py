"""``motif eval``: evaluate a model (optionally with an adapter) on a benchmark, resumably."""

from __future__ import annotations

import json
import logging
import shlex
import sys

from motif.config import GenerationArgs, ModelArgs, ProtocolArgs

DESCRIPTION = (
    "Evaluate on a benchmark with the multi-round protocol (--rounds N; 1 = vanilla prompt). "
    "Greedy pass@1 by default (round 1 at most --max-new-tokens, later rounds twice that unless "
    "--later-max-new-tokens); --samples K with --temperature gives avg@K and pass@k. Results "
    "stream to <output-dir>/samples.jsonl; re-running the same command resumes."
)


def overflow_line(metrics: dict) -> str:
    """How many trajectories a context overflow cut, and in which rounds."""
    over = metrics.get("context_overflow") or {"cut": 0, "cut_by_round": {}}
    if not over["cut"]:
        return "  context overflow: none (every round fit the model's context)"
    rounds = ", ".join(f"round {r}: {n}" for r, n in over["cut_by_round"].items())
    return (
        f"  context overflow: {over['cut']} trajectories cut and ungraded ({rounds}); "
        "see the warnings above, or lower --later-max-new-tokens"
    )


def run(argv: list[str]) -> int:
    """Parse the flags, evaluate (resuming), print the summary."""
    from motif.backends.vllm_options import VllmArgs
    from motif.cli.common import parse, quiet_libraries
    from motif.eval.runner import EvalArgs, run_eval

    args, model, gen, proto, vllm = parse(
        "motif eval",
        (EvalArgs, ModelArgs, GenerationArgs, ProtocolArgs, VllmArgs),
        argv,
        DESCRIPTION,
    )
    quiet_libraries()
    logging.getLogger("motif.eval").setLevel(logging.INFO)
    summary = run_eval(args, model, gen, proto, vllm=vllm)
    if args.json:
        print(json.dumps(summary, indent=2, ensure_ascii=False))
    else:
        from motif.report import summary_text

        print(summary_text(summary))
        print(overflow_line(summary["metrics"]))
    out_dir = summary["output_dir"]
    print(f"results: {out_dir}", file=sys.stderr)
    # the trajectory page (written to <output-dir>/view.html)
    print(f"view the trajectories: motif view {shlex.quote(out_dir)}", file=sys.stderr)
    return 0
