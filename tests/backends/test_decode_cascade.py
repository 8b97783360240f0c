"""Shared-prefix attention for decode steps: same values as SDPA, used by the fast path."""

from __future__ import annotations

import pytest
import torch

import motif.backends.cascade as cascade
from motif.backends.base import SamplingParams
from motif.backends.hf import TransformersBackend
from motif.prompts import round_messages


def sdpa_reference(query, key, value, mask):
    """transformers' own sdpa attention function (what the cascade replaces)."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    module = torch.nn.Module()
    module.num_key_value_groups = query.shape[1] // key.shape[1]
    module.is_causal = True
    return sdpa_attention_forward(module, query, key, value, mask, scaling=0.125)[0]


def shared_cache(rows=6, kv_heads=2, group=3, prefix=10, own=5, dtype=torch.float32):
    gen = torch.Generator().manual_seed(0)
    shape = (rows, kv_heads, prefix + own, 16)
    key, value = (torch.randn(shape, generator=gen).to(dtype) for _ in range(2))
    key[:, :, :prefix] = key[:1, :, :prefix]  # every row holds the same prefix
    value[:, :, :prefix] = value[:1, :, :prefix]
    query = torch.randn(rows, kv_heads * group, 1, 16, generator=gen).to(dtype)
    return query, key, value


@pytest.mark.parametrize("mask_kind", ["none", "bool", "float"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_cascade_equals_sdpa(mask_kind, dtype):
    query, key, value = shared_cache(dtype=dtype)
    mask = torch.ones(6, 1, 1, 15, dtype=torch.bool)
    mask[1, :, :, 10:13] = False  # padding between prefix and a row's own tokens
    mask[4, :, :, 11] = False
    if mask_kind == "none":
        mask = None
    elif mask_kind == "float":
        mask = torch.zeros(mask.shape, dtype=dtype).masked_fill(~mask, float("-inf"))
    want = sdpa_reference(query, key, value, mask)
    cascade._state.update(prefix=10, fallback=None)
    try:
        got, _ = cascade.cascade_attention(None, query, key, value, mask, scaling=0.125)
    finally:
        cascade._state.update(prefix=0, fallback=None)
    assert got.shape == want.shape == (6, 1, 6, 16)
    tol = 1e-5 if dtype == torch.float32 else 2e-2
    assert torch.allclose(got.float(), want.float(), atol=tol, rtol=tol)


def test_other_calls_go_to_the_replaced_function():
    query, key, value = shared_cache()
    calls = []

    def fallback(*args, **kwargs):
        calls.append(args[1].shape)
        return "fallback", None

    cascade._state.update(prefix=10, fallback=fallback)
    try:
        for q, k in [
            (query[:2], key[:2]),  # fewer rows than MIN_ROWS
            (query.expand(-1, -1, 3, -1), key),  # prefill: several queries
            (query, key[:, :, :10]),  # nothing after the prefix
        ]:
            assert cascade.cascade_attention(None, q, k, k, None)[0] == "fallback"
        assert cascade.cascade_attention(None, query, key, value, None, 0.1)[0] == "fallback"
    finally:
        cascade._state.update(prefix=0, fallback=None)
    assert len(calls) == 4


def test_fast_decode_uses_it_and_restores_the_registry(tokenizer, monkeypatch):
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

    from conftest import build_tiny_model

    model = build_tiny_model(tokenizer)
    assert model.config._attn_implementation == "sdpa"
    used = []
    real = cascade.cascade_attention

    def counting(module, query, *args, **kwargs):
        used.append(cascade._applies(query, args[0], cascade._state["prefix"], kwargs))
        return real(module, query, *args, **kwargs)

    monkeypatch.setattr(cascade, "cascade_attention", counting)
    before = ALL_ATTENTION_FUNCTIONS["sdpa"]
    chats = [round_messages(q, 1, 3) for q in ("Hi", "Why?")]
    backend = TransformersBackend(model, tokenizer, decode_dtype="model")
    backend.generate(chats, SamplingParams(max_new_tokens=4), num_samples=3)
    assert any(used) and ALL_ATTENTION_FUNCTIONS["sdpa"] is before
    assert "sdpa" not in ALL_ATTENTION_FUNCTIONS._local_mapping
