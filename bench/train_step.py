"""Seconds per optimiser step of each training method of recipes/methods at equal m, k, B, n.

GRPO (one round of B, and one of the largest context 2B: grpo-long), MOTIF (--credit first),
--credit all, --credit trajectory under summary, Delethink-RL (tail + trajectory credit) and
InftyThink+-style (rounds the model ends + trajectory credit + efficiency reward); each
method's ratio to grpo-long is printed (issue 33's equal-largest-context comparison).

The runs go in one process, one after the other, with the same round-1 settings; MOTIF adds k
continuations of every round-1 completion over the remaining n-1 rounds; --credit all trains
some groups on round-r states instead (one group per step here: round 1, 2, ..., n in turn), each
reply continued over rounds r+1..n only. Each step is split into generation of the trained replies,
rewards (the continuations), TRL's scoring work around them and optimisation (log-probs,
backward, optimiser), from the run's own metrics.jsonl. The first step is a warm-up and is not
averaged; the default --steps (n + 1) makes the averaged steps of --credit all one full cycle of
rounds.

    .venv/bin/python bench/train_step.py [--runs grpo-long,first,trajectory --m 4 --k 4 --rounds 3 --tokens 64]
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import tempfile
from pathlib import Path

from motif.cli.train import parse_config
from motif.training.trainer import train

KEYS = (
    "step_seconds",
    "round1_generation_seconds",
    "reward_seconds",
    "scoring_seconds",
    "optimisation_seconds",
)


RUNS = ("grpo", "grpo-long", "first", "all", "trajectory", "delethink", "inftythink")
"""The runs, in the order they go (``--runs`` picks some)."""


def run_flags(name: str, args: argparse.Namespace) -> list[str]:
    """``motif train`` flags of run ``name`` at per-round budget B = ``args.tokens`` and n =
    ``args.rounds``, as ``recipes/methods/`` sets each arm (their largest context, 2B: a
    summary round's carried answer, at most B, plus B new; ``GridCell.largest_context``).

    ``grpo``: one round of B; ``grpo-long``: one round of 2B; ``delethink``: tail chunks of
    C = 2B keeping 8 + (B - 8) tokens, so every chunk after the first writes B, n - 1 chunks
    (a total of nB, as n summary rounds); ``inftythink``: rounds the model ends, phi = n, the
    efficiency reward and the token-average loss.
    """
    b, n = args.tokens, args.rounds
    tail = ["--tail-chunk", str(2 * b), "--tail-head", "8", "--tail-keep", str(b - 8)]
    model_ended = ["--round-end", "model", "--max-rounds", str(n), "--efficiency-reward"]
    return {
        "grpo": ["--method", "grpo"],
        "grpo-long": ["--method", "grpo", "--max-completion-length", str(2 * b)],
        "first": ["--method", "motif"],
        "all": ["--credit", "all"],
        "trajectory": ["--credit", "trajectory"],
        "delethink": ["--credit", "trajectory", "--carry-over", "tail", *tail]
        + ["--tail-chunks", str(n - 1), "--max-completion-length", str(2 * b)],
        "inftythink": ["--credit", "trajectory", *model_ended]
        + ["--trajectory-loss-norm", "token"],
    }[name]


def run(name: str, args: argparse.Namespace, out: Path) -> dict[str, float]:
    flags = [
        "--output-dir",
        str(out / name),
        "--overwrite",
        "--dataset",
        "reasoning_gym:chain_sum",
        "--dataset-size",
        "64",
        "--num-generations",
        str(args.m),
        "--max-completion-length",
        str(args.tokens),
        "--continuation-max-new-tokens",
        str(args.tokens),
        "--k",
        str(args.k),
        "--rounds",
        str(args.rounds),
        "--max-steps",
        str(args.steps),
        "--save-steps",
        "1000",
        "--lora-r",
        "16",
        "--lora-alpha",
        "32",
        "--report-to",
        "none",
    ]
    flags += ["--round1-generation", args.round1_generation, *run_flags(name, args)]
    if args.init_adapter:
        flags += ["--init-adapter", args.init_adapter]
    if name in ("delethink", "inftythink"):  # --rounds: theirs come from the tail / phi
        at = flags.index("--rounds")
        del flags[at : at + 2]
    train(parse_config(flags))
    records = [json.loads(x) for x in (out / name / "metrics.jsonl").read_text().splitlines()]
    steady = records[1:] or records
    result = {k: statistics.mean(r[k] for r in steady) for k in KEYS}
    for r in range(1, args.rounds + 1):  # --credit all: the steps that trained round r
        steps = [x["step_seconds"] for x in steady if f"round{r}/groups" in x]
        if steps:
            result[f"round{r}_step_seconds"] = statistics.mean(steps)
    result["continuation_seconds"] = statistics.mean(
        r.get("continuation_seconds", 0.0) for r in steady
    )
    result["continuation_tokens"] = statistics.mean(
        r.get("continuation_tokens", 0.0) for r in steady
    )
    result["round1_tokens"] = statistics.mean(r["round1_tokens"] for r in steady)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", default=",".join(RUNS), help=f"any of {', '.join(RUNS)}")
    parser.add_argument("--steps", type=int, default=None, help="default: rounds + 1")
    parser.add_argument("--m", type=int, default=4, help="round-1 generations per question")
    parser.add_argument("--k", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tokens", type=int, default=64, help="max new tokens per round")
    parser.add_argument("--init-adapter", default=None, help="e.g. a motif sft cold start")
    parser.add_argument(
        "--round1-generation", default="motif", choices=("motif", "trl"), help="see motif train"
    )
    args = parser.parse_args()
    args.steps = args.steps or args.rounds + 1
    names = [n.strip() for n in args.runs.split(",")]
    if not names or any(n not in RUNS for n in names):
        parser.error(f"--runs takes names from {', '.join(RUNS)}; got {args.runs!r}")
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        results = {n: run(n, args, Path(tmp)) for n in names}
    report(results, args)


def report(results: dict[str, dict[str, float]], args: argparse.Namespace) -> None:
    print(
        f"\nm={args.m}, k={args.k}, n={args.rounds}, <= {args.tokens} tokens per round; "
        f"mean of steps 2..{args.steps}"
    )
    print(
        f"{'run':<11}{'step s':>9}{'replies s':>11}{'rewards s':>11}{'(contin. s)':>13}"
        f"{'scoring s':>11}{'optim s':>9}{'r1 tok':>8}{'cont tok':>10}"
    )
    for name, r in results.items():
        print(
            f"{name:<11}{r['step_seconds']:>9.1f}{r['round1_generation_seconds']:>11.1f}"
            f"{r['reward_seconds']:>11.1f}{r['continuation_seconds']:>13.1f}"
            f"{r['scoring_seconds']:>11.1f}{r['optimisation_seconds']:>9.1f}"
            f"{r['round1_tokens']:>8.0f}{r['continuation_tokens']:>10.0f}"
        )
    if "grpo-long" in results:
        base = results["grpo-long"]["step_seconds"]
        ratios = ", ".join(f"{n} {r['step_seconds'] / base:.2f}x" for n, r in results.items())
        print(f"step / grpo-long step (one round of the same largest context, 2B): {ratios}")
    if "grpo" in results and "first" in results:
        ratio = results["first"]["step_seconds"] / results["grpo"]["step_seconds"]
        print(
            f"MOTIF step / GRPO step: {ratio:.2f}x (target <= 3x; reference-style generation "
            f"would pay about 1 + k(n-1) = {1 + args.k * (args.rounds - 1)}x the generation calls)"
        )
    if "grpo" in results:  # every method against GRPO at the same per-round budget
        grpo = results["grpo"]["step_seconds"]
        others = ", ".join(
            f"{n} {r['step_seconds'] / grpo:.2f}x" for n, r in results.items() if n != "grpo"
        )
        print(f"step / GRPO step: {others}")
    if "first" in results and "all" in results:
        every, first = results["all"], results["first"]["step_seconds"]
        rounds = ", ".join(
            f"round {r}: {every[f'round{r}_step_seconds'] / first:.2f}x"
            for r in range(1, args.rounds + 1)
            if f"round{r}_step_seconds" in every
        )
        print(
            f"--credit all step / --credit first step: {every['step_seconds'] / first:.2f}x "
            f"(target <= 1.5x); by the round a step trained: {rounds}"
        )


if __name__ == "__main__":
    main()
