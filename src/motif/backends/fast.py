"""A fast decode loop for transformers causal LMs: shared prefill, cheap exact sampling, live rows.

``model.generate`` spends most of a MOTIF rollout on work it cannot avoid by design:

* it prefills every row, so the ``k`` continuations of one round-2 prompt (and GRPO's ``m``
  generations of one prompt) are prefilled ``k`` times, and the long system prompt that every
  MOTIF prompt starts with is prefilled once per row;
* ``DynamicCache`` concatenates every layer's keys and values at every step: a fresh allocation
  and a full copy of the cache per token;
* top-p sorts the whole vocabulary every step;
* finished rows keep being computed until the longest row ends.

:func:`fast_decode` prefills the prompts' common prefix once, then what groups of prompts share
(the question of a trajectory's continuations), then each distinct prompt once
(:mod:`motif.backends.prefill`), and expands the cache to one row per sample; keys and values live in preallocated slabs written
in place (:class:`SlabLayer`); :func:`sample_tokens` draws from the exact temperature / top-k /
top-p distribution of ``generate`` from a partial top-k; finished rows are dropped from the batch.
"""

from __future__ import annotations

import copy
import functools
import logging
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch

from motif.backends import kernels
from motif.backends.base import SamplingParams
from motif.backends.cascade import shared_prefix_attention
from motif.backends.kernels import bf16_matmul_is_fast as bf16_matmul_is_fast  # public here too
from motif.backends.kernels import packed_linears
from motif.backends.prefill import (
    Level,
    cache_width,
    dedupe,
    forward_last,
    prefill,
    prefix_levels,
)

logger = logging.getLogger(__name__)

# Candidates taken first for top-p without top-k; rows whose candidates hold less than top_p of
# the mass retry with CANDIDATE_GROWTH times more, up to the whole vocabulary.
FIRST_CANDIDATES = 64
CANDIDATE_GROWTH = 8
# Finished rows are dropped once they are at least this fraction of the batch: dropping copies
# the cache, so doing it for every single finished row would cost more than it saves.
COMPACT_FRACTION = 0.125


# --------------------------------------------------------------------------------------------
# Sampling
# --------------------------------------------------------------------------------------------


def sample_tokens(
    logits: torch.Tensor, params: SamplingParams, first_candidates: int = FIRST_CANDIDATES
) -> torch.Tensor:
    """Draw one token per row of ``logits`` ([rows, vocab]) as ``generate`` would.

    Same distribution as transformers' temperature, then top-k, then top-p warpers (top-p
    keeps the most likely tokens until the mass *before* a token reaches ``top_p``; with top-k
    it is taken over the renormalised top-k). Greedy is the argmax. Only a partial top-k is
    computed; the whole vocabulary is sorted only for rows whose first ``first_candidates``
    (growing) tokens hold less than ``top_p`` of the mass. Uses torch's global RNG.
    """
    if params.greedy:
        return logits.argmax(dim=-1)
    scaled = logits.float()
    if params.temperature != 1.0:
        scaled = scaled / params.temperature
    if params.top_k > 0:
        return _sample_top_k(scaled, params.top_k, params.top_p)
    if params.top_p < 1.0:
        return _sample_nucleus(scaled, params.top_p, first_candidates)
    return _draw(torch.softmax(scaled, dim=-1))


def _sample_top_k(scaled: torch.Tensor, top_k: int, top_p: float) -> torch.Tensor:
    vals, idx = _top_k_with_ties(scaled, min(top_k, scaled.shape[-1]))
    probs = torch.softmax(vals, dim=-1)  # renormalised over the top-k, as after TopKLogitsWarper
    return _pick(probs, idx, top_p)


