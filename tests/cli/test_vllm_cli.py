"""`motif infer` and `motif eval` with `--backend vllm`, on the faithful fake of vLLM 0.31.0.

Inactive until the CLI wiring lands (``--backend`` on ``ModelArgs``, ``VllmArgs`` on the infer
and eval parsers, ``load_backend`` dispatching to :func:`motif.backends.vllm.load_vllm_backend`,
the backend in the eval run identity); then drop the skip mark.

The fake generates from the tiny checkpoint in float32, so with greedy decoding the vLLM
backend's records must equal the transformers backend's exact path (``--decode generate
--decode-dtype model --dtype float32``) row for row.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

import fakes_vllm
from conftest import FIXTURES
from motif.cli.main import main

ARITH = str(FIXTURES / "eval_arith.jsonl")
EXACT_HF = ["--backend", "transformers", "--decode", "generate", "--decode-dtype", "model"]


@pytest.fixture
def fake_vllm(monkeypatch):
    yield from fakes_vllm.use_fake_vllm(monkeypatch)


def run_cli(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def infer(capsys, checkpoint, *backend):
    return run_cli(
        capsys,
        "infer",
        "What is 12 + 30?",
        "--model",
        checkpoint,
        "--dtype",
        "float32",
        "--rounds",
        3,
        "--max-new-tokens",
        6,
        "--json",
        *backend,
    )


def test_infer_json_rows_equal_the_transformers_backend(capsys, tiny_checkpoint, fake_vllm):
    code, vllm_out, err = infer(capsys, tiny_checkpoint, "--backend", "vllm")
    assert code == 0, err
    code, hf_out, err = infer(capsys, tiny_checkpoint, *EXACT_HF)
    assert code == 0, err
    assert json.loads(vllm_out) == json.loads(hf_out)
    (llm,) = fakes_vllm.ENGINES
    assert len(llm.calls) == 3  # one generate call per round


def test_backend_auto_says_which(capsys, tiny_checkpoint, fake_vllm):
    code, _, err = infer(capsys, tiny_checkpoint, "--backend", "auto")
    assert code == 0, err
    assert "backend: vllm (--backend auto: vLLM is installed and a GPU is visible)" in err


def evaluate(capsys, out, checkpoint, limit, *backend):
    return run_cli(
        capsys,
        "eval",
        "--model",
        checkpoint,
        "--dtype",
        "float32",
        "--benchmark",
        ARITH,
        "--limit",
        limit,
        "--rounds",
        2,
        "--max-new-tokens",
        4,
        "--batch-size",
        2,
        "--output-dir",
        out,
        "--json",
        *backend,
    )


def rows_of(out: Path) -> list[dict]:
    lines = (out / "samples.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def test_resumed_eval_writes_the_same_rows_as_transformers(
    capsys, tmp_path, tiny_checkpoint, fake_vllm
):
    vllm_dir, hf_dir = tmp_path / "vllm", tmp_path / "hf"
    code, out, err = evaluate(capsys, vllm_dir, tiny_checkpoint, 2, "--backend", "vllm")
    assert code == 0, err
    first = json.loads(out)
    assert first["run"]["generated_problems"] == 2
    # resumed with a larger limit: only the two new problems are generated
    code, out, err = evaluate(capsys, vllm_dir, tiny_checkpoint, 4, "--backend", "vllm")
    assert code == 0, err
    resumed = json.loads(out)
    assert resumed["run"]["generated_problems"] == 2 and len(rows_of(vllm_dir)) == 4
    assert resumed["config"]["backend"] == "vllm"
    code, out, err = evaluate(capsys, hf_dir, tiny_checkpoint, 4, *EXACT_HF)
    assert code == 0, err
    assert rows_of(vllm_dir) == rows_of(hf_dir)
    assert json.loads(out)["metrics"] == resumed["metrics"]
    # the backend is part of the identity: the other backend cannot mix into this directory
    code, _, err = evaluate(capsys, vllm_dir, tiny_checkpoint, 4, *EXACT_HF)
    assert code == 2 and "backend" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        (["--backend", "tensorrt"], "--backend must be one of transformers, vllm, auto"),
        (["--tensor-parallel-size", "2"], "--tensor-parallel-size is a vLLM option"),
        (["--backend", "vllm", "--decode", "generate"], "--decode generate is a transformers"),
        (["--backend", "vllm", "--max-model-len", "4"], "--max-model-len 4 cannot hold"),
        (["--backend", "vllm", "--temperature", "3"], "--temperature must be <= 2"),
    ],
)
def test_bad_input_exits_2_before_loading(capsys, tiny_checkpoint, fake_vllm, extra, match):
    code, _, err = infer(capsys, tiny_checkpoint, *extra)
    assert code == 2 and match in err and len(err.strip().splitlines()) == 1
    assert fakes_vllm.ENGINES == []


def test_adapter_rank_above_max_lora_rank_exits_2(capsys, tmp_path, tiny_checkpoint, fake_vllm):
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(json.dumps({"r": 64, "peft_type": "LORA"}))
    extra = ["--backend", "vllm", "--adapter", adapter, "--max-lora-rank", "16"]
    code, _, err = infer(capsys, tiny_checkpoint, *extra)
    assert code == 2 and "has LoRA rank 64 but --max-lora-rank is 16" in err
    assert fakes_vllm.ENGINES == []


def test_missing_vllm_exits_2_naming_the_extra(capsys, monkeypatch, tiny_checkpoint):
    monkeypatch.setitem(sys.modules, "vllm", None)
    code, _, err = infer(capsys, tiny_checkpoint, "--backend", "vllm")
    assert code == 2 and "pip install 'motif-rl[vllm]'" in err
    assert len(err.strip().splitlines()) == 1
