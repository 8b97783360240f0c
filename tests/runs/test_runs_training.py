"""motif.runs.training: the one reader of a training folder (metrics, times, config, checkpoints)."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import pytest

from motif.errors import MotifError
from motif.runs.layout import (
    ADAPTER_FILES,
    IDENTITY_FILE,
    METRICS_FILE,
    TRAIN_CONFIG_FILE,
    TRAINER_STATE_FILE,
    checkpoint_name,
)
from motif.runs.training import (
    checkpoints,
    complete_adapter,
    is_finite,
    is_number,
    latest_checkpoint,
    load_training_run,
    logged_steps,
    metrics_by_step,
    read_identity,
    read_metrics,
    read_run_config,
    samples_per_step,
    step_seconds,
    training_seconds,
)


def write_metrics(run: Path, lines: list[str]) -> Path:
    run.mkdir(parents=True, exist_ok=True)
    (run / METRICS_FILE).write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return run


def test_metrics_rows_by_step_with_bad_lines_skipped(tmp_path, caplog):
    rows = [
        {"step": 2, "reward": 0.5, "step_seconds": 10.0},
        {"step": 1, "reward": 0.1, "step_seconds": 20.0},
        {"step": 2, "reward": 0.7, "step_seconds": 12.5},  # a resumed run logged step 2 again
        {"step": 3, "loss": 1.0},  # no time logged
        {"step": True, "reward": 9.0},  # a bool is not a step
    ]
    lines = [json.dumps(r) for r in rows] + ["", "not json", '{"reward": 1}', '{"step": 4, "s']
    run = write_metrics(tmp_path / "grpo-s1", lines)
    with caplog.at_level(logging.WARNING):
        read = read_metrics(run)
    assert [(r["step"], r.get("reward")) for r in read] == [(1, 0.1), (2, 0.5), (2, 0.7), (3, None)]
    assert "skipped 4 line(s)" in caplog.text
    assert metrics_by_step(run)[2] == {"step": 2, "reward": 0.7, "step_seconds": 12.5}
    assert step_seconds(run) == {1: 20.0, 2: 12.5}  # the last record of a step wins
    assert logged_steps(run) == 2 and training_seconds(run) == 32.5
    assert load_training_run(run).label == "grpo-s1" and load_training_run(run).rows == read


def test_a_folder_without_metrics_logged_nothing(tmp_path):
    assert read_metrics(tmp_path) == [] and step_seconds(tmp_path) == {}
    assert logged_steps(tmp_path) == 0 and training_seconds(tmp_path) == 0.0


def test_non_finite_values_stay_in_their_rows(tmp_path):
    run = write_metrics(tmp_path / "r", ['{"step": 1, "reward": NaN, "step_seconds": Infinity}'])
    (row,) = read_metrics(run)
    assert math.isnan(row["reward"]) and not is_finite(row["reward"]) and is_number(row["reward"])
    assert step_seconds(run) == {1: math.inf}
    assert is_finite(3) and not is_finite(True) and not is_number("1")


def test_config_identity_and_samples_per_step(tmp_path):
    assert read_run_config(tmp_path) is None and read_identity(tmp_path) is None
    assert samples_per_step(tmp_path) is None
    (tmp_path / TRAIN_CONFIG_FILE).write_text("prompts_per_device: 2\nnum_generations: 8\n")
    assert samples_per_step(tmp_path) == 16
    (tmp_path / TRAIN_CONFIG_FILE).write_text(
        "prompts_per_device: 2\nnum_generations: 8\ngradient_accumulation_steps: 3\n"
    )
    assert read_run_config(tmp_path)["num_generations"] == 8 and samples_per_step(tmp_path) == 48
    (tmp_path / TRAIN_CONFIG_FILE).write_text("")
    assert read_run_config(tmp_path) == {} and samples_per_step(tmp_path) is None
    (tmp_path / TRAIN_CONFIG_FILE).write_text("a: [")
    with pytest.raises(MotifError, match="is not valid YAML"):
        read_run_config(tmp_path)
    (tmp_path / TRAIN_CONFIG_FILE).write_text("- 1\n")
    with pytest.raises(MotifError, match="is not a mapping"):
        read_run_config(tmp_path)
    (tmp_path / IDENTITY_FILE).write_text(json.dumps({"settings": {"lr": 1}, "run": {}}))
    assert read_identity(tmp_path) == {"settings": {"lr": 1}, "run": {}}
    (tmp_path / IDENTITY_FILE).write_text("[]")
    with pytest.raises(MotifError, match="is not a JSON object"):
        read_identity(tmp_path)


def test_checkpoints_complete_ones_by_step(tmp_path, caplog):
    for step, complete in ((10, True), (2, True), (30, False)):
        folder = tmp_path / checkpoint_name(step)
        folder.mkdir()
        if complete:
            (folder / TRAINER_STATE_FILE).write_text("{}")
    (tmp_path / "checkpoint-x").mkdir()
    with caplog.at_level(logging.WARNING):
        found = checkpoints(tmp_path)
    assert list(found) == [2, 10] and found[10] == tmp_path / "checkpoint-10"
    assert "checkpoint-30: incomplete" in caplog.text
    assert latest_checkpoint(tmp_path) == tmp_path / "checkpoint-10"
    assert latest_checkpoint(tmp_path / "checkpoint-2") is None


def test_an_adapter_needs_both_files(tmp_path):
    assert not complete_adapter(tmp_path)
    (tmp_path / ADAPTER_FILES[0]).write_bytes(b"weights")
    assert not complete_adapter(tmp_path)
    (tmp_path / ADAPTER_FILES[1]).write_text("{}")
    assert complete_adapter(tmp_path)
