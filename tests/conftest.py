"""Shared fixtures: the real tokenizer of the offline default model and tiny random models."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


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
