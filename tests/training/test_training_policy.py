"""The training policy: one object, one backend per generation batch, round 1's real outputs."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from conftest import build_tiny_model, fake_policy_trainer
from motif.backends.base import SamplingParams
from motif.training.config import MotifArgs
from motif.training.policy import TrainingPolicy, _zero3
from motif.training.reward import FutureAccuracyReward
from motif.training.round1 import PROMPT_TOKENS_KEY, TRUNCATED_KEY, round1_rollout
from train_fakes import TINY_RUN

QUESTIONS = ["1 + 2 = ?", "What is 3 + 4?"]
ROUND1 = SamplingParams(max_new_tokens=6)  # greedy: the same replies with and without a step


@pytest.fixture
def copies(monkeypatch):
    """The dtypes of the policy copies the transformers backend makes (``cast_copy`` calls)."""
    import motif.backends.fast as fast

    made, real = [], fast.cast_copy
    monkeypatch.setattr(
        fast, "cast_copy", lambda model, dtype: made.append(dtype) or real(model, dtype)
    )
    return made


def one_batch(trainer, policy: TrainingPolicy) -> tuple[dict, list, list]:
    """Round 1 through motif's rollout_func, then the future-accuracy reward, as TRL calls them:
    (round 1's output, the rewards, the reward's trajectory groups)."""
    motif = MotifArgs(rounds=2, k=2, continuation_max_new_tokens=4, continuation_temperature=0.0)
    reward = FutureAccuracyReward(motif, policy=policy)
    groups, rollout = [], reward.rollout
    reward.rollout = lambda *args: groups.append(rollout(*args)) or groups[-1]
    prompts = [motif.protocol().messages(q, 1) for q in QUESTIONS]
    out = round1_rollout(ROUND1, policy)(prompts, trainer)
    tokenizer = trainer.processing_class
    texts = [tokenizer.decode(ids, skip_special_tokens=True) for ids in out["completion_ids"]]
    extras = {key: out[key] for key in (PROMPT_TOKENS_KEY, TRUNCATED_KEY)}
    rewards = reward(
        prompts=prompts,
        completions=texts,
        completion_ids=out["completion_ids"],
        question=QUESTIONS,
        answer=["3", "7"],
        **extras,
    )
    return out, rewards, groups[0]


def test_a_step_generates_round_one_and_the_continuations_from_one_bf16_copy(tokenizer, copies):
    trainer = fake_policy_trainer(build_tiny_model(tokenizer, seed=4), tokenizer)
    policy = TrainingPolicy(4, "bfloat16").bind(trainer)
    apart = one_batch(trainer, policy)
    assert copies == [torch.bfloat16, torch.bfloat16]  # no step: each rollout copies
    copies.clear()
    with policy.step():
        together = one_batch(trainer, policy)
    assert copies == [torch.bfloat16]  # one copy serves round 1 and the continuations
    texts = [[[r.text for r in t.rounds] for t in g] for g in together[2]]
    assert texts == [[[r.text for r in t.rounds] for t in g] for g in apart[2]]
    assert together[1] == apart[1]


def test_the_reward_stores_round_one_as_it_was_generated(tokenizer):
    trainer = fake_policy_trainer(build_tiny_model(tokenizer, seed=4), tokenizer)
    out, _, groups = one_batch(trainer, TrainingPolicy(4, "model").bind(trainer))
    eos = tokenizer.eos_token_id
    columns = ("prompt_ids", "completion_ids", PROMPT_TOKENS_KEY, TRUNCATED_KEY)
    rows = zip(*(out[key] for key in columns), strict=True)
    for group, (prompt_ids, ids, prompt, cut) in zip(groups, rows, strict=True):
        assert prompt == len(prompt_ids) > 0 and cut == (ids[-1] != eos)
        for trajectory in group:
            first = trajectory.rounds[0]
            assert (first.prompt_tokens, first.completion_tokens) == (prompt, len(ids))
            assert first.truncated == cut


def test_without_motifs_round_one_the_reward_is_the_same_from_the_text_alone(tokenizer):
    """TRL generated round 1 (no round-1 keywords): the same rewards, round 1 stored as text."""
    trainer = fake_policy_trainer(build_tiny_model(tokenizer, seed=4), tokenizer)
    out, rewards, _ = one_batch(trainer, TrainingPolicy(4, "model").bind(trainer))
    motif = MotifArgs(rounds=2, k=2, continuation_max_new_tokens=4, continuation_temperature=0.0)
    reward = FutureAccuracyReward(motif).bind(trainer)
    texts = [tokenizer.decode(ids, skip_special_tokens=True) for ids in out["completion_ids"]]
    groups = reward.rollout(QUESTIONS, texts)
    assert (
        reward(
            prompts=[None] * 2,
            completions=texts,
            completion_ids=out["completion_ids"],
            question=QUESTIONS,
            answer=["3", "7"],
        )
        == rewards
    )
    assert {(g[0].rounds[0].prompt_tokens, g[0].rounds[0].truncated) for g in groups} == {
        (0, False)
    }


def test_each_generation_batch_runs_inside_one_step():
    policy = TrainingPolicy()
    inside = []

    def generate_and_score(batch):
        inside.append(policy._step is not None)
        return batch

    trainer = SimpleNamespace(_generate_and_score_completions=generate_and_score)
    assert policy.hold_steps(trainer)
    assert trainer._generate_and_score_completions("batch") == "batch"
    assert inside == [True] and policy._step is None  # closed after the batch
    assert not TrainingPolicy().hold_steps(SimpleNamespace())  # a TRL without the method


def test_zero3_weights_are_not_kept_between_rollouts():
    def trainer(stage):
        plugin = None if stage is None else SimpleNamespace(zero_stage=stage)
        return SimpleNamespace(
            accelerator=SimpleNamespace(state=SimpleNamespace(deepspeed_plugin=plugin))
        )

    assert _zero3(trainer(3)) and not _zero3(trainer(2)) and not _zero3(trainer(None))


def test_an_unbound_policy_is_an_error():
    with pytest.raises(RuntimeError, match="not bound"), TrainingPolicy().backend():
        pass


def test_vllm_weights_are_synced_once_per_step():
    """vLLM runs: the held-out check loads the step's weights into TRL's engine, as TRL would."""
    synced = []
    engine = SimpleNamespace(sync_weights=lambda: synced.append(1))
    trainer = SimpleNamespace(
        use_vllm=True, vllm_generation=engine, _last_loaded_step=2, state=SimpleNamespace()
    )
    policy = TrainingPolicy().bind(trainer)
    for step in (2, 3, 3):  # step 2 already synced by TRL; step 3 once
        trainer.state.global_step = step
        policy.sync_weights()
    assert len(synced) == 1 and trainer._last_loaded_step == 3
    TrainingPolicy().bind(SimpleNamespace(use_vllm=False)).sync_weights()  # nothing to sync


def test_every_generation_batch_of_a_run_makes_one_bf16_copy(tiny_checkpoint, tmp_path, copies):
    """A tiny MOTIF run: round 1 (motif's rollout_func) and the continuations of each batch
    share one copy of the policy."""
    from motif.cli.main import main

    run = ["train", "--model", str(tiny_checkpoint), "--output-dir", str(tmp_path), *TINY_RUN]
    assert main([*run, "--max-steps", "2", "--rollout-decode-dtype", "bfloat16"]) == 0
    assert copies == [torch.bfloat16] * 2  # one batch per step here
