"""The fast decode path: same greedy tokens as ``generate``, exact sampling, shared prefill."""

from __future__ import annotations

import pytest
import torch

from conftest import build_sharp_model
from motif.backends.base import SamplingParams
from motif.backends.fast import SlabLayer, new_cache, sample_tokens
from motif.backends.hf import TransformersBackend
from motif.prompts import round_messages

QUESTIONS = [
    "Hi",
    "What is 2 + 2? Think step by step, please.",
    "A much longer question " * 6,
    "Why?",
]
# Same system prompt, different lengths, one round-2 prompt: a shared prefix and mixed widths.
CHATS = [round_messages(q, 1, 3) for q in QUESTIONS] + [
    round_messages("Hi", 2, 3, "four is the answer")
]


@pytest.fixture(scope="module")
def model(tokenizer):
    return build_sharp_model(tokenizer)


# The default decode_dtype ("auto") is bf16 on CPUs with AMX; exact comparisons pin fp32.
EXACT = {"decode_dtype": "model"}


def with_extra_eos(model, tokenizer, ids):
    """Make some ordinary tokens end a reply too, so rows finish at different steps."""
    model.generation_config.eos_token_id = [tokenizer.eos_token_id, *ids]


def token_ids(outputs):
    return [o.token_ids for o in outputs]


# ---------------------------------------------------------------------------------- sampler


def reference_probs(logits: torch.Tensor, params: SamplingParams) -> torch.Tensor:
    """The distribution transformers' generate samples from (its own warpers)."""
    from transformers.generation.logits_process import (
        TemperatureLogitsWarper,
        TopKLogitsWarper,
        TopPLogitsWarper,
    )

    scores = logits.clone()
    if params.temperature != 1.0:
        scores = TemperatureLogitsWarper(params.temperature)(None, scores)
    if params.top_k:
        scores = TopKLogitsWarper(params.top_k)(None, scores)
    if params.top_p < 1.0:
        scores = TopPLogitsWarper(params.top_p)(None, scores)
    return torch.softmax(scores, dim=-1)


def empirical(tokens: torch.Tensor, vocab: int) -> torch.Tensor:
    return torch.bincount(tokens, minlength=vocab).double() / len(tokens)


FIXED_LOGITS = torch.tensor(
    [
        [2.0, 1.5, 1.4, 0.3, 0.2, 0.0, -0.5, -1.0, -1.2, -2.0, -3.0, -4.0],  # peaked
        [0.3, 0.25, 0.21, 0.2, 0.15, 0.11, 0.1, 0.05, 0.0, -0.05, -0.1, -0.12],  # nearly flat
    ]
)


@pytest.mark.parametrize(
    ("params", "first"),
    [
        (SamplingParams(temperature=1.0), 64),
        (SamplingParams(temperature=0.7, top_p=0.8), 64),
        (SamplingParams(temperature=1.0, top_k=5), 64),
        (SamplingParams(temperature=1.3, top_k=6, top_p=0.6), 64),
        # two candidates first: the flat row needs widening, the peaked row may not
        (SamplingParams(temperature=1.0, top_p=0.9), 2),
        (SamplingParams(temperature=0.5, top_p=0.95), 3),
    ],
)
def test_sampler_matches_the_generate_distribution(params, first):
    torch.manual_seed(0)
    draws = 20_000
    logits = FIXED_LOGITS.repeat_interleave(draws, dim=0)  # rows: all peaked, then all flat
    tokens = sample_tokens(logits, params, first_candidates=first)
    for row in range(FIXED_LOGITS.shape[0]):
        want = reference_probs(FIXED_LOGITS[row : row + 1], params)[0].double()
        got = empirical(tokens[row * draws : (row + 1) * draws], FIXED_LOGITS.shape[1])
        assert torch.all(got[want == 0] == 0), "drew a token outside the top-k/top-p set"
        assert 0.5 * (got - want).abs().sum() < 0.02  # total variation; ~0.006 expected


def test_top_k_keeps_ties_of_the_kth_value_as_generate_does():
    logits = torch.tensor([[1.0, 0.5, 0.5, 0.5, -1.0, -2.0]])
    params = SamplingParams(temperature=1.0, top_k=2)
    torch.manual_seed(0)
    tokens = sample_tokens(logits.expand(6000, -1), params)
    want = reference_probs(logits, params)[0].double()
    got = empirical(tokens, logits.shape[1])
    assert torch.all(got[want == 0] == 0) and torch.all(got[want > 0] > 0)
    assert 0.5 * (got - want).abs().sum() < 0.03


def test_greedy_sampler_is_the_argmax():
    logits = torch.randn(7, 50)
    assert torch.equal(sample_tokens(logits, SamplingParams()), logits.argmax(-1))


