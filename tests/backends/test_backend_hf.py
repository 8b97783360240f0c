"""The transformers backend on a tiny random model with the real tokenizer and chat template."""

from __future__ import annotations

import pytest

from motif.backends.base import SamplingParams
from motif.backends.hf import TransformersBackend
from motif.prompts import round_messages

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
    with pytest.raises(ValueError, match=r"prompt 1 has \d+ tokens.*context of 300") as error:
        backend.generate([CHATS[0], long_chat], SamplingParams(max_new_tokens=4))
    # a round-1 prompt carries no summary: truncation never cuts the question instead, and
    # neither is suggested; the prompt alone fills the context, so no budget helps
    assert str(error.value).endswith("context of 300 tokens: shorten the question")
    trimmed = make_backend(model, tokenizer, overflow="truncate_left")
    with pytest.raises(ValueError, match="prompt 0 .*: shorten the question$"):
        trimmed.generate([long_chat], SamplingParams(max_new_tokens=4))


def small_context_model(tokenizer, limit: int = 300):
    from conftest import build_tiny_model

    model = build_tiny_model(tokenizer)
    model.config.max_position_embeddings = limit
    return model


def test_truncate_left_cuts_the_carried_summary_never_the_instructions(tokenizer):
    """An over-long summary is cut from its start; system prompt, question, final-round
    instruction and the summary's latest words stay (the library mode used to cut them first)."""
    model = small_context_model(tokenizer)
    question = "QUESTION: what is 17 + 25?"
    summary = " ".join(f"w{i}" for i in range(400)) + " LATEST"
    chat = round_messages(question, 3, 3, summary)
    backend = make_backend(model, tokenizer, overflow="truncate_left")
    backend._chats = [chat]
    ids = backend.render([chat])[0]
    params = SamplingParams(max_new_tokens=4)
    fitted = backend._fit_context(ids, 0, params)
    assert len(fitted) <= 300 - 4
    text = tokenizer.decode(fitted)
    system = chat[0]["content"]
    assert system in text and question in text and "LATEST" in text
    assert "final (third) round. Provide a final answer." in text
    assert "w0 " not in text
    head, kept, tail = user_parts_of(text)
    assert head.startswith(question) and kept.endswith("LATEST") and tail.startswith('"')
    out = backend.generate([chat], params)[0]
    assert out.prompt_tokens == len(fitted) and not out.context_overflow


def user_parts_of(text: str) -> tuple[str, str, str]:
    """(before, summary, after) of a rendered later round's user turn (SmolLM2's template)."""
    user = text.split("<|im_start|>user\n")[1].split("<|im_end|>")[0]
    before, mark, rest = user.partition(': "')
    summary, _, after = rest.rpartition('"')
    return before + mark, summary, '"' + after


def test_the_summary_is_cut_where_the_chat_says_it_sits_whatever_the_question_says(tokenizer):
    """The carried summary is found structurally (the round's chat knows where it sits), not
    by matching the protocol's wording: a question that quotes that wording is never cut."""
    model = small_context_model(tokenizer)
    question = 'Explain: Progress in round 1: "do not cut me" then add 2 + 2.'
    summary = " ".join(f"w{i}" for i in range(400)) + " LATEST"
    chat = round_messages(question, 2, 3, summary)
    assert chat.carried == (question + ' Progress in round 1: "', summary, '"')
    backend = make_backend(model, tokenizer, overflow="truncate_left")
    out = backend.generate([chat], SamplingParams(max_new_tokens=4))[0]
    fitted = backend.render([chat.with_carried(summary[-20:])])[0]
    assert not out.context_overflow and out.prompt_tokens <= 300 - 4
    text = tokenizer.decode(backend._cut_summary(chat, 296))
    assert question in text and "LATEST" in text and "w0 " not in text
    assert out.carried_tokens > 0 and len(fitted) < out.prompt_tokens + 1000


def test_round_one_carries_nothing_and_its_chat_has_nothing_to_cut():
    chat = round_messages("Q?", 1, 3)
    assert chat.carried is None
    with pytest.raises(ValueError, match="carries no text"):
        chat.with_carried("x")


