"""Rollout engine vs one trajectory at a time on the MOTIF reward workload.

8 round-1 responses x 4 continuations x 2 remaining rounds (n = 3), on the offline default
model on CPU, with the same sampling settings and token limits for both, in one run.

    .venv/bin/python bench/rollout.py [--responses 8 --k 4 --max-new-tokens 64]

The engine runs the workload twice: the first ("engine, cold") is the process's first
batch-32 call, which also pays for faulting in its fresh KV-cache memory (~0.5 s here: glibc
keeps the memory for later calls, see ``motif.backends.kernels.tune_malloc``); the second
("engine") is what every training step after the first sees. The one-at-a-time loop is warmed
up on one question's continuations first.

``--prefill-ab N`` instead times the engine alone, N rounds interleaved in one process (the
first dropped as warm-up), with and without the prefill's question level and the reuse within
a rollout (docs/decode.md, item 6), and prints medians: a side-by-side that load shifts alike.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import statistics
import time

from common import QUESTIONS, bound_fraction, gemm_rate, param_count, timed
from motif.backends.base import SamplingParams
from motif.config import ModelArgs
from motif.engine import RolloutEngine
from motif.protocol import Protocol
from motif.runtime import load_backend


def sequential(backend, protocol, questions, firsts, k, params):
    """What the reference does: every continuation, every round, one generate call at a time."""
    tokens = 0
    for question, first in zip(questions, firsts, strict=True):
        for _ in range(k):
            summary = protocol.summary(first)
            for index in range(2, protocol.rounds + 1):
                out = backend.generate([protocol.messages(question, index, summary)], params)[0]
                tokens += out.completion_tokens
                summary = protocol.summary(out.text)
    return tokens


def prefill_ab(backend, engine, questions, firsts, k, rounds: int, bound: float) -> None:
    """Engine time with the two-level prefill and no reuse ("before", as up to c7a1d42) and with
    the question level and ``frozen_weights`` reuse ("after"), interleaved."""
    import motif.backends.prefill as prefill

    grouped, frozen = prefill.group_suffixes, backend.frozen_weights
    alone = lambda suffixes: [([i], 0) for i in range(len(suffixes))]  # noqa: E731
    variants = {"before": (alone, contextlib.nullcontext), "after": (grouped, frozen)}
    seconds: dict[str, list[float]] = {name: [] for name in variants}
    for index in range(rounds):
        for name, (group, reuse) in variants.items():
            prefill.group_suffixes, backend.frozen_weights = group, reuse
            start = time.perf_counter()
            groups = engine.continue_from(questions, firsts, k)
            if index:
                seconds[name].append(time.perf_counter() - start)
    prefill.group_suffixes, backend.frozen_weights = grouped, frozen
    tokens = sum(r.completion_tokens for g in groups for t in g for r in t.rounds[1:])
    for name, times in seconds.items():
        median = statistics.median(times)
        print(
            f"{name:<8} median {median:.2f} s of {len(times)} ({min(times):.2f}-{max(times):.2f}),"
            f" {tokens / median:.1f} tok/s = {tokens / median / bound:.1%} of the bound"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--responses", type=int, default=8)
    parser.add_argument("--k", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--prefill-ab", type=int, default=0, metavar="N", help="see the docstring")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    print(f"uptime: {os.getloadavg()} (load averages 1/5/15 min; 2 cores)")

    backend = load_backend(ModelArgs(max_batch_size=64))
    protocol = Protocol(rounds=args.rounds)
    params = SamplingParams(max_new_tokens=args.max_new_tokens, temperature=0.8, top_p=0.95, seed=0)
    questions = (QUESTIONS * args.responses)[: args.responses]
    engine = RolloutEngine(backend, protocol, params)
    firsts = [t.final_text for t in engine.run(questions)]  # round 1, not timed

    rate_before = gemm_rate()  # the bound from the better of two samples: before and after
    if args.prefill_ab:
        bound = max(rate_before, gemm_rate()) / (2 * param_count(backend.model))
        print(f"fp32 GEMM bound {bound:.0f} tokens/s; load {os.getloadavg()}")
        prefill_ab(backend, engine, questions, firsts, args.k, args.prefill_ab + 1, bound)
        return
    times: dict[str, float] = {}
    tokens: dict[str, int] = {}
    for name in ("engine, cold", "engine"):
        with timed(times, name):
            groups = engine.continue_from(questions, firsts, args.k)
        tokens[name] = sum(r.completion_tokens for g in groups for t in g for r in t.rounds[1:])
    sequential(backend, protocol, questions[:1], firsts[:1], 1, params)  # warm-up
    with timed(times, "sequential"):
        tokens["sequential"] = sequential(backend, protocol, questions, firsts, args.k, params)

    rate = max(rate_before, gemm_rate())
    params_n = param_count(backend.model)
    print(
        f"workload: {args.responses} responses x {args.k} continuations x {args.rounds - 1} rounds, "
        f"{args.max_new_tokens} new tokens max, T=0.8 top_p=0.95"
    )
    print(f"fp32 GEMM rate: {rate / 1e9:.1f} GFLOP/s; bound = {rate / (2 * params_n):.0f} tokens/s")
    print(f"{'path':<14}{'seconds':>8}{'tokens':>10}{'tokens/s':>11}{'of bound':>10}")
    rates = {}
    for name, count in tokens.items():
        rates[name] = count / times[name]
        frac = bound_fraction(rates[name], params_n, rate)
        print(f"{name:<14}{times[name]:>8.1f}{count:>10}{rates[name]:>11.1f}{frac:>10.1%}")
    print(
        f"speed-up (tokens/s): {rates['engine'] / rates['sequential']:.1f}x; "
        f"wall-clock: {times['sequential'] / times['engine']:.1f}x"
    )


if __name__ == "__main__":
    main()
