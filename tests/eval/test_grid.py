"""The equal-budget grid (`motif eval --grid`): spec parsing, refusals before any model loads,
a full small grid on the scripted fake (model loaded once), resume, the equal-budget property
read back from the written numbers, and `motif report` on the grid directory."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from conftest import REPO
from eval_fakes import ARITH
from grid_fakes import HEAD, KEEP, SPEC, grid_run, thinker_loader
from motif.carryover import GridCell
from motif.cli.main import main
from motif.config import GenerationArgs, ModelArgs, ProtocolArgs
from motif.errors import ConfigError
from motif.eval.grid import (
    GRID_FILE,
    GRID_PLOT,
    GRID_TABLE,
    GridArgs,
    GridGroup,
    check_cell_options,
    parse_grid,
    plan_cells,
    run_grid,
)
from motif.eval.runner import EvalArgs
from motif.report import load_runs, write_report


@pytest.fixture(scope="module")
def grid_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("grid") / "g"
    calls: list = []
    doc = grid_run(out, calls)
    return out, doc, calls


# --------------------------------------------------------------------------- spec


@pytest.mark.parametrize(
    ("specs", "groups"),
    [
        (["192=summary:3x64"], [(192, [("summary", 3, 64)])]),
        (
            [" 96 = summary : 3 x 32 , none:1X96 ;"],
            [(96, [("summary", 3, 32), ("none", 1, 96)])],
        ),
        (
            ["64=none:1x64;128=summary:2x64", "128=tail:3x64"],
            [(64, [("none", 1, 64)]), (128, [("summary", 2, 64)]), (128, [("tail", 3, 64)])],
        ),
    ],
)
def test_parse_grid(specs, groups):
    expected = [GridGroup(t, tuple(GridCell(*c) for c in cells)) for t, cells in groups]
    assert parse_grid(specs) == expected


def test_cells_set_rounds_budgets_and_window():
    plans = plan_cells(parse_grid(SPEC), GenerationArgs(temperature=0.5, seed=3), ProtocolArgs(
        tail_head=HEAD, tail_keep=KEEP))  # fmt: skip
    by = {p.label: p for p in plans}
    assert list(by) == [
        "summary-3x16", "tail-5x16", "none-1x48", "summary-6x16", "tail-11x16", "none-1x96"
    ]  # fmt: skip
    tail = by["tail-11x16"]
    assert (tail.proto.carry_over, tail.proto.rounds, tail.proto.tail_chunk) == ("tail", 11, 16)
    assert tail.proto.window().total_budget == 96 == tail.total
    assert (by["summary-6x16"].proto.rounds, by["none-1x96"].proto.rounds) == (6, 1)
    for plan in plans:
        assert plan.gen.max_new_tokens == plan.gen.later_max_new_tokens == plan.cell.budget
        assert (plan.gen.temperature, plan.gen.seed) == (0.5, 3)


# --------------------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    ("grid", "extra", "message"),
    [
        ("48=summary:3-16", [], r"--grid cell 'summary:3-16' is not STRATEGY:NxB"),
        ("48=delete:3x16", [], r"'delete:3x16': strategy must be one of summary, tail, none"),
        ("48=none:2x24", [], r"none:2x24'.*write none:1x48"),
        ("48=summary:0x16", [], r"N and B must be >= 1"),
        ("summary:3x16", [], r"group 'summary:3x16' is not TOTAL=CELL"),
        ("48=", [], r"group '48=' lists no cells"),
        ("48=summary:3x16,summary:3x16", [], r"lists summary:3x16 twice"),
        ("64=summary:3x16", [], r"summary:3x16 totals 48 .* not its group's 64: use summary:4x16"),
        ("50=summary:3x16", [], r"totals 48 .*no round count of 16 tokens totals 50"),
        ("64=none:1x48", [], r"none:1x48 totals 48 .* use none:1x64"),
        (
            "64=tail:5x16",
            [],
            r"tail:5x16 totals 48 new tokens \(16 \+ 4 x 8\), not .* 64: use tail:7x16",
        ),
        ("60=tail:5x16", [], r"no chunk count of C = 16 totals 60"),
        (
            "48=tail:3x16",
            ["--tail-head", "12"],
            r"tail:3x16: the cell's chunk size C \(16\) leaves no room.*\(C = 16, --tail-head 12",
        ),
        (
            "48=tail:3x16",
            ["--tail-keep", "16"],
            r"tail:3x16: --tail-keep \(16\) must be smaller than the cell's chunk size C",
        ),
        ("48=summary:3x16", ["--rounds", "3"], r"--rounds is set by every --grid cell"),
        ("48=summary:3x16", ["--carry-over", "tail"], r"--carry-over is set by every --grid"),
        ("48=summary:3x16", ["--max_new_tokens", "9"], r"--max-new-tokens is set by every"),
        ("48=summary:3x16", ["--tail-chunks", "2"], r"--tail-chunks is set by every"),
        ("48=tail:5x16", ["--early-stop"], r"--grid cell tail:5x16: --early-stop does not"),
        ("48=summary:3x16", ["--samples", "2"], r"--samples 2 needs --temperature"),
    ],
)
def test_bad_grids_are_one_line_errors_before_anything(grid, extra, message, tmp_path, capsys):
    out = tmp_path / "g"
    argv = ["eval", "--benchmark", ARITH, "--output-dir", str(out), "--grid", grid]
    window = {"--tail-head": str(HEAD), "--tail-keep": str(KEEP)}
    window = [x for option, value in window.items() if option not in extra for x in (option, value)]
    assert main([*argv, *window, *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("motif: error: ")
    assert re.search(message, err), err
    assert not out.exists()


def test_cell_options_from_a_config_file_are_refused(tmp_path, capsys):
    config = tmp_path / "grid.yaml"
    config.write_text(f"benchmark: {ARITH}\ngrid: ['48=summary:3x16']\nlater_max_new_tokens: 9\n")
    assert main(["eval", "--config", str(config), "--output-dir", str(tmp_path / "g")]) == 2
    assert "--later-max-new-tokens is set by every --grid cell" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="--tail-chunk is set"):
        check_cell_options({"tail-chunk", "tail-head"})
    check_cell_options({"tail-head", "tail-keep", "limit"})  # window and data options are shared


def test_grid_flags_repeat_and_replace_the_config_file(tmp_path):
    from motif.cli.common import parse

    config = tmp_path / "grid.yaml"
    config.write_text("grid: ['48=summary:3x16', '96=none:1x96']\n")
    (grid,) = parse("t", (GridArgs,), ["--config", str(config)])
    assert grid.grid == ["48=summary:3x16", "96=none:1x96"]
    flags = ["--grid", "8=none:1x8", "--grid", "4=none:1x4;6=none:1x6"]
    (grid,) = parse("t", (GridArgs,), ["--config", str(config), *flags])
    assert grid.grid == ["8=none:1x8", "4=none:1x4;6=none:1x6"]  # repeated; the file's replaced


def test_a_changed_cell_configuration_is_refused_before_any_cell_runs(grid_dir, tmp_path):
    import shutil

    out, _, _ = grid_dir
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    before = {p: p.stat().st_mtime_ns for p in copy.rglob("*") if p.is_file()}
    calls: list = []
    with pytest.raises(ConfigError, match="tail-5x16 holds results of a different configuration"):
        # --tail-keep 4 changes only the tail cells (and their totals: 16 + 4 x 10 = 56)
        grid_run(copy, calls, spec=["48=summary:3x16,none:1x48", "56=tail:5x16"], tail_keep=4)
    assert not calls
    assert {p: p.stat().st_mtime_ns for p in copy.rglob("*") if p.is_file()} == before


# --------------------------------------------------------------------------- a whole grid


def test_grid_writes_json_table_and_plot_loading_the_model_once(grid_dir):
    out, doc, calls = grid_dir
    assert len(calls) == 1
    for name in (GRID_FILE, GRID_TABLE, GRID_PLOT):
        assert (out / name).stat().st_size > 100
    assert (out / GRID_PLOT).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads((out / GRID_FILE).read_text()) == doc
    cells = {c["label"]: c for c in doc["cells"]}
    assert [c["label"] for c in doc["cells"]] == [
        "summary-3x16", "tail-5x16", "none-1x48", "summary-6x16", "tail-11x16", "none-1x96"
    ]  # fmt: skip
    for label in cells:
        assert (out / "cells" / label / "summary.json").is_file()
    # odd sums need 31 tokens in one thought: a 16-token summary round never gets there
    assert cells["summary-3x16"]["accuracy"] == 0.5 and cells["none-1x48"]["accuracy"] == 1.0
    assert cells["tail-5x16"]["accuracy"] == 1.0
    assert cells["tail-5x16"]["window"] == {"head": HEAD, "keep": KEEP}
    assert cells["summary-3x16"]["window"] is None
    assert cells["summary-3x16"]["budget_exhausted_rate"] == 0.5
    assert cells["none-1x96"]["budget_exhausted_rate"] == 0.0
    assert cells["tail-5x16"]["budget_exhausted_rate"] == 0.0  # no thought reached chunk 5
    table = (out / GRID_TABLE).read_text()
    assert "| 48 | tail:5x16 (h 2, m 6) | 100.0 | 100.0 |" in table
    assert "| 48 | summary:3x16 | 50.0 | 50.0 | 26 / 48 |" in table  # 25.5 rounds to even
    assert f"]({GRID_PLOT})" in table


def test_every_cell_keeps_to_its_group_total(grid_dir):
    """The equal-budget property, from the written numbers: no answer generated more than its
    cell's total, the totals of one group are equal, and the carry-over cells kept their
    contexts below the single pass's."""
    out, _, _ = grid_dir
    cells = json.loads((out / GRID_FILE).read_text())["cells"]
    by_total: dict[int, list[dict]] = {}
    for cell in cells:
        by_total.setdefault(cell["total"], []).append(cell)
        assert cell["generated_max"] <= cell["total"]
        summary = json.loads((out / cell["dir"] / "summary.json").read_text())
        assert summary["metrics"]["tokens"]["generated_max"] == cell["generated_max"]
    assert sorted(by_total) == [48, 96] and all(len(v) == 3 for v in by_total.values())
    for total, group in by_total.items():
        # summary rounds never finish the odd problems: they use the whole budget
        assert next(c for c in group if c["strategy"] == "summary")["generated_max"] == total
        single = next(c for c in group if c["strategy"] == "none")
        for cell in group:
            if cell["strategy"] == "tail":
                assert cell["largest_context"] < single["largest_context"] + total
                # the thought part of a tail chunk's context never exceeds C
                rows = (out / cell["dir"] / "samples.jsonl").read_text().splitlines()
                for row in map(json.loads, rows):
                    for r in row["rounds"]:
                        assert r["carried_tokens"] + r["completion_tokens"] <= cell["budget"]


