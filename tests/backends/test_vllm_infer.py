"""The vLLM backend for inference and evaluation, on the faithful fake of vLLM 0.31.0.

``tests/fakes_vllm.py`` generates from the same tiny checkpoint the transformers backend loads,
so greedy records must agree token for token between the two backends.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

import fakes_vllm
from motif.backends.base import SamplingParams
from motif.backends.hf import ContextOverflow
from motif.backends.vllm import VLLMBackend, load_vllm_backend
from motif.backends.vllm_options import (
    VllmArgs,
    check_backend_options,
    lora_rank_for,
    resolve_backend,
    vllm_dtype,
)
from motif.engine import RolloutEngine
from motif.errors import ConfigError
from motif.protocol import Protocol

QUESTIONS = ["What is 2 + 3?", "Name a prime number above 10."]


@pytest.fixture
def fake_vllm(monkeypatch):
    yield from fakes_vllm.use_fake_vllm(monkeypatch)


@pytest.fixture(scope="module")
def lora_adapter(tmp_path_factory, tiny_checkpoint):
    """A rank-8 LoRA adapter of the tiny model with random (non-zero) weights."""
    return _save_adapter(tmp_path_factory.mktemp("lora"), tiny_checkpoint, r=8)


def _save_adapter(path, checkpoint, r, **extra):
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(1)
    base = AutoModelForCausalLM.from_pretrained(checkpoint)
    config = LoraConfig(
        r=r, lora_alpha=16, target_modules=["q_proj", "v_proj"], init_lora_weights=False, **extra
    )
    get_peft_model(base, config).save_pretrained(path)
    return path


def _hf_backend(checkpoint, adapter=None):
    from motif.backends.hf import TransformersBackend
    from motif.models import load_model

    model, tokenizer = load_model(str(checkpoint), adapter, dtype="float32", device="cpu")
    return TransformersBackend(model, tokenizer, decode="generate", decode_dtype="model")


def _engine(backend, rounds=2, tokens=8, **sampling):
    params = SamplingParams(max_new_tokens=tokens, **sampling)
    return RolloutEngine(backend, Protocol(rounds=rounds), params)


def _records(trajectories):
    return [t.to_dict() for t in trajectories]


# --------------------------------------------------------------------------- engine runs


def test_greedy_rounds_match_the_transformers_backend(tiny_checkpoint, fake_vllm):
    backend = load_vllm_backend(str(tiny_checkpoint), None, VllmArgs(), dtype="float32")
    got = _records(_engine(backend, rounds=3).run(QUESTIONS))
    want = _records(_engine(_hf_backend(tiny_checkpoint), rounds=3).run(QUESTIONS))
    assert got == want
    assert all(r["truncated"] and r["completion_tokens"] == 8 for t in got for r in t["rounds"])
    (llm,) = fakes_vllm.ENGINES
    # one batched call per round, every prompt of the round in it, greedy, EOS ids as stops
    assert [len(c["prompts"]) for c in llm.calls] == [2, 2, 2]
    sp = llm.calls[0]["sampling_params"][0]
    assert (sp.n, sp.temperature, sp.top_k, sp.max_tokens) == (1, 0.0, 0, 8)
    assert sp.stop_token_ids == backend.eos_ids and sp.detokenize is False
    assert llm.calls[0]["use_tqdm"] is False and llm.calls[0]["lora_request"] is None
    assert all(set(p) == {"prompt_token_ids"} for p in llm.calls[0]["prompts"])
    assert llm.init_kwargs["dtype"] == "float32" and "enable_lora" not in llm.init_kwargs


def test_samples_per_prompt_and_seeds(tiny_checkpoint, fake_vllm):
    backend = load_vllm_backend(str(tiny_checkpoint), None, VllmArgs())

    def run(seed):
        engine = _engine(backend, temperature=1.0, top_p=0.9, top_k=50, seed=seed)
        return [[r["text"] for r in t["rounds"]] for t in _records(engine.run(QUESTIONS, 3))]

    first, again, other = run(5), run(5), run(6)
    assert first == again  # a seed reproduces the run
    assert first != other
    assert len(first) == 6 and len({tuple(t) for t in first[:3]}) > 1  # samples differ
    llm = fakes_vllm.ENGINES[0]
    sp = llm.calls[0]["sampling_params"][0]
    assert (sp.n, sp.seed, sp.top_p, sp.top_k, sp.temperature) == (3, 5, 0.9, 50, 1.0)
    assert [len(c["prompts"]) for c in llm.calls[:2]] == [2, 6]  # round 2: every trajectory


def test_eos_and_truncation_records(default_model_dir, tokenizer, fake_vllm):
    eos = tokenizer.eos_token_id
    answer = tokenizer("<answer>12</answer>", add_special_tokens=False)["input_ids"]
    fakes_vllm.SCRIPTS[str(default_model_dir)] = lambda ids, sample, seed: (
        answer + [eos] if sample == 0 else answer * 10
    )
    backend = load_vllm_backend(str(default_model_dir), None, VllmArgs())
    trajectories = _engine(backend, rounds=2, tokens=len(answer) + 3, temperature=0.5).run(
        ["Q?"], num_samples=2
    )
    stopped, cut = (t.rounds[0] for t in trajectories)
    assert stopped.text == "<answer>12</answer>" and stopped.answer == "12"
    assert stopped.completion_tokens == len(answer) + 1 and not stopped.truncated
    assert cut.completion_tokens == len(answer) + 3 and cut.truncated
    assert cut.prompt_tokens == stopped.prompt_tokens > 0
    out = fakes_vllm.ENGINES[0].calls[0]
    assert out["sampling_params"][0].n == 2


def test_adapter_is_served_through_a_lora_request(tiny_checkpoint, lora_adapter, fake_vllm):
    backend = load_vllm_backend(str(tiny_checkpoint), str(lora_adapter), VllmArgs())
    got = _records(_engine(backend).run(QUESTIONS))
    want = _records(_engine(_hf_backend(tiny_checkpoint, str(lora_adapter))).run(QUESTIONS))
    base = _records(_engine(_hf_backend(tiny_checkpoint)).run(QUESTIONS))
    assert got == want and got != base
    llm = fakes_vllm.ENGINES[0]
    assert llm.init_kwargs["enable_lora"] is True and llm.init_kwargs["max_lora_rank"] == 8
    request = llm.calls[0]["lora_request"]
    assert request.lora_int_id == 1 and request.lora_path == str(lora_adapter.resolve())
    assert all(c["lora_request"] is request for c in llm.calls)


def test_gpu_options_reach_the_engine(tiny_checkpoint, lora_adapter, fake_vllm):
    args = VllmArgs(
        tensor_parallel_size=2,
        gpu_memory_utilization=0.5,
        max_model_len=1024,
        max_lora_rank=16,
        enforce_eager=True,
    )
    load_vllm_backend(str(tiny_checkpoint), str(lora_adapter), args, dtype="bfloat16", budget=64)
    kwargs = fakes_vllm.ENGINES[0].init_kwargs
    assert kwargs["tensor_parallel_size"] == 2 and kwargs["gpu_memory_utilization"] == 0.5
    assert kwargs["max_model_len"] == 1024 and kwargs["max_lora_rank"] == 16
    assert kwargs["enforce_eager"] is True and kwargs["dtype"] == "bfloat16"


# --------------------------------------------------------------------------- bad input


def test_missing_vllm_is_one_line_naming_the_extra(monkeypatch, tiny_checkpoint):
    monkeypatch.setitem(sys.modules, "vllm", None)  # import vllm fails, as when not installed
    with pytest.raises(ConfigError) as err:
        load_vllm_backend(str(tiny_checkpoint), None, VllmArgs())
    message = str(err.value)
    assert "pip install 'motif-rl[vllm]'" in message and "\n" not in message


def test_no_gpu_is_refused_before_loading(monkeypatch, tiny_checkpoint, fake_vllm):
    import motif.backends.vllm_options as options

    monkeypatch.setattr(options, "gpu_visible", lambda: False)
    with pytest.raises(ConfigError, match="needs a CUDA GPU"):
        load_vllm_backend(str(tiny_checkpoint), None, VllmArgs())
    assert fakes_vllm.ENGINES == []


def test_adapter_rank_above_max_lora_rank(tmp_path, tiny_checkpoint, fake_vllm):
    adapter = _save_adapter(tmp_path / "r64", tiny_checkpoint, r=64)
    with pytest.raises(ConfigError) as err:
        load_vllm_backend(str(tiny_checkpoint), str(adapter), VllmArgs(max_lora_rank=16))
    assert str(err.value) == (
        f"--adapter {adapter} has LoRA rank 64 but --max-lora-rank is 16; pass --max-lora-rank 64"
    )
    assert fakes_vllm.ENGINES == []
    assert lora_rank_for(str(adapter), None) == 64


@pytest.mark.parametrize(
    ("config", "match"),
    [
        ({"r": 12}, None),  # rounded up to vLLM's next rank: 16
        ({"r": 8, "rank_pattern": {"q_proj": 40}}, None),  # 40 -> 64
        ({"r": 600}, "above vLLM's largest"),
        ({"r": 8, "use_dora": True}, "DoRA"),
        ({"r": 8, "bias": "all"}, "biases"),
        ({"r": 8, "modules_to_save": ["lm_head"]}, "modules_to_save"),
        ({"r": 8, "peft_type": "IA3"}, "LoRA only"),
        ({"lora_alpha": 8}, "no positive integer r"),
    ],
)
def test_adapter_configs(tmp_path, config, match):
    (tmp_path / "adapter_config.json").write_text(json.dumps(config))
    if match is None:
        assert lora_rank_for(str(tmp_path), None) == {12: 16, 8: 64}[config["r"]]
        return
    with pytest.raises(ConfigError, match=match):
        lora_rank_for(str(tmp_path), None)


def test_max_model_len_checks(tiny_checkpoint, tokenizer, fake_vllm):
    # below one round's budget: refused before any model loads
    with pytest.raises(ConfigError, match=r"--max-model-len 100 .* at least 2049"):
        check_backend_options("vllm", VllmArgs(max_model_len=100), budget=2048)
    with pytest.raises(ConfigError, match="--max-model-len 100"):
        load_vllm_backend(str(tiny_checkpoint), None, VllmArgs(max_model_len=100), budget=2048)
    # above the model's context (2048 for the tiny model)
    with pytest.raises(ConfigError, match="exceeds the model's context of 2048"):
        load_vllm_backend(str(tiny_checkpoint), None, VllmArgs(max_model_len=4096))
    # the model's own context is the limit when none is given
    with pytest.raises(ConfigError, match="--max-model-len 2048"):
        load_vllm_backend(str(tiny_checkpoint), None, VllmArgs(), budget=2048)
    assert fakes_vllm.ENGINES == []
    # a real prompt plus the budget: refused before vLLM sees it (overflow="error")
    backend = load_vllm_backend(str(tiny_checkpoint), None, VllmArgs(max_model_len=64))
    with pytest.raises(ContextOverflow, match=r"^prompt 0 has \d+ tokens; .* max_model_len of 64"):
        _engine(backend, tokens=32).run(["A long question " * 5])
    assert fakes_vllm.ENGINES[0].calls == []


@pytest.fixture(scope="module")
def short_context(tmp_path_factory, tokenizer):
    """A tiny checkpoint whose context (250 tokens) holds round 1 but not round 2 + budget."""
    from conftest import build_tiny_model

    model = build_tiny_model(tokenizer)
    model.config.max_position_embeddings = 250
    path = tmp_path_factory.mktemp("short-ctx")
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def _short_hf(short_context, overflow):
    from motif.backends.hf import TransformersBackend
    from motif.models import load_model

    model, tokenizer = load_model(str(short_context), dtype="float32", device="cpu")
    return TransformersBackend(
        model, tokenizer, overflow=overflow, decode="generate", decode_dtype="model"
    )


def test_context_overflow_skip_matches_the_transformers_backend(short_context, fake_vllm):
    vllm = load_vllm_backend(str(short_context), None, VllmArgs(), overflow="skip")
    got = _records(_engine(vllm, rounds=3, tokens=16).run(QUESTIONS))
    assert got == _records(
        _engine(_short_hf(short_context, "skip"), rounds=3, tokens=16).run(QUESTIONS)
    )
    # round 3's prompt (the final-round instruction) plus 16 tokens exceeds 250: cut there
    assert all(t["cut_round"] == 3 and len(t["rounds"]) == 2 for t in got)
    assert len(fakes_vllm.ENGINES[0].calls) == 2  # round 3 never reached vLLM


def test_context_overflow_error_and_truncate(short_context, tokenizer, tmp_path, fake_vllm):
    # the random model carries an empty summary: nothing to cut, both backends refuse
    vllm = load_vllm_backend(str(short_context), None, VllmArgs(), overflow="truncate_left")
    for backend in (vllm, _short_hf(short_context, "truncate_left")):
        with pytest.raises(ContextOverflow, match="prompt 0 has 242 tokens"):
            _engine(backend, rounds=3, tokens=16).run(QUESTIONS[:1])
    # a scripted model with a 270-token context: round 2's prompt (227 tokens + a 24-token
    # summary) plus 24 new tokens overflows; the summary is cut from the left to fit 246
    scripted = tmp_path / "scripted"
    shutil.copytree(short_context, scripted)
    config = json.loads((scripted / "config.json").read_text())
    (scripted / "config.json").write_text(json.dumps({**config, "max_position_embeddings": 270}))
    words = tokenizer("<answer>" + " seven" * 40, add_special_tokens=False)["input_ids"]
    fakes_vllm.SCRIPTS[str(scripted)] = lambda ids, sample, seed: words
    backend = load_vllm_backend(str(scripted), None, VllmArgs(), overflow="truncate_left")
    (traj,) = _engine(backend, rounds=3, tokens=24).run(QUESTIONS[:1])
    assert len(traj.rounds) == 3 and traj.cut_round is None
    for call, record in zip(fakes_vllm.ENGINES[-1].calls[1:], traj.rounds[1:], strict=True):
        sent = call["prompts"][0]["prompt_token_ids"]
        assert 270 - 24 - 2 <= len(sent) <= 270 - 24 and record.prompt_tokens == len(sent)
        assert "seven" in tokenizer.decode(sent)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"tensor_parallel_size": 0}, "--tensor-parallel-size"),
        ({"gpu_memory_utilization": 1.5}, "--gpu-memory-utilization"),
        ({"gpu_memory_utilization": 0}, "--gpu-memory-utilization"),
        ({"max_model_len": 1}, "--max-model-len"),
        ({"max_lora_rank": 12}, "--max-lora-rank must be one of 1, 8, 16"),
    ],
)
def test_vllm_args_validation(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        VllmArgs(**kwargs)


@pytest.mark.parametrize(
    ("backend", "args", "options", "match"),
    [
        ("transformers", {"tensor_parallel_size": 2}, {}, "--tensor-parallel-size is a vLLM"),
        ("transformers", {"max_model_len": 4096}, {}, "--max-model-len is a vLLM option"),
        ("transformers", {"enforce_eager": True}, {}, "pass --backend vllm"),
        ("vllm", {}, {"decode": "generate"}, "--decode generate is a transformers option"),
        ("vllm", {}, {"decode_dtype": "model"}, "--decode-dtype model"),
        ("vllm", {}, {"device": "cpu"}, "--device is a transformers option"),
        ("vllm", {}, {"temperature": 2.5}, "--temperature must be <= 2"),
        ("vllm", {"max_lora_rank": 16}, {}, "--max-lora-rank is only used with --adapter"),
        ("vllm", {}, {"adapter": "/no/such/adapter"}, "--adapter /no/such/adapter is not"),
        ("bogus", {}, {}, "--backend must be"),
    ],
)
def test_option_conflicts(backend, args, options, match):
    with pytest.raises(ConfigError, match=match) as err:
        check_backend_options(backend, VllmArgs(**args), **options)
    assert "\n" not in str(err.value)


def test_option_checks_pass_for_good_plans(lora_adapter):
    check_backend_options("transformers", VllmArgs(), decode="generate", device="cpu")
    check_backend_options(
        "vllm", VllmArgs(max_model_len=4096), adapter=str(lora_adapter), budget=2048
    )


@pytest.mark.parametrize(
    ("name", "installed", "gpu", "backend", "why"),
    [
        ("transformers", True, True, "transformers", "--backend transformers"),
        ("vllm", False, False, "vllm", "--backend vllm"),
        ("auto", True, True, "vllm", "vLLM is installed and a GPU is visible"),
        ("auto", False, True, "transformers", "vLLM is not installed"),
        ("auto", True, False, "transformers", "no GPU is visible"),
    ],
)
def test_resolve_backend(name, installed, gpu, backend, why):
    got, line = resolve_backend(name, installed=installed, gpu=gpu)
    assert got == backend and line.startswith(f"backend: {backend}") and why in line


def test_resolve_backend_refuses_unknown_names():
    with pytest.raises(ConfigError, match="--backend must be one of transformers, vllm, auto"):
        resolve_backend("tensorrt")


@pytest.mark.parametrize(
    ("dtype", "bf16", "want"),
    [("auto", True, "bfloat16"), ("auto", False, "float16"), ("float32", True, "float32")],
)
def test_vllm_dtype(dtype, bf16, want):
    assert vllm_dtype(dtype, bf16) == want


def test_importing_the_options_loads_neither_torch_nor_vllm():
    code = (
        "import sys, motif.backends.vllm_options as o; o.VllmArgs(); "
        "assert 'torch' not in sys.modules and 'vllm' not in sys.modules, sorted(sys.modules)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# --------------------------------------------------------------------------- the fake itself


def test_fake_refuses_what_vllm_refuses(default_model_dir, fake_vllm):
    from vllm import SamplingParams as VllmSamplingParams
    from vllm.exceptions import VLLMValidationError
    from vllm.lora.request import LoRARequest

    with pytest.raises(VLLMValidationError, match="temperature must be in"):
        VllmSamplingParams(temperature=2.5)
    with pytest.raises(TypeError):
        VllmSamplingParams(max_new_tokens=4)
    with pytest.raises(ValueError, match="id must be > 0"):
        LoRARequest(lora_name="a", lora_int_id=0, lora_path="/x")
    greedy = VllmSamplingParams(temperature=0, top_p=0.5, top_k=3, seed=-1)
    assert (greedy.top_p, greedy.top_k, greedy.seed) == (1.0, 0, None)
    fakes_vllm.SCRIPTS[str(default_model_dir)] = lambda ids, sample, seed: [7]
    llm = fakes_vllm.LLM(str(default_model_dir))
    with pytest.raises(VLLMValidationError, match="LoRA is not enabled"):
        llm.generate([{"prompt_token_ids": [1, 2]}], lora_request=LoRARequest("a", 1, "/x"))
    with pytest.raises(TypeError, match="unexpected keyword argument 'max_new_tokens'"):
        fakes_vllm.LLM(str(default_model_dir), max_new_tokens=3)


def test_backend_needs_an_engine_for_a_lora_request(tokenizer):
    with pytest.raises(ValueError, match="colocated llm"):
        VLLMBackend(tokenizer, [0], client=object(), lora_request=object())


def test_plan_backend_checks_the_later_rounds_budget(monkeypatch):
    from types import SimpleNamespace

    import motif.backends.vllm_options as options

    model = SimpleNamespace(
        backend="auto", adapter=None, device="auto", decode="fast", decode_dtype="auto"
    )
    gen = SimpleNamespace(temperature=0.0, max_new_tokens=1024, later_max_new_tokens=2048)
    monkeypatch.setattr(options, "vllm_installed", lambda: True)
    monkeypatch.setattr(options, "vllm_platform", lambda: "cuda")  # a CUDA build of vLLM
    monkeypatch.setattr(options, "gpu_visible", lambda: True)
    assert options.plan_backend(model, VllmArgs(max_model_len=4096), gen)[0] == "vllm"
    with pytest.raises(ConfigError, match="at least 2049"):
        options.plan_backend(model, VllmArgs(max_model_len=2048), gen)
    monkeypatch.setattr(options, "gpu_visible", lambda: False)
    backend, line = options.plan_backend(model, VllmArgs(), gen)
    assert backend == "transformers" and "no GPU is visible" in line
    # asked for explicitly: vLLM missing, or no GPU, fails before anything loads
    model.backend = "vllm"
    with pytest.raises(ConfigError, match="needs a CUDA GPU"):
        options.plan_backend(model, VllmArgs(), gen)
    assert options.plan_backend(model, VllmArgs(), gen, engine=False)[0] == "vllm"
    monkeypatch.setattr(options, "vllm_installed", lambda: False)
    with pytest.raises(ConfigError, match=r"pip install 'motif-rl\[vllm\]'"):
        options.plan_backend(model, VllmArgs(), gen)


def test_auto_on_a_cpu_ignores_the_vllm_options_of_a_portable_config(monkeypatch, caplog):
    """Found by a user test: --backend auto with vLLM options failed on a CPU machine."""
    from types import SimpleNamespace

    import motif.backends.vllm_options as options

    model = SimpleNamespace(
        backend="auto", adapter=None, device="auto", decode="fast", decode_dtype="auto"
    )
    gen = SimpleNamespace(temperature=0.0, max_new_tokens=64, later_max_new_tokens=None)
    monkeypatch.setattr(options, "gpu_visible", lambda: False)
    with caplog.at_level("WARNING"):
        backend, _ = options.plan_backend(model, VllmArgs(gpu_memory_utilization=0.5), gen)
    assert backend == "transformers" and "ignoring --gpu-memory-utilization" in caplog.text
    model.backend = "transformers"  # asked for explicitly: still an error
    with pytest.raises(ConfigError, match="is a vLLM option but the backend is transformers"):
        options.plan_backend(model, VllmArgs(gpu_memory_utilization=0.5), gen)