def test_skip_mode_flags_the_prompt_that_does_not_fit(tokenizer):
    model = small_context_model(tokenizer)
    backend = make_backend(model, tokenizer, overflow="skip")
    long_chat = round_messages("word " * 200, 1, 3)
    out = backend.generate([CHATS[0], long_chat, CHATS[1]], SamplingParams(max_new_tokens=4), 2)
    assert [o.context_overflow for o in out] == [False, False, True, True, False, False]
    assert out[2].text == "" and out[2].completion_tokens == 0 and out[2].prompt_tokens > 296


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


def test_generation_ignores_an_accelerate_autocast_wrapper(tokenizer):
    """bf16 training wraps the model's forward in autocast (accelerate's prepare_model); the
    continuations must still decode in the model's dtype, and the wrapper must be put back."""
    from types import MethodType

    import torch

    from conftest import build_tiny_model

    model = build_tiny_model(tokenizer)
    params = SamplingParams(max_new_tokens=6)
    # k samples of one prompt: the fast path's shared-prefix (cascade) attention is used
    plain = make_backend(model, tokenizer, decode_dtype="model").generate(CHATS, params, 8)
    model._original_forward = model.forward
    autocast = torch.autocast("cpu", dtype=torch.bfloat16)
    model.forward = MethodType(autocast(model.forward.__func__), model)
    wrapped = model.forward
    for decode in ("fast", "generate"):
        backend = make_backend(model, tokenizer, decode=decode, decode_dtype="model")
        with torch.autocast("cpu", dtype=torch.bfloat16):  # as TRL computes rewards
            outputs = backend.generate(CHATS, params, 8)
        assert texts(outputs) == texts(plain)
    assert model.forward == wrapped


def test_truncate_left_keeps_whole_characters(tokenizer):
    """The summary is cut as text: a thin space or emoji (two tokens each) is kept whole or
    dropped whole, never decoded from half its tokens (U+FFFD)."""
    model = small_context_model(tokenizer)
    summary = " ".join(f"1\u2009{i:03d} \U0001f600" for i in range(150))
    chat = round_messages("What is 1 + 1?", 2, 3, summary)
    backend = make_backend(model, tokenizer, overflow="truncate_left")
    least = len(backend.render([round_messages("What is 1 + 1?", 2, 3, "")])[0])
    for room in range(least + 20, least + 28):  # several cuts: some inside a character's tokens
        fitted = backend._cut_summary(chat, room)
        text = tokenizer.decode(fitted)
        assert len(fitted) <= room and "\ufffd" not in text
        kept = user_parts_of(text)[1]
        assert summary.endswith(kept) and len(kept) > 0


def test_summary_rounds_count_the_carried_summary(tokenizer):
    from conftest import build_sharp_model
    from motif.engine import RolloutEngine
    from motif.protocol import Protocol

    backend = make_backend(build_sharp_model(tokenizer, seed=3), tokenizer, decode_dtype="model")
    engine = RolloutEngine(backend, Protocol(rounds=3), SamplingParams(max_new_tokens=12))
    traj = engine.run(["What is 2 + 3?"])[0]
    assert traj.rounds[0].carried_tokens == 0  # round 1 carries nothing
    for before, record in zip(traj.rounds, traj.rounds[1:], strict=False):
        chat = engine.protocol.messages(traj.question, record.round, before.summary)
        empty = engine.protocol.messages(traj.question, record.round, "")
        expected = len(backend.render([chat])[0]) - len(backend.render([empty])[0])
        assert record.carried_tokens == expected
        assert before.summary and record.carried_tokens > 0
        assert record.carried_tokens < record.prompt_tokens


def test_a_cut_summary_counts_only_what_was_kept(tokenizer):
    model = small_context_model(tokenizer)
    chat = round_messages("Why?", 2, 3, "word " * 300)
    backend = make_backend(model, tokenizer, overflow="truncate_left")
    out = backend.generate([chat], SamplingParams(max_new_tokens=4))[0]
    empty = backend.render([round_messages("Why?", 2, 3, "")])[0]
    assert out.carried_tokens == out.prompt_tokens - len(empty) > 0
    assert out.prompt_tokens <= 296