def test_resume_generates_nothing_and_keeps_the_numbers(grid_dir):
    out, doc, _ = grid_dir
    calls: list = []
    again = grid_run(out, calls)
    assert not calls  # nothing left to generate: no model loaded
    strip = ("updated",)
    assert {k: v for k, v in again.items() if k not in strip} == {
        k: v for k, v in doc.items() if k not in strip
    }
    assert all(c["generated_problems"] == 6 for c in again["cells"])


def test_cli_grid_prints_the_table_and_report_renders_it(grid_dir, tmp_path, capsys):
    out, doc, _ = grid_dir
    argv = ["eval", "--benchmark", ARITH, "--output-dir", str(out), "--tail-head", str(HEAD)]
    argv += ["--tail-keep", str(KEEP), "--batch-size", "4"]
    for spec in SPEC:
        argv += ["--grid", spec]
    assert main(argv) == 0  # finished: re-summarised, no model needed
    captured = capsys.readouterr()
    assert "| 96 | none:1x96 | 100.0 |" in captured.out
    assert f"{out}/{GRID_PLOT}" in captured.err and "motif report" in captured.err
    report = tmp_path / "rep" / "report.md"
    assert main(["report", str(out), "--output", str(report)]) == 0
    text = report.read_text()
    assert "## Equal-budget grid: eval_arith" in text and "| 48 | summary:3x16 |" in text
    assert (report.parent / "report_grid.png").read_bytes()[:4] == b"\x89PNG"
    assert "3 rounds [summary-3x16]" in text  # the cells' per-round details too
    evals, _ = load_runs([out.parent])  # a parent of the grid directory is searched too
    assert len(evals) == len(doc["cells"])
    assert "## Equal-budget grid" in write_report([out.parent], tmp_path / "p.md").read_text()


