"""``bench/gpu_check.py``, the one prepared GPU check: its arithmetic and leg bookkeeping here,
and (marked ``vllm``) the whole script at ``--smoke`` size on vLLM's CPU build, so that a lent
GPU machine, 15 minutes at most, runs a script that has run end to end before."""

from __future__ import annotations

import json
import time

import pytest

from bench import gpu_check
from motif.backends import vllm_options as opts


def test_the_assumed_step_is_docs_scaling_formula():
    # docs/scaling.md: decode steps x 6 ms + 2 s sync + 2 s optimisation; 3 rounds of 1024
    vllm = gpu_check.assumed_step_seconds(1024, "vllm colocate")
    assert vllm == pytest.approx(3 * 1024 * 0.006 + 4.0)
    # the transformers path: the measured 75 ms a decode step + 2 s optimisation
    assert gpu_check.assumed_step_seconds(1024, "transformers") == pytest.approx(232.4)


def test_a_leg_is_skipped_with_its_reason_and_an_error_is_recorded(monkeypatch):
    report: dict = {}
    end = time.monotonic() + 100
    monkeypatch.setattr(gpu_check, "missing", lambda leg: ["vllm"] if leg == "vllm" else [])
    assert gpu_check.run_leg(report, "vllm", end, 10, lambda: {}) is None
    assert gpu_check.run_leg(report, "train", end, 1000, lambda: {}) is None  # no time left

    def broken():
        raise RuntimeError("CUDA out of memory")

    assert gpu_check.run_leg(report, "transformers", end, 10, broken) is None
    assert report["vllm"] == {"skipped": "missing: vllm"}
    assert report["train"]["skipped"].endswith("s left < 1000 s")
    assert report["transformers"] == {"error": "RuntimeError: CUDA out of memory"}
    done = gpu_check.run_leg(report, "transformers", end, 10, lambda: {"tok_s": 1.0, "greedy": []})
    assert done["tok_s"] == 1.0 and set(report["transformers"]) == {"tok_s", "leg_s"}


@pytest.mark.vllm
@pytest.mark.skipif(
    not (opts.vllm_installed() and opts.vllm_platform() == "cpu"),
    reason="needs vLLM's CPU build (make test-vllm)",
)
def test_the_whole_check_runs_at_smoke_size(tmp_path):
    out = tmp_path / "gpu_check.json"
    report = gpu_check.main(["--smoke", "--out", str(out)])
    assert json.loads(out.read_text()) == report
    for leg in ("transformers", "vllm", "train"):
        assert "skipped" not in report[leg] and "error" not in report[leg], report[leg]
    assert report["transformers"]["fast_tok_s"] > 0 and report["vllm"]["tok_s"] > 0
    assert 0 <= report["vllm"]["greedy_agreement"] <= 1
    train = report["train"]
    assert train["generation"] == "vllm colocate"
    assert (
        len(train["steps"]) == 2 and train["assumed_step_s"] == 4.29
    )  # 3 x 16 x 6 ms + 4 s, rounded
    assert train["measured_over_assumed"] > 0
