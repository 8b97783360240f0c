"""`make demo` (studies.demo): its commands, in order, and its last table from real grids."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from grid_fakes import grid_run
from studies import demo as demo_module

ROOT = Path(__file__).parents[2]


@pytest.fixture(scope="module")
def demo():
    return demo_module


@pytest.fixture(scope="module")
def grid(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo-grid") / "g"
    grid_run(out, [])
    return out


def test_last_table_has_a_row_per_strategy_from_grid_json(demo, grid):
    doc = json.loads((grid / "grid.json").read_text())
    lines = demo.table({"m": grid, "n": grid}).splitlines()
    assert len(lines) == 2 + 2 * len(doc["cells"])
    for cell in doc["cells"]:
        shown = f"| m | {demo.NAMES[cell['strategy']]} | {cell['rounds']} x {cell['budget']} "
        shown += f"| {cell['accuracy']:.1%} | {cell['answered']:.1%} |"
        assert any(line.startswith(shown) for line in lines), shown


def test_example_shows_what_each_cell_answered(demo, grid):
    doc = json.loads((grid / "grid.json").read_text())
    lines = demo.example(grid, item=1)
    assert len(lines) == 1 + len(doc["cells"])
    for cell, line in zip(sorted(doc["cells"], key=lambda c: c["total"]), lines[1:], strict=True):
        rows = (grid / cell["dir"] / "samples.jsonl").read_text().splitlines()
        row = json.loads(rows[1])
        assert (
            line.split(":", 1)[0].strip()
            == f"{demo.NAMES[cell['strategy']]} {cell['rounds']} x {cell['budget']}"
        )
        assert f"{row['generated_tokens']} tokens" in line
        assert ("right" if row["correct"] else "wrong") in line
    assert lines[0].startswith(json.loads(rows[1])["question"])


def test_demo_runs_cold_start_motif_then_a_grid_per_model(
    demo, grid, tmp_path, monkeypatch, capsys
):
    calls = []

    def motif(argv):
        calls.append(argv)
        if argv[0] == "eval":
            shutil.copytree(grid, argv[argv.index("--output-dir") + 1])
        return 0

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(demo, "motif", motif)
    demo.main()
    assert [argv[0] for argv in calls] == ["sft", "train", "eval", "eval", "eval"]
    assert calls[0][:3] == ["sft", "--config", demo.SFT_RECIPE]
    assert calls[1][calls[1].index("--init-adapter") + 1] == f"{demo.OUT}/sft"
    adapters = [a[a.index("--adapter") + 1] if "--adapter" in a else None for a in calls[2:]]
    assert adapters == [None, f"{demo.OUT}/sft", f"{demo.OUT}/motif"]
    out = capsys.readouterr().out
    cells = len(json.loads((grid / "grid.json").read_text())["cells"])
    assert out.count("| base |") == out.count("| cold start |") == out.count("| MOTIF |") == cells
    assert "One held-out item, MOTIF adapter:" in out


def test_demo_recipes_are_the_grids_shapes(demo):
    """The cold start demonstrates the formats the grid compares, in its window and budget."""
    import yaml

    sft = yaml.safe_load((ROOT / demo.SFT_RECIPE).read_text())
    train = yaml.safe_load((ROOT / demo.TRAIN_RECIPE).read_text())
    grid = " ".join(demo.GRID)
    assert sft["extra_carry_over"] == ["tail"] and sft["rounds"] == train["rounds"] == 3
    assert sft["eval_max_new_tokens"] == train["max_completion_length"] == demo.B
    assert (
        f"summary:3x{demo.B}" in grid and f"tail:{sft['tail_chunks']}x{sft['tail_chunk']}" in grid
    )
    assert demo.GRID[demo.GRID.index("--tail-keep") + 1] == str(sft["tail_keep"])
    assert demo.GRID[demo.GRID.index("--tail-head") + 1] == str(sft["tail_head"])
    assert sft["task_config"]["max_terms"] == train["task_config"]["max_terms"] == 8
