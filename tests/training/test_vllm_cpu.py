"""TRL's colocated engine on vLLM's CPU platform (motif.training.vllm_cpu), without vLLM: the
sync runs inside vLLM's layerwise reload, the KV cache is sized as ``--backend vllm`` sizes it.
The real engine: tests/training/test_vllm_train_real.py (``make test-vllm``)."""

from __future__ import annotations

import os
import sys
import types
from types import SimpleNamespace

import pytest

from motif.training import vllm_cpu

RELOAD = "vllm.model_executor.model_loader.reload"


@pytest.fixture
def reload_calls(monkeypatch):
    """A stand-in for vLLM's reload module that records the calls in order."""
    calls: list[tuple] = []
    names = RELOAD.split(".")
    for i in range(1, len(names)):
        monkeypatch.setitem(sys.modules, ".".join(names[:i]), types.ModuleType(names[i - 1]))
    module = types.ModuleType(RELOAD)
    module.initialize_layerwise_reload = lambda model: calls.append(("start", model))
    module.finalize_layerwise_reload = lambda model, config: calls.append(("end", model, config))
    monkeypatch.setitem(sys.modules, RELOAD, module)
    return calls


def trainer(mode: str, calls: list) -> SimpleNamespace:
    runner = SimpleNamespace(model="the model", model_config="its config")
    executor = SimpleNamespace(driver_worker=SimpleNamespace(model_runner=runner))
    llm = SimpleNamespace(llm_engine=SimpleNamespace(model_executor=executor))
    generation = SimpleNamespace(mode=mode, llm=llm, sync_weights=lambda: calls.append(("sync",)))
    return SimpleNamespace(use_vllm=True, vllm_generation=generation)


def test_on_the_cpu_platform_trls_sync_runs_inside_vllms_reload(reload_calls, monkeypatch):
    monkeypatch.setattr(vllm_cpu, "vllm_platform", lambda: "cpu")
    colocated = trainer("colocate", reload_calls)
    assert vllm_cpu.reload_on_cpu(colocated)
    colocated.vllm_generation.sync_weights()
    assert reload_calls == [
        ("start", "the model"),
        ("sync",),  # TRL still decides what is sent
        ("end", "the model", "its config"),
    ]


@pytest.mark.parametrize(("mode", "platform"), [("server", "cpu"), ("colocate", "cuda")])
def test_elsewhere_trls_sync_is_left_alone(mode, platform, reload_calls, monkeypatch):
    monkeypatch.setattr(vllm_cpu, "vllm_platform", lambda: platform)
    other = trainer(mode, reload_calls)
    assert not vllm_cpu.reload_on_cpu(other)
    other.vllm_generation.sync_weights()
    assert reload_calls == [("sync",)]
    assert not vllm_cpu.reload_on_cpu(SimpleNamespace(use_vllm=False))


def test_the_cpu_kv_cache_is_the_backends_unless_set(monkeypatch):
    # SmolLM2-135M: 2 sequences of 8192 tokens in float32 fit in 1 GiB; a 32k-token 3B does not
    sizes = dict(num_hidden_layers=30, num_attention_heads=9, num_key_value_heads=3)
    small = SimpleNamespace(config=SimpleNamespace(**sizes, hidden_size=576))
    small.config.max_position_embeddings = 8192
    sizes = dict(num_hidden_layers=36, num_attention_heads=16, num_key_value_heads=2)
    big = SimpleNamespace(config=SimpleNamespace(**sizes, head_dim=128))
    big.config.max_position_embeddings = 32768
    monkeypatch.setattr(vllm_cpu, "vllm_platform", lambda: "cpu")
    monkeypatch.delenv(vllm_cpu.KV_ENV, raising=False)
    assert vllm_cpu.cpu_engine_env(small) == "1"
    monkeypatch.delenv(vllm_cpu.KV_ENV)
    assert vllm_cpu.cpu_engine_env(big) == "5"  # 2 x 32768 x 73728 bytes = 4.5 GiB
    monkeypatch.setenv(vllm_cpu.KV_ENV, "3")  # the user's own
    assert vllm_cpu.cpu_engine_env(small) is None
    monkeypatch.delenv(vllm_cpu.KV_ENV)
    monkeypatch.setattr(vllm_cpu, "vllm_platform", lambda: "cuda")
    assert vllm_cpu.cpu_engine_env(small) is None
    assert vllm_cpu.KV_ENV not in os.environ
