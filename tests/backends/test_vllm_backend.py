"""The vLLM continuation path against faithful fakes of the two interfaces it calls.

vLLM cannot run on CPU machines. ``tests/fakes_vllm.py`` is vLLM 0.31.0's ``LLM`` /
``SamplingParams`` surface (answering from a script, ``tests/scripted_vllm.py``); that module's
``FakeClient`` mirrors TRL 1.16's ``VLLMClient.generate(prompts=..., n=..., ...)`` (returning
a dict with ``completion_ids``, ``n`` completions per prompt, prompt-major).
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest

import fakes_vllm
from motif.backends.base import SamplingParams
from motif.backends.vllm import VLLMBackend
from motif.engine import RolloutEngine
from motif.protocol import Protocol
from scripted_vllm import FakeClient, scripted_llm


@pytest.fixture
def fake_vllm(monkeypatch):
    yield from fakes_vllm.use_fake_vllm(monkeypatch)


@pytest.mark.parametrize("mode", ["colocate", "server"])
def test_continuations_through_the_trainers_vllm_engine(
    mode, tokenizer, default_model_dir, fake_vllm
):
    from accelerate import Accelerator

    from motif.training.config import MotifArgs
    from motif.training.reward import FutureAccuracyReward

    llm, client = scripted_llm(tokenizer, default_model_dir), FakeClient(tokenizer)
    vgen = SimpleNamespace(mode=mode, llm=llm if mode == "colocate" else None, vllm_client=client)
    trainer = SimpleNamespace(
        use_vllm=True,
        vllm_generation=vgen,
        processing_class=tokenizer,
        model=SimpleNamespace(
            generation_config=SimpleNamespace(eos_token_id=tokenizer.eos_token_id)
        ),
        accelerator=Accelerator(cpu=True),
    )
    motif = MotifArgs(rounds=3, k=2, continuation_max_new_tokens=32)
    reward = FutureAccuracyReward(motif).bind(trainer)
    groups = reward.rollout(["Q1", "Q2"], ["<answer>a</answer>", "<answer>b</answer>"])
    if mode == "colocate":
        calls = [(len(c["prompts"]), vars(c["sampling_params"][0])) for c in llm.calls]
    else:
        calls = client.calls
    # one call per remaining round: 2 distinct prompts x k=2, then all 4 trajectories
    assert [c[0] for c in calls] == [2, 4]
    assert [c[1]["n"] for c in calls] == [2, 1]
    first = calls[0][1]
    assert first["temperature"] == 0.8 and first["top_p"] == 0.95 and first["max_tokens"] == 32
    texts = [t.rounds[1].text for g in groups for t in g]
    assert texts[0].endswith("-s0</answer>") and texts[1].endswith("-s1</answer>")
    assert all(len(t.rounds) == 3 for g in groups for t in g)
    assert groups[0][0].rounds[1].summary.startswith("len")


def test_vllm_backend_outputs_and_truncation(tokenizer, default_model_dir, fake_vllm):
    llm = scripted_llm(tokenizer, default_model_dir)
    backend = VLLMBackend(tokenizer, [tokenizer.eos_token_id], llm=llm)
    chats = [Protocol(rounds=2).messages("What?", 1)]
    outs = backend.generate(
        chats, SamplingParams(max_new_tokens=64, temperature=1.0), num_samples=3
    )
    assert [o.text for o in outs] == [
        f"<answer>len{outs[0].prompt_tokens}-s{i}</answer>" for i in range(3)
    ]
    assert not any(o.truncated for o in outs)
    cut = backend.generate(chats, SamplingParams(max_new_tokens=3))
    assert cut[0].completion_tokens == 3 and cut[0].truncated
    engine = RolloutEngine(backend, Protocol(rounds=2), SamplingParams(max_new_tokens=64))
    assert len(engine.run(["A", "B"])) == 2


def test_vllm_backend_needs_one_engine(tokenizer):
    with pytest.raises(ValueError, match="exactly one"):
        VLLMBackend(tokenizer, [0])