def _top_k_with_ties(scaled: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The k largest per row, sorted, plus any tie of the k-th (TopKLogitsWarper keeps them).

    Rows with fewer candidates are padded with -inf. Ties are common with bf16 logits.
    """
    vals, idx = scaled.topk(k, dim=-1)
    widest = int((scaled >= vals[:, -1:]).sum(dim=-1).max())
    if widest > k:
        vals, idx = scaled.topk(widest, dim=-1)
        vals = vals.masked_fill(vals < vals[:, k - 1 : k], float("-inf"))
    return vals, idx


def _sample_nucleus(
    scaled: torch.Tensor, top_p: float, width: int, log_norm: torch.Tensor | None = None
) -> torch.Tensor:
    """Top-p over the whole vocabulary from the ``width`` most likely tokens, widening per row."""
    vocab = scaled.shape[-1]
    width = min(width, vocab)
    if log_norm is None:
        log_norm = _logsumexp(scaled)
    vals, idx = scaled.topk(width, dim=-1)
    probs = torch.exp(vals - log_norm)
    # Exact when the candidates hold >= top_p: every other token then has >= top_p before it.
    enough = probs.sum(dim=-1) >= top_p
    if width == vocab or bool(enough.all()):
        return _pick(probs, idx, top_p)
    tokens = torch.empty(scaled.shape[0], dtype=torch.long, device=scaled.device)
    if bool(enough.any()):
        tokens[enough] = _pick(probs[enough], idx[enough], top_p)
    short = ~enough
    wider = width * CANDIDATE_GROWTH
    tokens[short] = _sample_nucleus(scaled[short], top_p, wider, log_norm[short])
    return tokens


def _logsumexp(scaled: torch.Tensor) -> torch.Tensor:
    """``torch.logsumexp(scaled, -1, keepdim=True)`` for finite rows, in fewer passes.

    torch's kernel took 5 ms on a [64, 49152] row block against 3 ms for this (and showed as
    7% of a batch-64 decode profile); rows holding +-inf fall back to torch's.
    """
    peak = scaled.amax(dim=-1, keepdim=True)
    if not bool(torch.isfinite(peak).all()):
        return torch.logsumexp(scaled, dim=-1, keepdim=True)
    return peak + torch.exp(scaled - peak).sum(dim=-1, keepdim=True).log()


def _pick(probs: torch.Tensor, idx: torch.Tensor, top_p: float) -> torch.Tensor:
    """Draw among descending-sorted candidates ``idx`` after the top-p cut."""
    if top_p < 1.0:  # top_p == 1 cuts nothing (rounding must not drop the tail either)
        probs = probs * _nucleus_keep(probs, top_p)
    return idx.gather(1, _draw(probs).unsqueeze(1)).squeeze(1)


def _nucleus_keep(probs: torch.Tensor, top_p: float) -> torch.Tensor:
    """For probabilities sorted descending: 1 where the mass before the token is < top_p."""
    before = probs.cumsum(dim=-1) - probs
    keep = before < top_p
    keep[:, 0] = True  # min_tokens_to_keep=1, as in transformers
    return keep.to(probs.dtype)


def _draw(weights: torch.Tensor) -> torch.Tensor:
    """One index per row with probability proportional to ``weights`` (inverse CDF)."""
    cdf = weights.cumsum(dim=-1)
    u = torch.rand(weights.shape[0], 1, device=weights.device, dtype=cdf.dtype) * cdf[:, -1:]
    # right=True: the first index whose cdf exceeds u, so zero-weight tokens are never drawn.
    pick = torch.searchsorted(cdf, u, right=True).squeeze(1)
    return pick.clamp_(max=weights.shape[-1] - 1)


# --------------------------------------------------------------------------------------------
# KV cache written in place
# --------------------------------------------------------------------------------------------


def _dynamic_layer_class() -> type:
    from transformers.cache_utils import DynamicLayer

    return DynamicLayer


class SlabLayer(_dynamic_layer_class()):  # type: ignore[misc]
    """A ``DynamicLayer`` whose keys/values live in a preallocated slab, written in place.

    ``DynamicLayer`` concatenates at every step: a new allocation plus a copy of the whole layer
    per token. Here a step writes one column; the attention reads a view of the filled part.
    """

    def __init__(self, capacity: int) -> None:
        super().__init__()
        self.capacity = capacity
        self.length = 0

    def lazy_initialization(self, key_states: torch.Tensor, value_states: torch.Tensor) -> None:
        self.device = key_states.device
        self.keys = _slab(key_states, self.capacity)
        self.values = _slab(value_states, self.capacity)
        self.is_initialized = True

    def update(
        self, key_states: torch.Tensor, value_states: torch.Tensor, *args: Any, **kwargs: Any
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        end = self.length + key_states.shape[-2]
        if end > self.keys.shape[-2]:  # only if a caller outgrows its stated capacity
            self._resize(max(end, 2 * self.keys.shape[-2]))
        self.keys[:, :, self.length : end] = key_states
        self.values[:, :, self.length : end] = value_states
        self.length = end
        return self.keys[:, :, :end], self.values[:, :, :end]

    def get_seq_length(self) -> int:
        return self.length if self.is_initialized else 0

    def batch_repeat_interleave(self, repeats: int) -> None:
        rows = torch.arange(self.keys.shape[0], device=self.keys.device)
        self.batch_select_indices(rows.repeat_interleave(repeats))

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        if self.is_initialized:
            self.keys = _take_rows(self.keys, indices, self.length)
            self.values = _take_rows(self.values, indices, self.length)

    def _resize(self, capacity: int) -> None:
        for name in ("keys", "values"):
            old = getattr(self, name)
            new = old.new_empty((*old.shape[:2], capacity, old.shape[-1]))
            new[:, :, : self.length] = old[:, :, : self.length]
            setattr(self, name, new)


def _slab(states: torch.Tensor, capacity: int) -> torch.Tensor:
    # new_empty does not touch the pages: memory is only committed as columns are written.
    return states.new_empty((states.shape[0], states.shape[1], capacity, states.shape[-1]))


def _take_rows(slab: torch.Tensor, indices: torch.Tensor, length: int) -> torch.Tensor:
    """The chosen rows of a slab, same capacity; only the filled columns are copied."""
    out = slab.new_empty((len(indices), *slab.shape[1:]))
    out[:, :, :length] = slab[indices.to(slab.device), :, :length]
    return out


def new_cache(model: Any, capacity: int) -> Any:
    """A cache for ``model``: slab layers when every layer is full attention, else dynamic."""
    from transformers import DynamicCache
    from transformers.cache_utils import DynamicLayer

    cache = DynamicCache(config=model.config)
    if cache.layers and all(type(layer) is DynamicLayer for layer in cache.layers):
        cache.layers = [SlabLayer(capacity) for _ in cache.layers]
    return cache


# --------------------------------------------------------------------------------------------
# Decode loop
# --------------------------------------------------------------------------------------------


@dataclass
class _Rows:
    """The rows still in the batch: their cache, mask, next positions and output rows."""

    cache: Any
    mask: torch.Tensor  # [rows, capacity]; columns past ``width`` are not yet used
    width: int  # columns of ``mask`` in use (cache length)
    positions: torch.Tensor  # [rows] position of the next token
    out_rows: torch.Tensor  # [rows] index into the output of each row

    def select(self, keep: torch.Tensor) -> None:
        """Keep only the rows ``keep`` (indices into the current batch)."""
        self.cache.batch_select_indices(keep)
        self.mask = self.mask[keep]
        self.positions = self.positions[keep]
        self.out_rows = self.out_rows[keep]


def fast_decode(
    model: Any,
    prompts: Sequence[Sequence[int]],
    num_samples: int,
    params: SamplingParams,
    eos_ids: Sequence[int],
    pad_id: int,
    *,
    kernel: str | None = None,
    cascade: bool = True,
    reuse: dict | None = None,
) -> list[list[int]]:
    """Generate ``num_samples`` continuations of each prompt; prompt-major token-id lists.

    Each list holds up to ``max_new_tokens`` ids; ids after the first EOS are meaningless (the
    caller cuts there). Call under ``torch.no_grad()`` with the model in eval mode. ``kernel``
    picks the fp32 linear kernel (``"onednn_packed"`` or ``"aten"``; ``None``: the measured
    choice of :func:`motif.backends.kernels.decode_plan`, see :func:`packed_linears`).
    ``cascade``: decode steps read the prefix every row shares once for all rows
    (:func:`motif.backends.cascade.shared_prefix_attention`; CPU, sdpa models). ``reuse``: a
    dict kept between calls while the weights stay the same (the backend's
    ``frozen_weights`` block): packed weights and the shared prefix's cache are taken from it
    and stored in it; ``None``: nothing is kept.
    """
    unique, row_of = dedupe(prompts, num_samples)
    device = _device(model)
    # same: leading columns every row holds alike (the shared prefix, or the one prompt)
    levels, same = prefix_levels(unique)
    cache = new_cache(model, cache_width(levels) + params.max_new_tokens)
    if not all(isinstance(layer, SlabLayer) for layer in getattr(cache, "layers", [None])):
        # Sliding-window or other layers (a dynamic cache, which has no capacity): padding
        # between levels would count against a window, and a cached column is no longer a
        # fixed position. Plain left padding, as generate, and no shared-prefix attention.
        levels, same, reuse = [Level(None, unique)], 0, None
    capacity = cache_width(levels) + params.max_new_tokens
    with packed_linears(model, len(row_of), kernel, reuse=reuse):
        with _gqa_in_sdpa(device):
            logits, mask = prefill(model, cache, levels, pad_id, device, reuse=reuse)
        rows, logits = _expand(cache, logits, mask, row_of, capacity)
        with shared_prefix_attention(model, same if cascade else 0):
            return _decode_loop(model, rows, logits, params, eos_ids, pad_id)


@contextmanager
def _gqa_in_sdpa(device: torch.device) -> Iterator[None]:
    """During the prefill on CPU: SDPA reads grouped key/value heads in place (``enable_gqa``).

    transformers otherwise copies every layer's keys and values ``num_key_value_groups`` times
    (``repeat_kv``) whenever a mask is passed: 7.6% of a batch-64 decode in the profile
    (docs/decode.md). Same values bit for bit on CPU; 3x faster attention. Single-token steps
    keep transformers' own ``pack_gqa`` path (faster there, and what ``generate`` runs).
    """
    name = "TRANSFORMERS_SDPA_FORCE_GQA"
    before = os.environ.get(name)
    if device.type == "cpu":
        os.environ[name] = "1"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = before


def _device(model: Any) -> torch.device:
    return next(model.parameters()).device


def _expand(
    cache: Any,
    logits: torch.Tensor,
    mask: torch.Tensor,
    row_of: list[int],
    capacity: int,
) -> tuple[_Rows, torch.Tensor]:
    """One batch row per output row: copy each distinct prompt's cache and logits to its samples."""
    device = logits.device
    select = torch.tensor(row_of, dtype=torch.long, device=device)
    if len(row_of) != logits.shape[0]:
        cache.batch_select_indices(select)
        logits = logits[select]
    width = mask.shape[1]
    full = torch.zeros((len(row_of), capacity), dtype=torch.long, device=device)
    full[:, :width] = mask[select]
    rows = _Rows(
        cache=cache,
        mask=full,
        width=width,
        positions=full[:, :width].sum(-1),  # real tokens so far = position of the next one
        out_rows=torch.arange(len(row_of), device=device),
    )
    return rows, logits


