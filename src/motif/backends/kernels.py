"""Machine-dependent choices of the fast decode path: which GEMM kernel, measured once per run.

On CPU, ``torch.nn.functional.linear`` in fp32 calls MKL's sgemm. On CPUs that MKL does not
dispatch its AVX-512 kernels for (AMD EPYC, measured: ~215 GFLOP/s on 2 cores for a large
product, 120-155 GFLOP/s at decode shapes), oneDNN's fp32 GEMM with a weight pre-packed into
its blocked layout (``torch.ops.mkldnn._reorder_linear_weight`` / ``_linear_pointwise``, the
kernels ``torch.compile``'s CPU freezing pass uses) runs the same products 2.3-3.6x faster.
Both are IEEE fp32 with fp32 accumulation; they differ only in summation order (max error
against an fp64 product at K=576: 2.0e-6 MKL, 3.7e-6 oneDNN; docs/decode.md).

:func:`decode_plan` measures both kernels at a decode shape once per process and device, and
returns every such choice as a dict (printed once, for a run's metadata). :func:`packed_linears`
applies the choice for the duration of one generation call: each large ``nn.Linear`` gets a
packed copy of its *live* weight, so LoRA adapters (computed on top of the base layer by
PEFT), merged adapters and optimiser updates are all followed; nothing outlives the call.
"""

from __future__ import annotations

import copy
import functools
import logging
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch

from motif.progress import verbose

logger = logging.getLogger(__name__)

# The decode GEMM shape measured for the plan: batch 64, SmolLM2-135M's gate/up projection.
PROBE_SHAPE = (64, 576, 1536)
# oneDNN must beat MKL by this factor at the probe shape to be used (packing costs a copy of
# the weights per call, and small margins are within the noise of a shared machine).
MIN_GAIN = 1.15
# Fewer rows than this per call stay on aten: at 1 row oneDNN measured slower than MKL (19
# against 31 GFLOP/s; the product streams the weights either way) and packing the weights,
# 0.1-0.2 s per call, would not be paid back (the one-at-a-time loop of bench/rollout.py).
MIN_PACKED_ROWS = 8
# Linear layers smaller than this on either side stay as they are (LoRA's rank-r factors).
MIN_PACKED_DIM = 32


def _onednn_fp32_available() -> bool:
    ops = getattr(torch.ops, "mkldnn", None)
    return bool(
        torch.backends.mkldnn.is_available()
        and ops is not None
        and hasattr(ops, "_reorder_linear_weight")
        and hasattr(ops, "_linear_pointwise")
    )


def _gemm_rates(shape: tuple[int, int, int], rounds: int = 7) -> dict[str, float]:
    """GFLOP/s at ``shape`` (M, K, N): aten fp32 (MKL), packed oneDNN fp32, aten bf16.

    The kernels take turns within each round and each rate is the median over rounds, so a
    busy moment on shared cores hits all of them rather than deciding the comparison.
    """
    m, k, n = shape
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(m, k, generator=gen)
    w = torch.randn(n, k, generator=gen)
    xb, wb = x.bfloat16(), w.bfloat16()
    runs = {
        "aten_fp32": lambda: torch.nn.functional.linear(x, w),
        "aten_bf16": lambda: torch.nn.functional.linear(xb, wb),
    }
    if _onednn_fp32_available():
        packed = torch.ops.mkldnn._reorder_linear_weight(w, m)
        runs["onednn_fp32"] = functools.partial(
            torch.ops.mkldnn._linear_pointwise, x, packed, None, "none", [], ""
        )
    times: dict[str, list[float]] = {name: [] for name in runs}
    for run in runs.values():
        run()  # warm-up
    for _ in range(rounds):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    flop = 2 * m * k * n / 1e9
    return {name: round(flop / statistics.median(t), 1) for name, t in times.items()}


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _amx() -> bool:
    try:  # private but stable since torch 2.3
        return bool(torch.cpu._is_amx_tile_supported())
    except AttributeError:
        return False


