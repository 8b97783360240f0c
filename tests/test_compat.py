"""motif.compat: names and fixes chosen by the transformers release, and the default model's
conversion marker (a copy made by a release that misread its EOS is never reused)."""

from __future__ import annotations

import dataclasses
import inspect
import json

import pytest

from motif import compat, models
from motif.identity import files_fingerprint

RELEASES = [
    # release, TrainingArguments' flag, forward's cache keyword, GGUF tokenizer misread
    ("5.17.0", "gradient_checkpointing", "past_key_values", True),
    ("5.18.0", "gradient_checkpointing", "past_key_values", False),
    ("5.22.2", "gradient_checkpointing", "past_key_values", False),
    ("5.23.0", "activation_checkpointing", "past_key_values", False),
    ("5.24.0", "activation_checkpointing", "cache", False),
]


@pytest.mark.parametrize(("release", "flag", "cache", "misread"), RELEASES)
def test_choices_follow_the_release(release, flag, cache, misread):
    assert compat.checkpointing_keyword(release) == flag
    assert compat.cache_keyword(release) == cache
    assert compat.gguf_tokenizer_misread(release) is misread


def test_installed_release_takes_the_chosen_names():
    from transformers import LlamaModel, TrainingArguments

    assert compat.checkpointing_keyword() in {f.name for f in dataclasses.fields(TrainingArguments)}
    assert compat.cache_keyword() in inspect.signature(LlamaModel.forward).parameters


def test_forward_last_fills_the_kv_cache(tiny_model):
    """The silent fault: a keyword the release does not know leaves the cache empty."""
    import torch
    from transformers import DynamicCache

    from motif.backends.prefill import forward_last

    ids = torch.tensor([[5, 6, 7, 8]])
    mask = torch.ones_like(ids)
    pos = torch.arange(4).unsqueeze(0)
    cache = DynamicCache(config=tiny_model.config)
    with torch.no_grad():
        logits = forward_last(tiny_model, ids, mask, pos, cache)
    assert logits.shape == (1, tiny_model.config.vocab_size)
    assert cache.get_seq_length() == 4


def test_align_special_tokens_sets_the_configs_eos_and_pad(default_model_dir):
    from transformers import AutoConfig, AutoTokenizer

    config = AutoConfig.from_pretrained(default_model_dir)
    tokenizer = AutoTokenizer.from_pretrained(default_model_dir)
    tokenizer.eos_token = "<|im_start|>"  # what transformers 5.17.0 read from the GGUF
    tokenizer.pad_token = None
    compat.align_special_tokens(tokenizer, config)
    assert (tokenizer.eos_token, tokenizer.eos_token_id) == ("<|im_end|>", config.eos_token_id)
    assert tokenizer.pad_token == "<|im_end|>"
    compat.align_special_tokens(tokenizer, config)  # a no-op once they agree
    assert tokenizer.eos_token == "<|im_end|>"


def test_align_special_tokens_leaves_unset_and_list_ids(default_model_dir):
    from types import SimpleNamespace

    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(default_model_dir)
    before = (tokenizer.eos_token, tokenizer.pad_token)
    compat.align_special_tokens(tokenizer, SimpleNamespace(eos_token_id=[1, 2], pad_token_id=None))
    assert (tokenizer.eos_token, tokenizer.pad_token) == before


# --- the converted default model's marker (no real conversion: a stand-in writes config.json)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """An empty cache root and a stand-in converter that counts its calls."""
    monkeypatch.setenv("MOTIF_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(models, "default_gguf_file", lambda: tmp_path / "model.gguf")
    calls = []

    def convert(gguf, out):
        calls.append(out)
        out.mkdir(parents=True)
        (out / "config.json").write_text(json.dumps({"transformers_version": "5.24.0"}))

    monkeypatch.setattr(models, "_convert_gguf", convert)
    return tmp_path / "models" / models.DEFAULT_MODEL_NAME, calls


def _copy(target, made_by, marker=None):
    target.mkdir(parents=True)
    (target / "config.json").write_text(json.dumps({"transformers_version": made_by}))
    if marker is not None:
        (target / models.CONVERSION_MARKER).write_text(json.dumps(marker))


def _marker(target):
    return json.loads((target / models.CONVERSION_MARKER).read_text())


def test_conversion_records_what_made_it(cache):
    target, calls = cache
    assert models.default_model_dir() == target
    assert len(calls) == 1
    assert _marker(target) == {"transformers": "5.24.0", "conversion": models.CONVERSION}
    models.default_model_dir()
    assert len(calls) == 1  # reused


def test_unmarked_sound_copy_is_reused_and_marked(cache):
    target, calls = cache
    _copy(target, "5.20.2")
    before = files_fingerprint(target)
    assert models.default_model_dir() == target
    assert calls == []
    assert _marker(target) == {"transformers": "5.20.2", "conversion": models.CONVERSION}
    assert files_fingerprint(target) == before  # runs resumed on this copy keep their identity


def test_unmarked_copy_from_a_misreading_release_is_converted_again(cache):
    target, calls = cache
    _copy(target, "5.17.0")
    assert models.default_model_dir() == target
    assert len(calls) == 1
    assert _marker(target)["transformers"] == "5.24.0"
    assert list(target.parent.iterdir()) == [target]  # the faulty copy is gone


def test_marked_copy_from_the_fixed_conversion_is_reused(cache):
    target, calls = cache
    _copy(target, "5.17.0", marker={"transformers": "5.17.0", "conversion": models.CONVERSION})
    assert models.default_model_dir() == target
    assert calls == []


@pytest.mark.slow
def test_real_conversion_has_the_chat_eos(tmp_path, monkeypatch):
    """The GGUF converted by the installed release (on 5.17.0 too) ends turns with <|im_end|>."""
    from transformers import AutoTokenizer

    monkeypatch.setenv("MOTIF_CACHE_DIR", str(tmp_path))
    target = models.default_model_dir()
    tokenizer = AutoTokenizer.from_pretrained(target)
    assert tokenizer.eos_token == "<|im_end|>"
    assert _marker(target) == {
        "transformers": str(compat.transformers_version()),
        "conversion": models.CONVERSION,
    }