def _decode_loop(
    model: Any,
    rows: _Rows,
    logits: torch.Tensor,
    params: SamplingParams,
    eos_ids: Sequence[int],
    pad_id: int,
) -> list[list[int]]:
    total = rows.out_rows.shape[0]
    device = logits.device
    out = torch.full((total, params.max_new_tokens), pad_id, dtype=torch.long, device=device)
    eos = torch.tensor(list(eos_ids), dtype=torch.long, device=device)
    done = torch.zeros(total, dtype=torch.bool, device=device)  # per current batch row
    for step in range(params.max_new_tokens):
        tokens = sample_tokens(logits, params)
        out[rows.out_rows, step] = tokens
        done |= torch.isin(tokens, eos)
        if step + 1 == params.max_new_tokens:
            break
        finished = int(done.sum())
        if finished == done.shape[0]:
            break
        if finished and finished >= COMPACT_FRACTION * done.shape[0]:
            keep = (~done).nonzero().squeeze(1)
            rows.select(keep)
            tokens, done = tokens[keep], done[keep]
        logits = _step(model, rows, tokens)
    return out.tolist()


def _step(model: Any, rows: _Rows, tokens: torch.Tensor) -> torch.Tensor:
    """Feed one token per row; the next logits."""
    rows.mask[:, rows.width] = 1
    rows.width += 1
    logits = forward_last(
        model,
        tokens.unsqueeze(1),
        rows.mask[:, : rows.width],
        rows.positions.unsqueeze(1),
        rows.cache,
    )
    rows.positions = rows.positions + 1
    return logits


