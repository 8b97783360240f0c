"""Problem sets: named benchmarks from a local directory, files with a field mapping,
reasoning-gym tasks, fingerprints, and every bad-input error."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from conftest import FIXTURES
from motif import data as data_mod
from motif.data import KNOWN_BENCHMARKS, display_name, fingerprint, load_problems, slug
from motif.errors import ConfigError, MotifError

FIXTURES = FIXTURES
DATA_DIR = FIXTURES / "eval_data"


def write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture
def offline(monkeypatch):
    monkeypatch.setattr("motif.models.hub_reachable", lambda timeout=2.0: False)
    monkeypatch.delenv(data_mod.DATA_DIR_ENV, raising=False)


@pytest.mark.parametrize(
    ("name", "first_id", "golds"),
    [
        ("gsm8k", "0", ["18", "3", "70000", "2125"]),  # "#### 1,234"-style golds normalised
        ("math500", "test/precalculus/807.json", None),
        ("aime24", "67", ["25", "73", "204", "113"]),  # leading zeros dropped
        ("amc23", "0", ["27", "36", "45"]),  # floats 27.0 -> "27"
    ],
)
def test_named_benchmarks_from_data_dir(name, first_id, golds):
    problems = load_problems(name, data_dir=str(DATA_DIR))
    assert problems[0].id == first_id
    assert all(p.question and p.gold for p in problems)
    if golds is not None:
        assert [p.gold for p in problems] == golds
    assert len({p.id for p in problems}) == len(problems)


def test_math500_keeps_latex_gold_and_meta():
    p = load_problems("math500", data_dir=str(DATA_DIR))[0]
    assert p.gold == r"\left( 3, \frac{\pi}{2} \right)"
    assert p.meta["subject"] == "Precalculus" and p.meta["level"] == 2
    assert "problem" not in p.meta and "answer" not in p.meta


def test_env_var_data_dir_and_limit(monkeypatch):
    monkeypatch.setenv(data_mod.DATA_DIR_ENV, str(DATA_DIR))
    problems = load_problems("gsm8k", limit=2)
    assert [p.gold for p in problems] == ["18", "3"]


def test_offline_without_local_copy_says_where_to_put_files(offline):
    with pytest.raises(MotifError, match=r"math500_test\.jsonl.*--data-dir"):
        load_problems("math500")


def test_explicit_data_dir_without_the_file(tmp_path):
    with pytest.raises(MotifError, match=r"has no amc23_test\.jsonl"):
        load_problems("amc23", data_dir=str(tmp_path))


def test_split_selects_the_local_file(tmp_path):
    write_jsonl(tmp_path / "gsm8k_train.jsonl", [{"question": "Q?", "answer": "x #### 5"}])
    assert load_problems("gsm8k", split="train", data_dir=str(tmp_path))[0].gold == "5"
    assert load_problems("gsm8k_train", data_dir=str(tmp_path))[0].gold == "5"


def test_unknown_benchmark_lists_known_ones():
    with pytest.raises(ConfigError) as err:
        load_problems("math5000")
    for name in ("gsm8k", "math500", "aime24", "amc23"):
        assert name in str(err.value)


def test_local_jsonl_with_field_mapping():
    problems = load_problems(
        str(FIXTURES / "eval_mapped.jsonl"), question_field="prompt", answer_field="target"
    )
    assert [p.question for p in problems][:2] == ["Compute 1 * 3.", "Compute 2 * 3."]
    assert [p.gold for p in problems] == ["3", "6", "3000"]
    assert [p.id for p in problems] == ["0", "1", "2"]
    assert problems[0].meta["uid"] == "p1" and problems[0].meta["difficulty"] == "easy"


def test_default_fields_and_own_ids(tmp_path):
    path = write_jsonl(
        tmp_path / "set.jsonl",
        [{"id": "a", "problem": "P1", "answer": 1}, {"id": "b", "problem": "P2", "answer": 2.0}],
    )
    problems = load_problems(str(path))
    assert [(p.id, p.question, p.gold) for p in problems] == [("a", "P1", "1"), ("b", "P2", "2")]


def test_duplicate_ids_fall_back_to_row_numbers(tmp_path):
    path = write_jsonl(
        tmp_path / "d.jsonl", [{"id": 1, "question": f"Q{i}", "answer": "1"} for i in range(2)]
    )
    assert [p.id for p in load_problems(str(path))] == ["0", "1"]


def test_json_and_parquet_files(tmp_path):
    rows = [{"question": "Q1", "answer": "1"}, {"question": "Q2", "answer": "2"}]
    (tmp_path / "s.json").write_text(json.dumps(rows), encoding="utf-8")
    assert [p.gold for p in load_problems(str(tmp_path / "s.json"))] == ["1", "2"]
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "s.parquet")
    assert [p.question for p in load_problems(str(tmp_path / "s.parquet"))] == ["Q1", "Q2"]


def test_broken_line_names_file_and_line(tmp_path):
    path = tmp_path / "broken.jsonl"
    path.write_text(
        '{"question": "Q", "answer": "1"}\n\n{"question": "Q2", "answ\n', encoding="utf-8"
    )
    with pytest.raises(MotifError, match=r"broken\.jsonl line 3 is not valid JSON"):
        load_problems(str(path))


def test_missing_fields_are_named(tmp_path):
    path = write_jsonl(tmp_path / "f.jsonl", [{"prompt": "Q", "solution": "1"}])
    with pytest.raises(MotifError) as err:
        load_problems(str(path))
    message = str(err.value)
    assert "f.jsonl" in message and "question/problem" in message and "answer" in message
    with pytest.raises(MotifError, match="no field target"):
        load_problems(str(path), question_field="prompt", answer_field="target")


def test_row_without_gold_errors_or_is_skipped(tmp_path, caplog):
    path = write_jsonl(
        tmp_path / "g.jsonl",
        [
            {"question": "Q1", "answer": "1"},
            {"question": "Q2", "answer": ""},
            {"question": " ", "answer": "3"},
            {"question": "Q4", "answer": "4"},
        ],
    )
    with pytest.raises(MotifError, match=r"g\.jsonl row 2 has no gold answer"):
        load_problems(str(path))
    with caplog.at_level(logging.WARNING, logger="motif.data"):
        problems = load_problems(str(path), skip_bad_rows=True)
    assert [(p.id, p.gold) for p in problems] == [("0", "1"), ("3", "4")]
    assert "skipped 2 bad row(s)" in caplog.text


def test_missing_file_and_empty_file(tmp_path):
    with pytest.raises(MotifError, match="does not exist"):
        load_problems(str(tmp_path / "nope.jsonl"))
    (tmp_path / "empty.jsonl").write_text("\n", encoding="utf-8")
    with pytest.raises(MotifError, match="holds no problem"):
        load_problems(str(tmp_path / "empty.jsonl"))


def test_reasoning_gym_task():
    problems = load_problems("reasoning_gym:chain_sum", task_config={"size": 5}, seed=3)
    again = load_problems("reasoning_gym:chain_sum", task_config={"size": 5}, seed=3, limit=2)
    assert len(problems) == 5 and [p.id for p in problems] == ["0", "1", "2", "3", "4"]
    assert [(p.question, p.gold) for p in problems[:2]] == [(p.question, p.gold) for p in again]
    assert all(p.gold.lstrip("-").isdigit() for p in problems)


def test_reasoning_gym_errors():
    with pytest.raises(ConfigError, match="not registered"):
        load_problems("reasoning_gym:no_such_task")
    with pytest.raises(ConfigError, match="rejects its config"):
        load_problems("reasoning_gym:chain_sum", task_config={"bogus": 1, "size": 2})


def test_fingerprint_tracks_ids_questions_golds():
    problems = load_problems("gsm8k", data_dir=str(DATA_DIR))
    fp = fingerprint(problems)
    assert fp == fingerprint(load_problems("gsm8k", data_dir=str(DATA_DIR)))
    assert len(fp) == 64
    problems[0].gold = "19"
    assert fingerprint(problems) != fp


def test_names_and_slugs():
    assert set(KNOWN_BENCHMARKS) >= {"gsm8k", "gsm8k_train", "math500", "aime24", "amc23"}
    assert display_name("math500") == "MATH500" and display_name("aime24") == "AIME2024"
    assert display_name("reasoning_gym:chain_sum") == "chain_sum"
    assert display_name("some/dir/my_set.jsonl") == "my_set"
    assert slug("reasoning_gym:chain_sum") == "rg-chain_sum" and slug("x/y/z.jsonl") == "z"
