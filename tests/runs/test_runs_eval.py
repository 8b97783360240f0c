"""motif.runs.eval: the one reader of an eval folder (identity, summary, rows, grid cells)."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import pytest

from motif.errors import ConfigError, MotifError
from motif.eval.store import ResultStore
from motif.runs.eval import (
    entry_dir,
    find_grids,
    grid_cells,
    open_eval_folder,
    read_config,
    read_grid,
    read_json,
    read_samples,
    read_summary,
)
from motif.runs.layout import EVAL_CONFIG_FILE, GRID_FILE, SAMPLES_FILE, SUMMARY_FILE

CONFIG = {"sampling": {"samples": 1}, "data": {"benchmark": "hand-written"}}


def row(item: str, sample: int = 0, correct: bool | None = True) -> dict:
    """A sample row as ``motif eval`` writes it (the keys readers need)."""
    return {"id": item, "sample": sample, "correct": correct, "rounds": [{"text": "t"}]}


def eval_folder(path: Path, rows: list[dict], summary: dict | None = None) -> Path:
    """An eval folder written through the store (marker, identity, rows, summary)."""
    store = ResultStore(path, CONFIG, samples=1)
    store.append(rows)
    if summary is not None:
        store.write_summary(summary)
    return path


def test_rows_keep_first_copies_and_name_every_skipped_line(tmp_path):
    folder = eval_folder(tmp_path / "run", [row("0"), row("1", correct=False)])
    good = (folder / SAMPLES_FILE).read_text(encoding="utf-8").splitlines(keepends=True)
    torn = json.dumps(row("2"))[:-5]  # a run killed mid-write: no newline
    lines = [good[0], "\n", "not json\n", '{"id": "x"}\n', good[0], good[1], torn]
    (folder / SAMPLES_FILE).write_text("".join(lines), encoding="utf-8")
    read = read_samples(folder)
    assert [(r["id"], r["correct"]) for r in read.rows] == [("0", True), ("1", False)]
    assert read.skipped == [
        (3, "not JSON"),
        (4, "not a sample row (needs id, sample, rounds, correct)"),
        (5, "duplicate (problem, sample)"),
        (7, "not JSON (cut off)"),
    ]
    assert (folder / SAMPLES_FILE).read_text(encoding="utf-8") == "".join(lines)  # untouched


def test_an_id_and_its_string_are_one_problem(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    rows = [{**row("1"), "id": 1}, row("1"), row("1", sample=1)]
    (folder / SAMPLES_FILE).write_text("".join(json.dumps(r) + "\n" for r in rows))
    read = read_samples(folder)
    assert [(r["id"], r["sample"]) for r in read.rows] == [(1, 0), ("1", 1)]
    assert read.skipped == [(2, "duplicate (problem, sample)")]


def test_a_check_refuses_rows_with_its_reason(tmp_path):
    folder = eval_folder(tmp_path / "run", [row("0"), {**row("1"), "rounds": []}])
    read = read_samples(folder, lambda r: "" if r["rounds"] else "no rounds")
    assert [r["id"] for r in read.rows] == ["0"] and read.skipped == [(2, "no rounds")]


def test_config_comes_from_the_identity_file_else_the_summary(tmp_path):
    folder = eval_folder(tmp_path / "run", [row("0")], {"label": "L", "config": {"old": 1}})
    assert read_config(folder) == CONFIG and read_summary(folder)["label"] == "L"
    (folder / EVAL_CONFIG_FILE).unlink()
    assert read_config(folder) == {"old": 1}
    (folder / SUMMARY_FILE).unlink()
    assert read_config(folder) is None and read_summary(folder) is None


@pytest.mark.parametrize(
    ("text", "message"),
    [("{not json", "is not valid JSON"), ("[1, 2]", "is not a JSON object")],
)
def test_a_broken_json_file_is_one_line_naming_it(tmp_path, text, message):
    path = tmp_path / SUMMARY_FILE
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=re.escape(f"{path} {message}")) as info:
        read_json(path)
    assert "\n" not in str(info.value)
    assert read_json(tmp_path / "missing.json") is None


def test_open_refuses_what_is_not_an_eval_folder(tmp_path):
    with pytest.raises(ConfigError, match="nope is not a directory"):
        open_eval_folder(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match=re.escape("is not an eval run (no samples.jsonl)")):
        open_eval_folder(tmp_path / "empty")
    eval_folder(tmp_path / "grid" / "cells" / "none-1x8", [row("0")])
    with pytest.raises(ConfigError, match="is an equal-budget grid, not an eval run") as info:
        open_eval_folder(tmp_path / "grid")
    assert "(cells: none-1x8)" in str(info.value)
    folder = open_eval_folder(eval_folder(tmp_path / "run", [row("0")], {"label": "L"}))
    assert folder.config == CONFIG and folder.summary["label"] == "L"


def test_grid_cells_in_grid_order_and_unlisted_ones_skipped(tmp_path, caplog):
    grid = tmp_path / "grid"
    for name in ("a", "b", "stray"):
        (grid / "cells" / name).mkdir(parents=True)
    cells = [{"label": "b"}, {"label": "a", "dir": "cells/a"}, "not an entry"]
    (grid / GRID_FILE).write_text(json.dumps({"cells": cells}))
    with caplog.at_level(logging.WARNING):
        assert grid_cells(grid) == [grid / "cells" / "b", grid / "cells" / "a"]
    assert "stray: not in" in caplog.text
    assert entry_dir({"label": "b"}) == "cells/b"
    assert find_grids([tmp_path, grid]) == [grid]
    assert read_grid(tmp_path) == {}
    (grid / GRID_FILE).write_text('{"cells": 1}')
    with pytest.raises(MotifError, match="is not a motif grid"):
        read_grid(grid)