# --------------------------------------------------------------------------------------------
# Reduced-precision compute copy
# --------------------------------------------------------------------------------------------


TRAINING_PROBE_SHAPE = (1024, 576, 1536)
"""(M, K, N) of the bf16-vs-fp32 probe for training: a batch of ~1K tokens through a
SmolLM2-135M MLP projection (hidden 576, intermediate 1536)."""
TRAINING_BF16_GAIN = 1.3
"""bf16 autocast is chosen on a CPU when its measured bf16 GEMM rate is at least this many
times the fp32 rate (a margin for the casts autocast adds around every product)."""


@functools.cache
def bf16_training_is_fast(device_type: str) -> tuple[bool, str]:
    """(is bf16 autocast faster than fp32 for training here?, why), measured once per process.

    CUDA: bf16 support. CPU: AMX tiles, or else the measured GEMM rates at
    :data:`TRAINING_PROBE_SHAPE` (``motif.backends.kernels``' probe, ~0.2 s): CPUs without
    AMX differ (avx512_bf16 units run bf16 products ~3x faster than fp32 on an AMD Zen 5;
    CPUs without them run bf16 slower), so this is measured, never assumed.
    """
    if device_type == "cuda":
        ok = torch.cuda.is_bf16_supported()
        return ok, "CUDA supports bf16" if ok else "this GPU lacks bf16"
    if device_type != "cpu":
        return False, f"{device_type}: fp32"
    if bf16_matmul_is_fast(torch.device("cpu")):
        return True, "this CPU has AMX bf16 units"
    rates = kernels._gemm_rates(TRAINING_PROBE_SHAPE, rounds=3)
    gain = rates["aten_bf16"] / max(rates["aten_fp32"], 1e-9)
    fast = gain >= TRAINING_BF16_GAIN
    return (
        fast,
        f"measured bf16 GEMM {gain:.1f}x fp32 on this CPU ({'>=' if fast else '<'} {TRAINING_BF16_GAIN})",
    )


def cast_copy(model: Any, dtype: torch.dtype) -> Any:
    """A copy of ``model`` with floating parameters in ``dtype``; buffers keep their dtype.

    Buffers stay as they are because rotary ``inv_freq`` loses positions in bf16. The copy is
    made without an intermediate full-precision clone (parameters are pre-seeded in the memo),
    and tied weights stay tied. PEFT wrappers and their adapter state are copied along.
    """
    memo: dict[int, Any] = {}
    for param in model.parameters():
        if id(param) not in memo and param.is_floating_point():
            memo[id(param)] = torch.nn.Parameter(param.detach().to(dtype), requires_grad=False)
    return copy.deepcopy(model, memo)