def test_sampler_is_reproducible_with_a_seed():
    logits = torch.randn(16, 1000)
    params = SamplingParams(temperature=1.0, top_p=0.9)
    torch.manual_seed(5)
    first = sample_tokens(logits, params, first_candidates=4)
    torch.manual_seed(5)
    assert torch.equal(first, sample_tokens(logits, params, first_candidates=4))


# ----------------------------------------------------------------------------- pieces


def test_slab_cache_is_used_for_full_attention_models(model):
    cache = new_cache(model, capacity=10)
    assert cache.layers and all(isinstance(layer, SlabLayer) for layer in cache.layers)
    layer = cache.layers[0]
    k = torch.randn(2, 2, 3, 16)
    keys, _ = layer.update(k, k.clone())
    assert keys.shape[-2] == 3 and layer.get_seq_length() == 3
    keys, _ = layer.update(k[:, :, :1], k[:, :, :1])
    assert torch.equal(keys[:, :, 3], k[:, :, 0])
    layer.batch_select_indices(torch.tensor([1, 1, 0]))
    assert torch.equal(layer.keys[:, :, :3], torch.stack([k[1], k[1], k[0]]))
    layer.update(torch.randn(3, 2, 20, 16), torch.randn(3, 2, 20, 16))  # outgrows: resizes
    assert layer.get_seq_length() == 24


# ------------------------------------------------------------------- against generate


def both(model, tokenizer, chats, params, num_samples, **kwargs):
    ref = TransformersBackend(model, tokenizer, decode="generate", **EXACT, **kwargs)
    fast = TransformersBackend(model, tokenizer, decode="fast", **EXACT, **kwargs)
    return ref.generate(chats, params, num_samples), fast.generate(chats, params, num_samples)


def test_fast_greedy_equals_generate_token_for_token(model, tokenizer):
    params = SamplingParams(max_new_tokens=16)
    probe = TransformersBackend(model, tokenizer, decode="generate", **EXACT).generate(
        CHATS, params
    )
    # Extra EOS tokens met at different steps: rows finish early and are dropped.
    extra = {probe[0].token_ids[3], probe[1].token_ids[9], probe[3].token_ids[5]}
    with_extra_eos(model, tokenizer, sorted(extra))
    try:
        ref, fast = both(model, tokenizer, CHATS, params, num_samples=3)
    finally:
        with_extra_eos(model, tokenizer, [])
    assert token_ids(fast) == token_ids(ref)
    assert [o.text for o in fast] == [o.text for o in ref]
    assert [o.truncated for o in fast] == [o.truncated for o in ref]
    assert any(not o.truncated for o in fast) and any(o.truncated for o in fast)


def test_fast_greedy_with_duplicates_and_small_batches(model, tokenizer):
    chats = [CHATS[0], CHATS[1], CHATS[0]]
    params = SamplingParams(max_new_tokens=5)
    # 3 samples per prompt over batches of 2 rows: each prompt's samples are split 2 + 1
    ref, fast = both(model, tokenizer, chats, params, num_samples=3, max_batch_size=2)
    assert len(fast) == 9
    assert token_ids(fast) == token_ids(ref)


# Later-round prompts of two questions, three continuations of the first (its question is
# shared beyond the system prompt: the prefill's level 1) and one of the second (no group).
GROUPED = [
    round_messages(QUESTIONS[1], 3, 3, summary)
    for summary in ("two plus two", "2 + 2 is 4", "four is the answer")
] + [round_messages(QUESTIONS[2], 3, 3, "a long one")]


def test_fast_greedy_with_grouped_prompts(model, tokenizer):
    """Three prefill levels (system prompt, question, own summary): same greedy tokens."""
    shapes: list[tuple[int, int]] = []
    hook = model.register_forward_pre_hook(
        lambda _m, _a, kw: shapes.append(tuple(kw["input_ids"].shape)), with_kwargs=True
    )
    try:
        ref, fast = both(model, tokenizer, GROUPED, SamplingParams(max_new_tokens=10), 2)
    finally:
        hook.remove()
    assert token_ids(fast) == token_ids(ref)
    prefill = [s for s in shapes if s[1] > 1 and s[0] <= 4][-3:]
    assert [rows for rows, _ in prefill] == [1, 2, 4]  # system; the group + the rest; each


