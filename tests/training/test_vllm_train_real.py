"""``motif train --use-vllm`` on a real vLLM engine: vLLM's CPU build (``make test-vllm``).

TRL's colocate mode runs its engine in the trainer's process. The test trains the offline
default model for 2 steps with it and checks that every rollout of training (round 1, the
continuations of the future-accuracy reward, the held-out check) ran on that engine, and that
after the optimiser steps the engine holds the trained policy: its log-probs of fixed replies
are far closer to the trainer's own model (LoRA active, float32) than before the steps. TRL's
engine runs in bfloat16 (vLLM's ``auto`` for a float32 checkpoint), so the two never agree
exactly; the bound is relative to how far the steps moved the policy.

TRL's server mode cannot train on a CPU (its weight sync needs NCCL): its refusal is tested
here, its weight sync on the fake (tests/training/test_credit.py).
"""

from __future__ import annotations

import json

import pytest

from motif.backends import vllm_options as opts

real_vllm = pytest.mark.skipif(
    not (opts.vllm_installed() and opts.vllm_platform() == "cpu"),
    reason="needs vLLM's CPU build (make test-vllm)",
)
pytestmark = [pytest.mark.vllm, real_vllm]

RUN = [
    "--dataset", "reasoning_gym:chain_sum", "--dataset-size", "6",
    "--num-generations", "2", "--max-completion-length", "16",
    "--continuation-max-new-tokens", "16", "--k", "2", "--rounds", "2",
    "--lora-r", "8", "--lora-alpha", "16", "--lora-target-modules", "q_proj", "v_proj",
    "--learning-rate", "0.05", "--warmup-ratio", "0.0", "--report-to", "none",
    "--max-steps", "2", "--heldout-every", "2", "--heldout-size", "2",
    "--use-vllm", "--vllm-mode", "colocate",
]  # fmt: skip
QUESTIONS = ["What is 12 + 30?", "Add 7, 8 and 9.", "What is 5 times 6?"]


def texts(tokenizer) -> list[list[int]]:
    """Token ids of round-1 chats with a reply, the sequences whose log-probs are compared."""
    from motif.prompts import round_messages

    reply = "<reasoning>Add the numbers one by one.</reasoning><answer>42</answer>"
    chats = [[*round_messages(q, 1, 2), {"role": "assistant", "content": reply}] for q in QUESTIONS]
    return [tokenizer.apply_chat_template(c, tokenize=True, return_dict=False) for c in chats]


def engine_logprobs(llm, sequences: list[list[int]]) -> list[list[float]]:
    """Log-prob of each token after the first under the engine's weights (vLLM's prompt
    log-probs), per sequence."""
    from vllm import SamplingParams
    from vllm.inputs import TokensPrompt

    params = SamplingParams(max_tokens=1, temperature=0.0, prompt_logprobs=0)
    results = llm.generate([TokensPrompt(prompt_token_ids=s) for s in sequences], params)
    return [
        [step[token].logprob for step, token in zip(r.prompt_logprobs[1:], s[1:], strict=True)]
        for r, s in zip(results, sequences, strict=True)
    ]


def model_logprobs(model, sequences: list[list[int]]) -> list[list[float]]:
    """The same log-probs under a transformers model (in its dtype, one sequence at a time)."""
    import torch

    rows = []
    model.eval()  # LoRA dropout off
    with torch.no_grad():
        for s in sequences:
            ids = torch.tensor([s])
            logp = model(input_ids=ids).logits.float().log_softmax(-1)[0, :-1]
            rows.append(logp.gather(1, ids[0, 1:, None])[:, 0].tolist())
    return rows


def gap(a: list[list[float]], b: list[list[float]]) -> float:
    """The mean absolute difference of two sets of per-token log-probs, in nats."""
    pairs = [(x, y) for ra, rb in zip(a, b, strict=True) for x, y in zip(ra, rb, strict=True)]
    return sum(abs(x - y) for x, y in pairs) / len(pairs)


@pytest.fixture
def engine_calls(monkeypatch):
    """Counts the prompts each call of a colocated vLLM engine's ``generate`` was given."""
    calls: list[int] = []

    def watch(llm):
        real = llm.generate

        def generate(prompts, *args, **kwargs):
            calls.append(len(prompts))
            return real(prompts, *args, **kwargs)

        monkeypatch.setattr(llm, "generate", generate)

    return watch, calls


def test_colocate_training_rolls_out_on_the_engine_with_each_steps_weights(
    tmp_path, default_model_dir, with_length_reward, engine_calls, monkeypatch
):
    from motif.backends.hf import TransformersBackend
    from motif.cli.train import parse_config
    from motif.training.trainer import build_trainer, check_config

    out = tmp_path / "run"
    config = parse_config(["--model", str(default_model_dir), "--output-dir", str(out), *RUN])
    checked = check_config(config)
    trainer = build_trainer(config, checked.dataset, checked.grpo_args, checked.heldout)
    tokenizer = trainer.processing_class
    watch, calls = engine_calls
    watch(trainer.vllm_generation.llm)
    sequences = texts(tokenizer)
    start = engine_logprobs(trainer.vllm_generation.llm, sequences)
    rounding = gap(start, model_logprobs(trainer.model, sequences))  # bf16 against float32
    calls.clear()

    def no_transformers_rollouts(*args, **kwargs):
        raise AssertionError("a training rollout ran on the transformers backend")

    with monkeypatch.context() as patch:
        patch.setattr(TransformersBackend, "generate", no_transformers_rollouts)
        trainer.train()
    # round 1 (2 prompts x 2 steps), each step's continuations, the held-out check (2 items)
    assert len(calls) >= 5 and sum(calls) >= 2 * 2 + 2, calls
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert any("future_accuracy" in r for r in rows) and any("heldout/accuracy" in r for r in rows)

    trainer.vllm_generation.sync_weights()  # the last step's weights, as its next batch would
    trained = engine_logprobs(trainer.vllm_generation.llm, sequences)
    policy = model_logprobs(trainer.model, sequences)  # LoRA active, float32
    # measured: rounding 0.03, trained against the policy 0.08, the start against it 3.75
    moved = gap(start, policy)
    assert moved > 20 * rounding, (moved, rounding)  # the steps moved the policy
    assert gap(trained, policy) < moved / 10, (gap(trained, policy), moved)  # the engine too


def test_server_mode_is_refused_on_a_cpu_before_a_model_loads(tmp_path, capsys):
    from motif.cli.main import main

    flags = [a if a != "colocate" else "server" for a in RUN]
    assert main(["train", "--dry-run", "--output-dir", str(tmp_path / "r"), *flags]) == 2
    assert "--vllm-mode server needs a CUDA GPU on the trainer" in capsys.readouterr().err
