"""Evaluation throughput: batched vs one problem at a time, multi-round greedy, in one run.

``motif eval``'s own code path (:func:`motif.eval.runner.run_eval`) on the offline default
model on CPU, with the same problems, protocol and token limits for both, the model loaded
once and warmed up first. Problems per minute count whole problems (all rounds, grading and
the fsynced writes included).

    .venv/bin/python bench/eval_speed.py [--data-dir ../shared/data --problems 8 --rounds 3
                                          --max-new-tokens 64 --batch-size 8]
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from motif.config import GenerationArgs, ModelArgs, ProtocolArgs  # noqa: E402
from motif.eval.runner import EvalArgs, run_eval  # noqa: E402
from motif.runtime import load_backend  # noqa: E402

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def timed_eval(backend, out: Path, args: argparse.Namespace, batch_size: int) -> dict:
    """One run_eval into a fresh directory; returns its summary plus wall time."""
    ev = EvalArgs(
        benchmark="gsm8k",
        data_dir=args.data_dir,
        limit=args.problems,
        batch_size=batch_size,
        output_dir=str(out),
    )
    gen = GenerationArgs(max_new_tokens=args.max_new_tokens)
    start = time.perf_counter()
    summary = run_eval(
        ev, ModelArgs(), gen, ProtocolArgs(rounds=args.rounds), backend_loader=lambda _: backend
    )
    summary["wall_s"] = time.perf_counter() - start
    return summary


def warm_up(backend, rounds: int) -> None:
    """One short generate call: the first call pays one-off start-up costs."""
    from motif.backends.base import SamplingParams
    from motif.protocol import Protocol

    chat = Protocol(rounds=rounds).messages("What is 2 + 2?", 1)
    backend.generate([chat, chat], SamplingParams(max_new_tokens=8))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=str(DEFAULT_DATA))
    parser.add_argument("--problems", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=8)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    import torch

    backend = load_backend(ModelArgs())
    warm_up(backend, args.rounds)
    print(
        f"torch threads {torch.get_num_threads()}; {args.problems} GSM8K problems, "
        f"{args.rounds} rounds, greedy, max_new_tokens {args.max_new_tokens} "
        f"(later rounds {2 * args.max_new_tokens})"
    )
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, size in (("batched", args.batch_size), ("one at a time", 1)):
            s = timed_eval(backend, Path(tmp) / name.replace(" ", "_"), args, size)
            m = s["metrics"]
            rate = m["problems"] / s["wall_s"] * 60
            results[name] = (rate, s)
            print(
                f"{name:>14} (batch {size}): {s['wall_s']:7.1f} s  {rate:6.2f} problems/min  "
                f"pass@1 {100 * m['pass@1']:.1f}%  tokens/answer {m['tokens']['generated_mean']:.0f}"
            )
    speedup = results["batched"][0] / results["one at a time"][0]
    print(f"speed-up batched / one at a time: {speedup:.2f}x")


if __name__ == "__main__":
    main()
