"""Seconds per optimiser step, GRPO vs MOTIF at equal m, on the offline default model on CPU.

Both methods run in one process, one after the other, with the same round-1 settings; MOTIF adds
k continuations of every round-1 completion over the remaining n-1 rounds. Each step is split into
round-1 generation, rewards (the continuations, for MOTIF) and optimisation (log-probs, backward,
optimiser), from the run's own metrics.jsonl. The first step is a warm-up and is not averaged.

    .venv/bin/python bench/train_step.py [--steps 3 --m 4 --k 4 --rounds 3 --tokens 64]
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

KEYS = ("step_seconds", "round1_generation_seconds", "reward_seconds", "optimisation_seconds")


def run(method: str, args: argparse.Namespace, out: Path) -> dict[str, float]:
    flags = [
        "--method",
        method,
        "--output-dir",
        str(out / method),
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
    if args.init_adapter:
        flags += ["--init-adapter", args.init_adapter]
    train(parse_config(flags))
    records = [json.loads(x) for x in (out / method / "metrics.jsonl").read_text().splitlines()]
    steady = records[1:] or records
    result = {k: statistics.mean(r[k] for r in steady) for k in KEYS}
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
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--m", type=int, default=4, help="round-1 generations per question")
    parser.add_argument("--k", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tokens", type=int, default=64, help="max new tokens per round")
    parser.add_argument("--init-adapter", default=None, help="e.g. a motif sft cold start")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        results = {m: run(m, args, Path(tmp)) for m in ("grpo", "motif")}
    print(
        f"\nm={args.m}, k={args.k}, n={args.rounds}, <= {args.tokens} tokens per round; "
        f"mean of steps 2..{args.steps}"
    )
    print(
        f"{'method':<8}{'step s':>9}{'round-1 s':>11}{'rewards s':>11}{'(contin. s)':>13}"
        f"{'optim s':>9}{'r1 tok':>8}{'cont tok':>10}"
    )
    for name, r in results.items():
        print(
            f"{name:<8}{r['step_seconds']:>9.1f}{r['round1_generation_seconds']:>11.1f}"
            f"{r['reward_seconds']:>11.1f}{r['continuation_seconds']:>13.1f}"
            f"{r['optimisation_seconds']:>9.1f}{r['round1_tokens']:>8.0f}{r['continuation_tokens']:>10.0f}"
        )
    ratio = results["motif"]["step_seconds"] / results["grpo"]["step_seconds"]
    print(
        f"MOTIF step / GRPO step: {ratio:.2f}x (target <= 3x; reference-style generation "
        f"would pay about 1 + k(n-1) = {1 + args.k * (args.rounds - 1)}x the generation calls)"
    )


if __name__ == "__main__":
    main()
