"""Shared fixtures: the real tokenizer of the offline default model and tiny random models."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

# Property tests check values, not speed: hypothesis's default 200 ms deadline per example and
# its too-slow health check fail them on a slow or busy machine.
settings.register_profile("motif", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("motif")


TESTS = Path(__file__).resolve().parent
"""The test folder (its modules mirror the package in subfolders)."""
REPO = TESTS.parent
"""The repository's root (recipes/, docs/, studies/)."""
FIXTURES = TESTS / "fixtures"
"""Small data files the tests read."""

HANG_GUARD_S = 120.0
"""A test's limit on work whose speed is not what it tests (linear parsing of a megabyte takes
a second; a quadratic one would take hours): it catches a hang on the slowest, busiest
machine, it does not measure speed (that is bench/'s job)."""


def within_bound(seconds: float, timeout_s: float, calls: int = 1) -> bool:
    """Whether ``calls`` gradings at ``timeout_s`` ended within the wall-clock bound the oracle
    promises (its worker is killed at WALL_FACTOR x timeout + grace), with room for a busy
    machine's scheduling: the bound holds whatever the graded code does."""
    from motif import grading

    promised = grading.WALL_FACTOR * timeout_s + grading._WORKER.grace_s
    return seconds < calls * promised + 10.0


@pytest.fixture(scope="session")
def default_model_dir():
    """The converted offline default checkpoint (tokenizer with a real chat template)."""
    from motif.models import default_model_dir as resolve

    return resolve()


@pytest.fixture(scope="session")
def tokenizer(default_model_dir):
    from motif.models import load_tokenizer

    return load_tokenizer(str(default_model_dir))


def build_tiny_model(
    tokenizer,
    seed: int = 0,
    layers: int = 2,
    hidden: int = 64,
    architecture: str = "llama",
    **extra,
):
    """A random Llama with the real tokenizer's vocabulary (a few layers, hidden size 64).

    ``architecture="mistral"`` builds a Mistral instead; ``extra``: more config fields
    (e.g. ``sliding_window``).
    """
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM, MistralConfig, MistralForCausalLM

    config_class, model_class = {
        "llama": (LlamaConfig, LlamaForCausalLM),
        "mistral": (MistralConfig, MistralForCausalLM),
    }[architecture]
    torch.manual_seed(seed)
    config = config_class(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=hidden * 2,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
        **extra,
    )
    model = model_class(config)
    model.eval()
    return model


def build_sharp_model(tokenizer, seed: int = 0, **kwargs):
    """A tiny random Llama with sharp logits, so greedy output varies (a plain one repeats);
    ``kwargs`` go to :func:`build_tiny_model`."""
    import torch

    model = build_tiny_model(tokenizer, seed=seed, **kwargs)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "norm" not in name:
                param.mul_(20.0)
    return model


def fake_policy_trainer(policy, tokenizer):
    """The parts of a GRPOTrainer that motif's policy backend reads, around ``policy`` (CPU)."""
    from types import SimpleNamespace

    from accelerate import Accelerator

    return SimpleNamespace(
        model=policy,
        model_wrapped=policy,
        accelerator=Accelerator(cpu=True),
        processing_class=tokenizer,
        args=SimpleNamespace(ds3_gather_for_generation=True),
        use_vllm=False,
    )


@pytest.fixture(scope="session")
def tiny_model(tokenizer):
    return build_tiny_model(tokenizer)


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory, tokenizer, tiny_model):
    """The tiny model saved as a local checkpoint directory (for --model PATH tests)."""
    path = tmp_path_factory.mktemp("tiny-ckpt")
    tiny_model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture
def no_model_load(monkeypatch):
    """Fail the test if anything tries to load a model."""
    import motif.models

    def refuse(*args, **kwargs):
        raise AssertionError("a dry run must not load a model")

    monkeypatch.setattr(motif.models, "load_model", refuse)


@pytest.fixture
def with_length_reward(monkeypatch):
    """The method's real rewards plus one with variance, so training steps move the weights
    (random tiny models never format)."""
    import motif.training.trainer as trainer_module
    from train_fakes import length_reward

    real = trainer_module.build_rewards
    monkeypatch.setattr(trainer_module, "build_rewards", lambda *a: [*real(*a), length_reward])