def _copy(grid_dir, tmp_path) -> Path:
    import shutil

    out, _, _ = grid_dir
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    return copy


def _measured(doc: dict) -> dict:
    return {c["label"]: (c["generation_seconds"], c["generated_problems"]) for c in doc["cells"]}


def test_a_grid_rerun_with_fewer_cells_keeps_the_others(grid_dir, tmp_path, caplog):
    """Issue 31: a subset re-run keeps every earlier cell (marked kept) with what it measured,
    and the full grid run after it shows each cell's first wall-clock, never 0.0 s."""
    import logging

    _, first, _ = grid_dir
    copy = _copy(grid_dir, tmp_path)
    calls: list = []
    doc = grid_run(copy, calls, spec=["48=summary:3x16,none:1x48"])  # both cells finished
    assert not calls and _measured(doc) == _measured(first)
    assert all(n == 6 for _, n in _measured(doc).values())
    assert [c["label"] for c in doc["cells"]] == [
        "summary-3x16", "none-1x48", "tail-5x16", "summary-6x16", "tail-11x16", "none-1x96"
    ]  # fmt: skip
    kept = {c["label"] for c in doc["cells"] if c.get("kept")}
    assert kept == {"tail-5x16", "summary-6x16", "tail-11x16", "none-1x96"}
    assert json.loads((copy / GRID_FILE).read_text()) == doc
    table = (copy / GRID_TABLE).read_text()
    assert "| 96 | tail:11x16 (h 2, m 6) * | 100.0 |" in table and "kept from an earlier" in table
    assert len(re.findall(r"^\| \d+ \|", table, re.M)) == 6
    with caplog.at_level(logging.WARNING, logger="motif.report"):
        evals, _ = load_runs([copy])
    assert len(evals) == 6 and "not in" not in caplog.text
    again = grid_run(copy, calls, spec=SPEC)
    assert not calls and _measured(again) == _measured(first)
    assert not any(c.get("kept") for c in again["cells"])