def test_frozen_weights_reuse_is_exact_and_ends_with_the_block(tokenizer):
    """Inside ``frozen_weights`` the system prompt's cache (and packed weights) are reused
    from call to call: the same tokens as without; after the block new weights are seen."""
    model = build_sharp_model(tokenizer, seed=2)
    backend = TransformersBackend(model, tokenizer, **EXACT)
    params = SamplingParams(max_new_tokens=8, temperature=1.0, seed=5)
    calls = (CHATS[:3], GROUPED, CHATS[:3])
    plain = [token_ids(backend.generate(c, params, 2)) for c in calls]
    with backend.frozen_weights():
        with backend.frozen_weights():  # nested: one block
            reused = [token_ids(backend.generate(c, params, 2)) for c in calls]
        kept = {key[0] for key in backend._frozen}
    assert reused == plain
    assert "prefix" in kept and backend._frozen is None
    with torch.no_grad():
        for param in model.parameters():
            param.mul_(1.5)
    greedy = SamplingParams(max_new_tokens=8)
    ref, fast = both(model, tokenizer, CHATS[:3], greedy, 1)
    assert token_ids(fast) == token_ids(ref)


def test_groups_without_a_shared_prefix_reuse_nothing_and_match(model, tokenizer):
    """Prompts sharing under MIN_SHARED_PREFIX tokens overall, two of them much more: the
    first prefill level is the groups (several rows), not a prefix to keep."""
    from motif.backends.fast import fast_decode
    from motif.backends.prefill import prefix_levels

    shared = list(range(1000, 1012))
    prompts = [[7, *shared, 5], [7, *shared, 6], [8, 9, 10]]
    assert len(prefix_levels(prompts)[0][0].spans) == 2  # level 0: one group + the rest
    params = SamplingParams(max_new_tokens=6)
    eos, pad = [tokenizer.eos_token_id], tokenizer.pad_token_id
    with torch.no_grad():
        plain = fast_decode(model, prompts, 2, params, eos, pad)
        kept = fast_decode(model, prompts, 2, params, eos, pad, reuse={})
    assert kept == plain


def test_sliding_window_models_get_plain_left_padding(tokenizer):
    """A sliding-window cache: no prefix tree (padding would count against the window) and
    no shared-prefix attention; greedy tokens as generate."""
    model = build_sharp_model(tokenizer, architecture="mistral", sliding_window=16)
    ref, fast = both(model, tokenizer, GROUPED, SamplingParams(max_new_tokens=10), 2)
    assert token_ids(fast) == token_ids(ref)


def test_fast_greedy_with_a_peft_policy(tokenizer):
    from peft import LoraConfig, get_peft_model

    policy = get_peft_model(build_sharp_model(tokenizer, seed=1), LoraConfig(r=4))
    with torch.no_grad():
        for name, param in policy.named_parameters():
            if "lora_B" in name:
                param.add_(torch.randn_like(param))
    ref, fast = both(policy, tokenizer, CHATS[:3], SamplingParams(max_new_tokens=8), 2)
    assert token_ids(fast) == token_ids(ref)


def test_first_token_distribution_is_the_models(tokenizer):
    """End to end: the first sampled token follows the model's own top-k/top-p distribution."""
    from conftest import build_tiny_model

    model = build_tiny_model(tokenizer, seed=2)
    chat = [{"role": "user", "content": "Hi"}]
    backend = TransformersBackend(model, tokenizer, max_batch_size=4000, **EXACT)
    params = SamplingParams(max_new_tokens=1, temperature=0.9, top_k=10, top_p=0.8, seed=0)
    outs = backend.generate([chat], params, num_samples=4000)
    prompt = torch.tensor([backend.render([chat])[0]])
    with torch.no_grad():
        logits = model(input_ids=prompt).logits[:, -1].float()
    want = reference_probs(logits, params)[0].double()
    got = empirical(torch.tensor([o.token_ids[0] for o in outs]), len(tokenizer))
    assert torch.all(got[want == 0] == 0)
    assert 0.5 * (got - want).abs().sum() < 0.04  # ~0.015 expected from sampling noise


def test_seeded_sampling_is_reproducible(model, tokenizer):
    backend = TransformersBackend(model, tokenizer)
    chats = CHATS[:3]
    params = SamplingParams(max_new_tokens=6, temperature=1.0, top_p=0.9, seed=7)
    first = backend.generate(chats, params, num_samples=2)
    assert token_ids(backend.generate(chats, params, num_samples=2)) == token_ids(first)
    other = SamplingParams(max_new_tokens=6, temperature=1.0, top_p=0.9, seed=8)
    assert token_ids(backend.generate(chats, other, num_samples=2)) != token_ids(first)
    samples = token_ids(first)
    assert samples[0] != samples[1]  # samples of one prompt differ after the shared prefill


