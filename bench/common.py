"""Helpers shared by the benchmarks: GEMM rate, parameter count, sample questions, timing."""

from __future__ import annotations

import os
import time
from contextlib import contextmanager

# OpenMP spin-waiting slows torch 5-20x when another process shares the cores (docs/decode.md);
# set before torch is imported by the benchmarks that import this module first.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

QUESTIONS = [
    "Tom has 3 apples and buys 5 more. How many apples does he have?",
    "A train travels 60 km per hour for 3 hours. How far does it go?",
    "What is 17 + 26 - 9?",
    "Sara reads 12 pages a day. How many pages does she read in a week?",
    "A box holds 6 eggs. How many boxes are needed for 45 eggs?",
    "What is 15% of 80?",
    "If 4 pencils cost 2 dollars, how much do 10 pencils cost?",
    "A rectangle is 7 cm by 5 cm. What is its area?",
]


def gemm_rate(size: int = 2048, repeats: int = 10, dtype=None) -> float:
    """Matrix-multiply throughput in FLOP/s (2 n^3 per n x n product), best of ``repeats``.

    The best single product, not the mean: on cores shared with other jobs the mean measures
    the other jobs too, and a low rate would inflate every "fraction of the bound".
    """
    import torch

    dtype = dtype or torch.float32
    a = torch.randn(size, size, dtype=dtype)
    b = torch.randn(size, size, dtype=dtype)
    torch.matmul(a, b)  # warm-up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        torch.matmul(a, b)
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best


def param_count(model) -> int:
    """Parameters of a model (2 x this many FLOPs per generated token)."""
    return sum(p.numel() for p in model.parameters())


def bound_fraction(tokens_per_s: float, params: int, rate: float) -> float:
    """Generated tokens/s as a fraction of what the GEMM rate allows."""
    return tokens_per_s * 2 * params / rate


@contextmanager
def timed(result: dict, key: str):
    """Store the wall time of the block in ``result[key]``."""
    start = time.perf_counter()
    yield
    result[key] = time.perf_counter() - start
