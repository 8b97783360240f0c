"""Round 1 of training sampled by motif's decode path (TRL's rollout_func hook)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from conftest import build_tiny_model, fake_policy_trainer
from motif.backends.base import SamplingParams
from motif.prompts import round_messages
from motif.training.policy import TrainingPolicy
from motif.training.round1 import (
    PROMPT_TOKENS_KEY,
    TRUNCATED_KEY,
    rollout_func,
    round1_params,
    round1_rollout,
)

ARGS = dict(
    max_completion_length=8,
    temperature=0.9,
    top_p=0.95,
    top_k=0,
    min_p=None,
    repetition_penalty=1.0,
    generation_kwargs=None,
    chat_template_kwargs=None,
    use_vllm=False,
)


@pytest.mark.parametrize(
    "change, expected",
    [
        ({}, SamplingParams(max_new_tokens=8, temperature=0.9, top_p=0.95)),
        ({"top_k": 20, "top_p": 1.0}, SamplingParams(max_new_tokens=8, temperature=0.9, top_k=20)),
        ({"top_k": None}, None),
        ({"top_p": None}, None),
        ({"min_p": 0.1}, None),
        ({"repetition_penalty": 1.1}, None),
        ({"generation_kwargs": {"do_sample": True}}, None),
        ({"chat_template_kwargs": {"enable_thinking": False}}, None),
        ({"use_vllm": True}, None),
    ],
)
def test_round1_params_follow_trl_or_hand_back(change, expected):
    assert round1_params(SimpleNamespace(**{**ARGS, **change})) == expected


def test_trl_generation_is_kept_on_request():
    config = SimpleNamespace(motif=SimpleNamespace(round1_generation="trl"))
    assert rollout_func(config, SimpleNamespace(**ARGS), TrainingPolicy()) is None
    config.motif = SimpleNamespace(round1_generation="motif")
    assert callable(rollout_func(config, SimpleNamespace(**ARGS), TrainingPolicy()))


def test_rollout_gives_trls_prompt_ids_and_one_reply_per_row(tokenizer):
    trainer = fake_policy_trainer(build_tiny_model(tokenizer, seed=4), tokenizer)
    chats = [round_messages(q, 1, 3) for q in ("1 + 2 = ?", "What is 3 + 4?")]
    prompts = [chats[0]] * 3 + [chats[1]] * 3  # as TRL's sampler repeats them
    torch.manual_seed(0)
    params = SamplingParams(max_new_tokens=8, temperature=1.0)
    policy = TrainingPolicy(max_batch_size=4)
    out = round1_rollout(params, policy)(prompts, trainer)
    assert policy.trainer is trainer  # bound to the trainer TRL hands over
    want = tokenizer.apply_chat_template(
        conversation=prompts, add_generation_prompt=True, tokenize=True, return_dict=True
    )["input_ids"]
    assert out["prompt_ids"] == [list(ids) for ids in want]
    assert out["logprobs"] is None and len(out["completion_ids"]) == 6
    eos = tokenizer.eos_token_id
    for ids in out["completion_ids"]:
        assert 1 <= len(ids) <= 8
        assert eos not in ids[:-1]  # nothing after an EOS, which ends the reply as in TRL
    # round 1's real outputs for the reward: each prompt's length, and cut = no EOS at the end
    assert out[PROMPT_TOKENS_KEY] == [len(ids) for ids in want]
    assert out[TRUNCATED_KEY] == [ids[-1] != eos for ids in out["completion_ids"]]
    assert len({tuple(ids) for ids in out["completion_ids"][:3]}) > 1  # rows sampled apart


@pytest.mark.parametrize(
    ("chosen", "dtype"), [("model", torch.float32), ("bfloat16", torch.bfloat16)]
)
def test_training_rollouts_generate_in_the_chosen_dtype(tokenizer, chosen, dtype):
    trainer = fake_policy_trainer(build_tiny_model(tokenizer, seed=4), tokenizer)
    policy = TrainingPolicy(4, chosen).bind(trainer)
    with policy.backend() as backend:
        assert backend.compute_dtype() == dtype
        prompts = [round_messages("1 + 2 = ?", 1, 3)]
        params = SamplingParams(max_new_tokens=4)  # greedy: the dtype decides the replies
        want = [list(out.token_ids) for out in backend.generate(prompts, params)]
    assert round1_rollout(params, policy)(prompts, trainer)["completion_ids"] == want


def test_rollout_func_samples_through_the_runs_policy(monkeypatch):
    import motif.training.round1 as round1

    seen = []
    monkeypatch.setattr(round1, "round1_rollout", lambda *a: seen.append(a) or (lambda: None))
    motif = SimpleNamespace(
        round1_generation="motif", continuation_batch_size=8, rollout_decode_dtype="model"
    )
    policy = TrainingPolicy.from_args(motif)
    round1.rollout_func(SimpleNamespace(motif=motif), SimpleNamespace(**ARGS), policy)
    assert seen and seen[0][1] is policy
    assert (policy.max_batch_size, policy.decode_dtype) == (8, "model")