def test_a_full_rerun_restores_cells_an_older_subset_run_dropped(grid_dir, tmp_path):
    """A grid directory left by the old code: the subset run's cells' summaries say 0.0 s and
    grid.json lists only them. The full re-run reads each cell's time back (the subset cells'
    from grid.json, the dropped cells' from their own summary.json): none shows 0.0 s."""
    _, first, _ = grid_dir
    copy = _copy(grid_dir, tmp_path)
    doc = json.loads((copy / GRID_FILE).read_text())
    doc["cells"] = [c for c in doc["cells"] if c["label"] in ("summary-3x16", "none-1x48")]
    (copy / GRID_FILE).write_text(json.dumps(doc))
    measured = _measured(first)
    for path in (copy / "cells").glob("*/summary.json"):
        summary = json.loads(path.read_text())
        del summary["measured"]  # written before it existed: the last run's figures only
        seconds, problems = measured[path.parent.name]
        if path.parent.name in ("summary-3x16", "none-1x48"):  # re-summarised, nothing generated
            seconds, problems = 0.0, 0
        summary["run"].update(generation_seconds=seconds, generated_problems=problems)
        path.write_text(json.dumps(summary))
    calls: list = []
    again = grid_run(copy, calls)
    assert not calls and _measured(again) == _measured(first)