# glibc mallopt parameters (malloc.h) and the values set for decoding: blocks up to 32 MiB (the
# most glibc allows) come from the heap, and freed heap memory is kept for reuse.
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
MMAP_THRESHOLD = 32 * 1024 * 1024
TRIM_THRESHOLD = 1024 * 1024 * 1024


def tune_malloc() -> str:
    """Stop glibc from returning decode buffers to the kernel between steps; what was done.

    With glibc's defaults the decode loop's large short-lived buffers (logits [64, 49152] =
    12.6 MB, exp/sub temporaries, prefill activations) are mmapped and unmapped or trimmed
    every step: 550k page faults and ~1 s of system time per 16-token batch-64 call, against
    36k with these settings (measured, docs/decode.md). Process-wide and permanent: memory
    freed by the process stays mapped up to 1 GiB. Left alone when ``MALLOC_MMAP_THRESHOLD_``
    or ``MALLOC_TRIM_THRESHOLD_`` is set in the environment, or when libc is not glibc.
    """
    if os.environ.get("MALLOC_MMAP_THRESHOLD_") or os.environ.get("MALLOC_TRIM_THRESHOLD_"):
        return "unchanged (MALLOC_*_ set in the environment)"
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        ok = libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) and libc.mallopt(
            M_TRIM_THRESHOLD, TRIM_THRESHOLD
        )
    except (OSError, AttributeError):
        return "unchanged (not glibc)"
    if not ok:
        return "unchanged (mallopt refused)"
    return f"glibc mmap_threshold={MMAP_THRESHOLD} trim_threshold={TRIM_THRESHOLD}"


