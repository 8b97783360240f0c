"""The transformers backend on a tiny random model with the real tokenizer and chat template."""

from __future__ import annotations

import pytest

from motif.backends.base import SamplingParams
from motif.backends.hf import TransformersBackend
from motif.protocol import round_messages

QUESTIONS = ["Hi", "What is 2 + 2? Think step by step, please.", "A much longer question " * 6]
CHATS = [round_messages(q, 1, 3) for q in QUESTIONS]


def make_backend(model, tokenizer, **kwargs):
    return TransformersBackend(model, tokenizer, **kwargs)


def texts(outputs):
    return [o.text for o in outputs]


def test_batched_greedy_matches_one_at_a_time(tiny_model, tokenizer):
    backend = make_backend(tiny_model, tokenizer)
    params = SamplingParams(max_new_tokens=12)
    batched = backend.generate(CHATS, params)
    single = [backend.generate([c], params)[0] for c in CHATS]
    assert [o.token_ids for o in batched] == [o.token_ids for o in single]
    assert texts(batched) == texts(single)


def test_chunking_does_not_change_greedy_output(tiny_model, tokenizer):
    params = SamplingParams(max_new_tokens=8)
    whole = make_backend(tiny_model, tokenizer).generate(CHATS, params, num_samples=2)
    chunked = make_backend(tiny_model, tokenizer, max_batch_size=1).generate(CHATS, params, 2)
    assert len(whole) == 6
    assert texts(whole) == texts(chunked)
    assert whole[0].text == whole[1].text  # greedy samples of one prompt agree


def test_seeded_sampling_is_reproducible(tiny_model, tokenizer):
    backend = make_backend(tiny_model, tokenizer)
    params = SamplingParams(max_new_tokens=10, temperature=1.0, top_p=0.9, top_k=50, seed=7)
    first = backend.generate(CHATS, params, num_samples=2)
    again = backend.generate(CHATS, params, num_samples=2)
    assert texts(first) == texts(again)
    other = backend.generate(CHATS, SamplingParams(10, 1.0, 0.9, 50, seed=8), num_samples=2)
    assert texts(other) != texts(first)


def test_token_counts_and_truncation(tiny_model, tokenizer):
    outs = make_backend(tiny_model, tokenizer).generate(CHATS, SamplingParams(max_new_tokens=5))
    for out, chat in zip(outs, CHATS, strict=True):
        assert out.completion_tokens == len(out.token_ids) <= 5
        rendered = tokenizer.apply_chat_template(chat, add_generation_prompt=True, tokenize=False)
        assert out.prompt_tokens == len(tokenizer(rendered, add_special_tokens=False)["input_ids"])
        assert out.truncated == (
            out.completion_tokens == 5 and tokenizer.eos_token_id not in out.token_ids
        )


def test_prompt_longer_than_context_is_a_clear_error(tokenizer):
    from conftest import build_tiny_model

    model = build_tiny_model(tokenizer)
    model.config.max_position_embeddings = 300
    backend = make_backend(model, tokenizer)
    long_chat = round_messages("word " * 200, 1, 3)
    with pytest.raises(ValueError, match=r"prompt 1 has \d+ tokens.*context of 300"):
        backend.generate([CHATS[0], long_chat], SamplingParams(max_new_tokens=4))
    trimmed = make_backend(model, tokenizer, overflow="truncate_left")
    out = trimmed.generate([long_chat], SamplingParams(max_new_tokens=4))[0]
    assert out.prompt_tokens == 296


def test_generates_with_a_peft_policy(tokenizer):
    """A PEFT-wrapped policy (what the trainer hands over) generates with its adapter active."""
    import torch
    from peft import LoraConfig, get_peft_model

    from conftest import build_tiny_model

    base = build_tiny_model(tokenizer, seed=1)
    params = SamplingParams(max_new_tokens=8)
    before = make_backend(base, tokenizer).generate(CHATS, params)
    policy = get_peft_model(base, LoraConfig(r=4, target_modules=["q_proj", "v_proj", "o_proj"]))
    with torch.no_grad():
        for name, p in policy.named_parameters():
            if "lora_B" in name:
                p.add_(torch.randn_like(p) * 2.0)
    with_adapter = make_backend(policy, tokenizer).generate(CHATS, params)
    assert texts(with_adapter) != texts(before)
    with policy.disable_adapter():
        assert texts(make_backend(policy, tokenizer).generate(CHATS, params)) == texts(before)


def test_requires_a_chat_template(tiny_model, tokenizer):
    import copy

    bare = copy.copy(tokenizer)
    bare.chat_template = None
    with pytest.raises(ValueError, match="chat template"):
        make_backend(tiny_model, bare)
