"""Decode throughput: ``model.generate`` against motif's fast path, in one run.

Usage::

    .venv/bin/python bench/decode.py                 # full: batches 1 8 32 64 128 + continuation
    .venv/bin/python bench/decode.py --quick         # batches 1 8 64, smaller continuation
    .venv/bin/python bench/decode.py --batches 64 --no-continuation
    .venv/bin/python bench/decode.py --batches 64 --paths fast --no-continuation --profile 25

Each batch holds distinct MOTIF round-1 prompts (system prompt + question, ~200 tokens), one
sample each, sampled at temperature 1.0 / top_p 0.95. EOS is ignored by default so every path
generates exactly ``--new-tokens`` per row (``--honour-eos`` counts whatever was generated).
The continuation workload is ``RolloutEngine.continue_from`` on a 3-round protocol: rounds 2
and 3 for ``k`` continuations of each round-1 response. tokens/s counts generated tokens over
wall time, prefill included; the GEMM bound is the fp32 rate of a large matmul measured in the
same run (the better of a measurement before and one after the workloads: on shared cores a
single one can land on a busy moment) divided by 2 x parameters FLOPs per token. ``--profile N``
runs the first path at the first batch once more under ``torch.profiler`` and prints the N
heaviest ops, by op and by op and input shape (the breakdown in docs/decode.md).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# The 2 cores are shared with other jobs: spinning OpenMP workers then wait at every barrier for
# a descheduled sibling, and runs slowed down 5-20x at random. Passive workers sleep instead.
# Must be set before torch loads OpenMP; OMP_WAIT_POLICY=ACTIVE in the environment overrides.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402

from motif.backends.base import SamplingParams  # noqa: E402
from motif.backends.hf import TransformersBackend  # noqa: E402
from motif.engine import RolloutEngine  # noqa: E402
from motif.models import load_model  # noqa: E402
from motif.protocol import Protocol  # noqa: E402

QUESTIONS = [
    f"What is {a} + {b} * {c}? Give the final number." for a in range(3, 40) for b, c in [(7, 6)]
] + [f"A farm has {n} chickens and {n + 3} cows. How many legs are there?" for n in range(2, 200)]

ROUND_ONE = (
    "<reasoning>\nFirst I multiply, then I add the result to the first number. "
    "Multiplying gives {p}, and adding gives {s}.\n</reasoning>\n<answer>\n"
    "The product is {p}; the sum is {s}. So far the answer is {s}.\n</answer>"
)

PATHS = {
    "generate": {"decode": "generate", "decode_dtype": "model"},
    "fast": {"decode": "fast", "decode_dtype": "model"},
    "fast-bf16": {"decode": "fast", "decode_dtype": "bfloat16"},
    "generate-bf16": {"decode": "generate", "decode_dtype": "bfloat16"},
}
DEFAULT_PATHS = ["generate", "fast", "fast-bf16"]


@dataclass
class Timing:
    tokens: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.tokens / self.seconds


def gemm_rate(dtype: torch.dtype, size: int = 2048, reps: int = 6) -> float:
    """GFLOP/s of a square matmul (best of ``reps``)."""
    a = torch.randn(size, size, dtype=dtype)
    b = torch.randn(size, size, dtype=dtype)
    a @ b
    best = float("inf")
    for _ in range(reps):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best / 1e9


def make_backend(model, tokenizer, path: str, batch: int, honour_eos: bool):
    backend = TransformersBackend(model, tokenizer, max_batch_size=batch, **PATHS[path])
    if not honour_eos:
        backend.eos_ids = [len(tokenizer) + 1]  # an id no model can produce: never stops
    return backend


def run_batch(model, tokenizer, path: str, batch: int, args) -> Timing:
    backend = make_backend(model, tokenizer, path, batch, args.honour_eos)
    protocol = Protocol(rounds=3)
    chats = [protocol.messages(q, 1) for q in QUESTIONS[:batch]]
    params = SamplingParams(args.new_tokens, temperature=1.0, top_p=0.95, seed=0)
    start = time.perf_counter()
    outs = backend.generate(chats, params)
    return Timing(sum(o.completion_tokens for o in outs), time.perf_counter() - start)


def run_continuation(model, tokenizer, path: str, args) -> Timing:
    n, k = args.responses, args.k
    backend = make_backend(model, tokenizer, path, n * k, args.honour_eos)
    params = SamplingParams(args.new_tokens, temperature=1.0, top_p=0.95, seed=0)
    engine = RolloutEngine(backend, Protocol(rounds=3), params)
    questions = QUESTIONS[:n]
    firsts = [ROUND_ONE.format(p=7 * 6, s=a + 42) for a in range(3, 3 + n)]
    start = time.perf_counter()
    groups = engine.continue_from(questions, firsts, k=k)
    tokens = sum(r.completion_tokens for g in groups for t in g for r in t.rounds[1:])
    return Timing(tokens, time.perf_counter() - start)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8, 32, 64, 128])
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--paths", nargs="+", default=DEFAULT_PATHS, choices=list(PATHS))
    parser.add_argument("--responses", type=int, default=8, help="round-1 responses")
    parser.add_argument("--k", type=int, default=4, help="continuations per response")
    parser.add_argument("--no-continuation", action="store_true")
    parser.add_argument("--honour-eos", action="store_true")
    parser.add_argument("--quick", action="store_true", help="batches 1 8 64, 4 x 4 continuation")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    parser.add_argument("--profile", type=int, default=0, metavar="N", help="print N top ops")
    args = parser.parse_args(argv)
    if args.quick:
        args.batches, args.responses = [1, 8, 64], 4
    return args


def ratio_cells(timings: dict[str, Timing], paths: list[str], bound: float) -> list[str]:
    cells = [f"{timings[p].rate:8.1f} ({timings[p].rate / bound:4.0%})" for p in paths]
    base = timings.get("generate")
    if base is not None:
        cells += [f"{timings[p].rate / base.rate:5.2f}x" for p in paths if p != "generate"]
    return cells


def profile(model, tokenizer, path: str, batch: int, args, rows: int) -> None:
    """Profile one run of ``path`` at ``batch``: self CPU time by op, then by op and shape."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    with torch_profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        timing = run_batch(model, tokenizer, path, batch, args)
    print(f"profiled {path} at batch {batch}: {timing.rate:.1f} tok/s under the profiler")
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=rows))
    by_shape = prof.key_averages(group_by_input_shape=True)
    print(by_shape.table(sort_by="self_cpu_time_total", row_limit=rows, max_shapes_column_width=70))