def bf16_matmul_is_fast(device: torch.device) -> bool:
    """Whether bf16 matrix products beat fp32 on ``device`` (CUDA with bf16, or CPU with AMX)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type != "cpu":
        return False
    try:  # private but stable since torch 2.3; bf16 is only measured to win with AMX tiles
        return bool(torch.cpu._is_amx_tile_supported())
    except AttributeError:
        return False


@functools.cache
def _cpu_plan() -> dict[str, Any]:
    malloc = tune_malloc() if sys.platform.startswith("linux") else "unchanged (not Linux)"
    rates = _gemm_rates(PROBE_SHAPE)
    onednn = rates.get("onednn_fp32", 0.0)
    pinned = _pinned_kernel()
    kernel = pinned or ("onednn_packed" if onednn >= MIN_GAIN * rates["aten_fp32"] else "aten")
    plan = {
        "device": "cpu",
        "cpu": _cpu_name(),
        "amx": _amx(),
        "threads": torch.get_num_threads(),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "(unset: active spinning)"),
        "probe_shape_mkn": list(PROBE_SHAPE),
        "gemm_gflops": rates,
        "fp32_linear_kernel": kernel,
        "fp32_linear_kernel_pinned": pinned is not None,
        "bf16_decode_auto": bf16_matmul_is_fast(torch.device("cpu")),
        "malloc": malloc,
        "min_packed_rows": MIN_PACKED_ROWS,
    }
    logger.info("decode plan: %s", plan)
    if verbose():  # internal: the run records the plan; MOTIF_DEBUG / MOTIF_VERBOSE show it
        print(f"motif decode plan: {describe(plan)}", file=sys.stderr, flush=True)
    return plan


KERNEL_ENV = "MOTIF_FP32_KERNEL"
"""Pins the fp32 linear kernel (``aten`` or ``onednn_packed``) instead of measuring: the two
round differently (about 1e-6 apart), so where their measured rates are close (within
``MIN_GAIN``) the choice, and in rare cases a greedy token, can change from one process to the
next. Set it to compare or re-score runs exactly on one machine."""


def _pinned_kernel() -> str | None:
    """The kernel :data:`KERNEL_ENV` pins, or None when unset; ValueError names a bad value."""
    value = os.environ.get(KERNEL_ENV, "").strip()
    if not value:
        return None
    if value not in ("aten", "onednn_packed"):
        raise ValueError(f"{KERNEL_ENV} must be aten or onednn_packed, got {value!r}")
    if value == "onednn_packed" and not _onednn_fp32_available():
        raise ValueError(
            f"{KERNEL_ENV}=onednn_packed, but this torch has no packed oneDNN fp32: set "
            f"{KERNEL_ENV}=aten (results then differ slightly from onednn_packed runs)"
        )
    return value


def decode_plan(device: torch.device | str = "cpu") -> dict[str, Any]:
    """The fast decode path's machine-dependent choices on ``device``, as a JSON-able dict.

    Keys (CPU): ``cpu`` (model name), ``amx``, ``threads``, ``omp_wait_policy``,
    ``gemm_gflops`` (measured at ``probe_shape_mkn``: ``aten_fp32`` = MKL, ``onednn_fp32`` =
    packed oneDNN, ``aten_bf16``), ``fp32_linear_kernel`` (``onednn_packed`` when it is at
    least ``MIN_GAIN`` times MKL, else ``aten``; used for calls of ``min_packed_rows`` rows
    or more; :data:`KERNEL_ENV` pins it, then ``fp32_linear_kernel_pinned`` is true),
    ``bf16_decode_auto`` (what ``decode_dtype="auto"`` picks:
    :func:`bf16_matmul_is_fast`, bf16 only with AMX) and ``malloc``
    (what :func:`tune_malloc` did). Measured once per process (~0.1 s) and printed once to
    stderr; later calls return the same values. Other devices: ``{"device": ...,
    "fp32_linear_kernel": "aten"}``.
    """
    device = torch.device(device)
    if device.type != "cpu":
        return {"device": str(device), "fp32_linear_kernel": "aten"}
    return copy.deepcopy(_cpu_plan())


def describe(plan: dict[str, Any]) -> str:
    """One line for a log: the kernel, the precision ``auto`` picks and the measured rates."""
    rates = ", ".join(f"{k} {v:.0f}" for k, v in plan.get("gemm_gflops", {}).items())
    auto = "bf16" if plan.get("bf16_decode_auto") else "fp32"
    return (
        f"{plan.get('cpu', plan['device'])}: fp32 linear kernel {plan['fp32_linear_kernel']}"
        f"{f' (pinned by {KERNEL_ENV})' if plan.get('fp32_linear_kernel_pinned') else ''}, "
        f"decode_dtype auto -> {auto}, threads {plan.get('threads')}, "
        f"malloc {plan.get('malloc')}, "
        f"GFLOP/s at {plan.get('probe_shape_mkn')}: {rates}"
    )


# --------------------------------------------------------------------------------------------
# Packed linear layers for one generation call
# --------------------------------------------------------------------------------------------


def _packable(module: torch.nn.Module) -> bool:
    weight = getattr(module, "weight", None)
    return (
        type(module) is torch.nn.Linear
        and "forward" not in module.__dict__  # someone else's instance-level forward: leave it
        and weight is not None
        and weight.dtype == torch.float32
        and weight.device.type == "cpu"
        and min(weight.shape) >= MIN_PACKED_DIM
    )


def _packed_forward(
    packed: torch.Tensor, bias: torch.Tensor | None, x: torch.Tensor
) -> torch.Tensor:
    if x.dtype != torch.float32 or x.requires_grad:  # not a decode input: the plain product
        raise RuntimeError("packed linear layers are for fp32 inference under torch.no_grad()")
    # 2-D input: oneDNN runs a [rows, 1, K] input as a slower batched product (same values).
    flat = x.reshape(-1, x.shape[-1])
    out = torch.ops.mkldnn._linear_pointwise(flat, packed, bias, "none", [], "")
    return out.view(*x.shape[:-1], out.shape[-1])


def _lora_delta(module: torch.nn.Module) -> torch.Tensor | None:
    """The weight a PEFT ``lora.Linear`` adds to its base layer now, or None if not plain.

    Plain: adapters enabled and not merged, eval mode (dropout is the identity), every active
    adapter vanilla LoRA (no DoRA or other variant, no bias on ``lora_B``). Then the layer
    computes ``x W^T + b + sum_a s_a (x A_a^T) B_a^T`` = ``x (W + sum_a s_a B_a A_a)^T + b``.
    """
    base = getattr(module, "base_layer", None)
    lora_a = getattr(module, "lora_A", None)
    if not isinstance(base, torch.nn.Linear) or lora_a is None or not hasattr(module, "merged"):
        return None
    if module.disable_adapters or module.merged or module.training:
        return None
    active = [a for a in module.active_adapters if a in lora_a]
    variants = getattr(module, "lora_variant", {})
    if not active or any(a in variants or module.lora_B[a].bias is not None for a in active):
        return None
    return sum(module.get_delta_weight(a) for a in active)


def _pack(
    module: torch.nn.Module, weight: Callable[[], torch.Tensor], bias: Any, rows: int, reuse: Any
) -> None:
    key = ("packed", id(module))
    packed = reuse.get(key) if reuse is not None else None
    if packed is None:
        packed = torch.ops.mkldnn._reorder_linear_weight(weight().contiguous(), max(rows, 1))
        if reuse is not None:
            reuse[key] = packed
    bias = bias.detach() if bias is not None else None
    module.forward = functools.partial(_packed_forward, packed, bias)


@contextmanager
def packed_linears(
    model: Any, rows: int, kernel: str | None = None, reuse: dict | None = None
) -> Iterator[int]:
    """Run ``model``'s large fp32 ``nn.Linear`` layers through packed oneDNN GEMMs in the block.

    ``rows``: the batch size the packing is tuned for (any row count works). ``kernel``:
    ``"onednn_packed"`` or ``"aten"`` (do nothing); ``None`` takes the plan's choice, or
    ``"aten"`` below ``MIN_PACKED_ROWS`` rows. Yields
    the number of layers packed. Each packed weight is a copy of the live weight made on
    entry (one pass over the weights; 0.1-0.2 s for the 135M model); on exit the layers'
    own ``forward`` is back. Call under ``torch.no_grad()``: the packed product has no
    backward. Layers whose dims are below ``MIN_PACKED_DIM`` (LoRA factors) are left alone.
    A PEFT LoRA layer in plain use (:func:`_lora_delta`) is packed as one product with its
    adapter merged into the copy, ``W + s B A``; other LoRA layers keep PEFT's forward over
    a packed base layer. ``reuse``: packed copies are taken from this dict if there and put
    in it if not (by layer), for callers whose weights stay the same between calls.
    """
    if kernel is None:
        small = rows < MIN_PACKED_ROWS
        kernel = "aten" if small else decode_plan(_device(model))["fp32_linear_kernel"]
    patched: list[torch.nn.Module] = []
    merged: set[int] = set()  # base layers packed inside their LoRA layer
    try:
        if kernel == "onednn_packed":
            for module in model.modules():
                base = getattr(module, "base_layer", None)
                if "forward" not in module.__dict__ and base is not None and _packable(base):
                    delta = _lora_delta(module)
                    if delta is not None:  # the adapter merged into the packed copy
                        merge = functools.partial(_merged, base, delta)
                        _pack(module, merge, base.bias, rows, reuse)
                        patched.append(module)
                        merged.add(id(base))
                        continue
                if _packable(module) and id(module) not in merged:
                    _pack(module, module.weight.detach, module.bias, rows, reuse)
                    patched.append(module)
        elif kernel != "aten":
            raise ValueError(f"kernel must be 'onednn_packed' or 'aten', got {kernel!r}")
        yield len(patched)
    finally:
        for module in patched:
            del module.forward


def _merged(base: torch.nn.Module, delta: torch.Tensor) -> torch.Tensor:
    return base.weight.detach() + delta


def _device(model: Any) -> torch.device:
    return next(model.parameters()).device