def test_shared_prefill_and_dropped_rows(model, tokenizer):
    """The common prefix is prefilled once at batch 1, each prompt once, and finished rows go."""
    shapes: list[tuple[int, int]] = []
    hook = model.register_forward_pre_hook(
        lambda _m, _a, kw: shapes.append(tuple(kw["input_ids"].shape)), with_kwargs=True
    )
    params = SamplingParams(max_new_tokens=12)
    probe = TransformersBackend(model, tokenizer, decode="generate", **EXACT).generate(
        CHATS[:2], params
    )
    shapes.clear()
    with_extra_eos(model, tokenizer, [probe[0].token_ids[2]])
    try:
        TransformersBackend(model, tokenizer, **EXACT).generate(CHATS[:2], params, num_samples=4)
    finally:
        with_extra_eos(model, tokenizer, [])
        hook.remove()
    prefix, suffixes, *steps = shapes
    assert prefix[0] == 1 and prefix[1] > 100  # the system prompt, once
    assert suffixes[0] == 2 and suffixes[1] < 40  # each distinct prompt once, not 8 rows
    assert steps[0] == (8, 1) and steps[-1] == (4, 1)  # the first prompt's 4 rows dropped


def test_bf16_copy_generates_and_leaves_the_model_alone(model, tokenizer, monkeypatch):
    backend = TransformersBackend(model, tokenizer, decode_dtype="bfloat16")
    params = SamplingParams(max_new_tokens=6, temperature=1.0, seed=3)
    first = backend.generate(CHATS[:2], params, num_samples=2)
    assert token_ids(backend.generate(CHATS[:2], params, num_samples=2)) == token_ids(first)
    assert all(len(o.token_ids) == 6 for o in first)
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert backend.compute_dtype() == torch.bfloat16
    import motif.backends.fast as fast

    auto = TransformersBackend(model, tokenizer, decode_dtype="auto")
    monkeypatch.setattr(fast, "bf16_matmul_is_fast", lambda device: False)
    assert auto.compute_dtype() == torch.float32
    monkeypatch.setattr(fast, "bf16_matmul_is_fast", lambda device: True)
    assert auto.compute_dtype() == torch.bfloat16


# -------------------------------------------------------------------------- bad input


def test_bad_options_are_clear_errors(model, tokenizer):
    with pytest.raises(ValueError, match="decode must be"):
        TransformersBackend(model, tokenizer, decode="vllm")
    with pytest.raises(ValueError, match="decode_dtype must be"):
        TransformersBackend(model, tokenizer, decode_dtype="fp8")
    with pytest.raises(ValueError, match="top_p"):
        SamplingParams(top_p=0.0)
    with pytest.raises(ValueError, match="max_new_tokens"):
        SamplingParams(max_new_tokens=0)


def test_prompt_longer_than_context(tokenizer):
    model = build_sharp_model(tokenizer)
    model.config.max_position_embeddings = 300
    long_chat = round_messages("word " * 200, 1, 3)
    params = SamplingParams(max_new_tokens=4)
    with pytest.raises(ValueError, match=r"prompt 1 has \d+ tokens.*context of 300"):
        TransformersBackend(model, tokenizer).generate([CHATS[0], long_chat], params)
    # truncate_left cuts only a carried summary (a round-2 prompt), to fit the context exactly
    long_summary = round_messages("Why?", 2, 3, "word " * 300)
    trimmed = TransformersBackend(model, tokenizer, overflow="truncate_left")
    out = trimmed.generate([CHATS[0], long_summary], params, num_samples=2)
    assert all(296 - 3 <= o.prompt_tokens <= 296 for o in out[2:])  # whole words are cut
    assert all(len(o.token_ids) <= 4 for o in out)


# ------------------------------------------------------------------------- real model


@pytest.mark.slow
@pytest.mark.parametrize("kernel", ["aten", "onednn_packed"])
def test_default_model_fast_greedy_equals_generate(monkeypatch, kernel):
    import motif.backends.kernels as kernels
    from motif.models import load_model

    if kernel == "onednn_packed" and not kernels._onednn_fp32_available():
        pytest.skip("torch built without oneDNN")
    plan = {"device": "cpu", "fp32_linear_kernel": kernel}
    monkeypatch.setattr(kernels, "decode_plan", lambda device: plan)
    model, tokenizer = load_model(None)
    chats = [round_messages(q, 1, 3) for q in ("What is 7 + 5?", "Name a prime number.")]
    chats.append(round_messages("What is 7 + 5?", 2, 3, "7 + 5 = 12"))
    # later rounds of one question: the prefill's question level (motif.backends.prefill)
    chats += [round_messages("What is 7 + 5?", 3, 3, s) for s in ("12", "so far 7 + 5 = 12")]
    # 5 x 3 = 15 rows: at least MIN_PACKED_ROWS, so the plan's kernel is the one used
    ref, fast = both(model, tokenizer, chats, SamplingParams(max_new_tokens=32), num_samples=3)
    assert token_ids(fast) == token_ids(ref)
    assert [o.text for o in fast] == [o.text for o in ref]