def main(argv: list[str]) -> None:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model, tokenizer = load_model(None)
    params = sum(p.numel() for p in model.parameters())
    fp32, bf16 = gemm_rate(torch.float32), gemm_rate(torch.bfloat16)
    bound = fp32 * 1e9 / (2 * params)
    policy = os.environ["OMP_WAIT_POLICY"]
    print(f"threads={torch.get_num_threads()} OMP_WAIT_POLICY={policy} params={params / 1e6:.1f}M")
    print(f"load averages {os.getloadavg()} (1/5/15 min)")
    print(f"GEMM fp32 {fp32:.0f} GFLOP/s, bf16 {bf16:.0f} GFLOP/s; fp32 bound {bound:.0f} tok/s")
    make_backend(model, tokenizer, "fast", 1, False).generate(  # warm-up
        [Protocol(3).messages("Hi", 1)], SamplingParams(4)
    )
    ratios = (
        [f"{p}/generate" for p in args.paths if p != "generate"] if "generate" in args.paths else []
    )
    header = ["workload", *[f"{p} tok/s (bound)" for p in args.paths], *ratios]
    print(" | ".join(header))
    for batch in args.batches:
        timings = {p: run_batch(model, tokenizer, p, batch, args) for p in args.paths}
        print(" | ".join([f"batch {batch}", *ratio_cells(timings, args.paths, bound)]), flush=True)
    if not args.no_continuation:
        timings = {p: run_continuation(model, tokenizer, p, args) for p in args.paths}
        label = f"continuation {args.responses}x{args.k}x2"
        print(" | ".join([label, *ratio_cells(timings, args.paths, bound)]), flush=True)
    after = gemm_rate(torch.float32)
    print(
        f"GEMM fp32 after the workloads {after:.0f} GFLOP/s (bound above from {fp32:.0f}; "
        f"with the better of the two: x{fp32 / max(fp32, after):.2f} on every fraction); "
        f"load averages {os.getloadavg()}"
    )
    if args.profile:
        profile(model, tokenizer, args.paths[0], args.batches[0], args, args.profile)


if __name__ == "__main__":
    main(sys.argv[1:])