def test_a_kept_cell_of_another_configuration_is_refused_before_anything(grid_dir, tmp_path):
    copy = _copy(grid_dir, tmp_path)
    before = {p: p.stat().st_mtime_ns for p in copy.rglob("*") if p.is_file()}
    calls: list = []
    args = EvalArgs(benchmark=ARITH, output_dir=str(copy), batch_size=4)
    protocol = ProtocolArgs(tail_head=HEAD, tail_keep=KEEP)
    with pytest.raises(ConfigError) as info:  # a new cell, sampled with another seed
        run_grid(
            args, GridArgs(grid=["48=summary:2x24"]), ModelArgs(), GenerationArgs(seed=5),
            protocol, backend_loader=thinker_loader(calls),
        )  # fmt: skip
    message = str(info.value)
    assert f"{copy / GRID_FILE} keeps cell summary:3x16 of an earlier run" in message
    assert "sampling.seed: null -> 5" in message and "pass another --output-dir" in message
    assert not calls and "\n" not in message
    assert {p: p.stat().st_mtime_ns for p in copy.rglob("*") if p.is_file()} == before


def test_a_kept_cell_whose_directory_was_removed_is_dropped(grid_dir, tmp_path, caplog):
    import logging
    import shutil

    copy = _copy(grid_dir, tmp_path)
    shutil.rmtree(copy / "cells" / "tail-11x16")
    with caplog.at_level(logging.WARNING, logger="motif.eval"):
        doc = grid_run(copy, [], spec=["48=summary:3x16"])
    assert "tail-11x16" not in {c["label"] for c in doc["cells"]} and len(doc["cells"]) == 5
    assert "cell tail-11x16 has no results left; dropped" in caplog.text


def test_cells_over_another_problem_count_are_marked(grid_dir, tmp_path):
    _, first, _ = grid_dir
    copy = _copy(grid_dir, tmp_path)
    args = EvalArgs(benchmark=ARITH, output_dir=str(copy), batch_size=4, limit=2)
    protocol = ProtocolArgs(tail_head=HEAD, tail_keep=KEEP)
    doc = run_grid(
        args, GridArgs(grid=["48=summary:3x16"]), ModelArgs(), GenerationArgs(), protocol,
        backend_loader=thinker_loader([]),
    )  # fmt: skip
    summary = next(c for c in doc["cells"] if c["label"] == "summary-3x16")
    assert summary["problems"] == 2  # what the first run measured for all 6 stays
    assert _measured({"cells": [summary]}) == {"summary-3x16": _measured(first)["summary-3x16"]}
    table = (copy / GRID_TABLE).read_text()
    assert "6 problems" in table and "| 48 | summary:3x16 | 0.0 (n=2) |" in table


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("²=none:1x2", "--grid group '²=none:1x2': TOTAL '²' is not a token count >= 1"),
        ("2=none:1x²", "--grid cell 'none:1x²' is not STRATEGY:NxB with N and B whole numbers"),
        ("３=none:1x3", "TOTAL '３' is not a token count >= 1 in digits 0-9"),
        ("3=none:1x٣", "--grid cell 'none:1x٣' is not STRATEGY:NxB"),
    ],
)
def test_counts_are_ascii_digits(spec, message, capsys):
    """`str.isdigit()` is true for '²' (int() then fails) and a Unicode \\d takes '٣'."""
    with pytest.raises(ConfigError, match=re.escape(message)):
        parse_grid([spec])
    assert main(["eval", "--benchmark", ARITH, "--grid", spec]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_the_cpu_recipe_is_a_valid_grid():
    from motif.backends.vllm_options import VllmArgs
    from motif.cli.common import parse

    recipe = REPO / "recipes" / "grid_smollm2_cpu.yaml"
    types = (EvalArgs, ModelArgs, GenerationArgs, ProtocolArgs, VllmArgs, GridArgs)
    args, _, gen, proto, _, grid = parse("motif eval", types, ["--config", str(recipe)])
    plans = plan_cells(parse_grid(grid.grid), gen, proto)
    assert [(p.label, p.total) for p in plans] == [
        ("summary-2x64", 128), ("tail-3x64", 128), ("none-1x128", 128),
        ("summary-4x64", 256), ("tail-7x64", 256), ("none-1x256", 256),
    ]  # fmt: skip
    assert args.benchmark == "gsm8k" and args.limit == 50
