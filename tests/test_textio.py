"""Input text read one way everywhere: BOM removed, newlines only, bad bytes named by file and
line (issue 14, items 9-11, and the same faults in every other reader)."""

from __future__ import annotations

import codecs
import json

import pytest

from motif.cli.infer import read_questions
from motif.cli.main import main
from motif.data import load_problems
from motif.errors import MotifError
from motif.textio import iter_lines, read_text

BOM = codecs.BOM_UTF8


@pytest.mark.parametrize(
    ("data", "lines"),
    [
        (BOM + b"What is 1?\nWhat is 2?\n", ["What is 1?", "What is 2?"]),  # item 9
        ("A\u2028B?\nC?".encode(), ["A\u2028B?", "C?"]),  # item 10
        ("A\u0085B\x0cC\x1cD\nE".encode(), ["A\u0085B\x0cC\x1cD", "E"]),
        (b"one\r\ntwo\r\n", ["one", "two"]),
        (b"no final newline", ["no final newline"]),
        (b"", []),
        (b"a\n\nb\n", ["a", "", "b"]),
    ],
)
def test_iter_lines(tmp_path, data, lines):
    path = tmp_path / "f.txt"
    path.write_bytes(data)
    assert [text for _, text in iter_lines(path)] == lines


def test_a_bad_byte_names_file_line_and_column(tmp_path):
    path = tmp_path / "f.txt"
    path.write_bytes(b"fine\nalso fine\nbad \xff here\n")
    with pytest.raises(MotifError, match=r"f\.txt line 3 is not UTF-8 \(byte 0xff at column 5\)"):
        list(iter_lines(path))


def test_infer_file_with_bom_and_line_separator(tmp_path):
    path = tmp_path / "q.txt"
    path.write_bytes(BOM + "What is 2 + 2?\nSplit\u2028here?\n\n".encode())
    assert read_questions(None, str(path)) == ["What is 2 + 2?", "Split\u2028here?"]


def test_infer_file_bad_byte(tmp_path, capsys):
    path = tmp_path / "q.txt"
    path.write_bytes(b"ok\n\xc3\x28\n")
    assert main(["infer", "--file", str(path)]) == 2
    assert "q.txt line 2 is not UTF-8" in capsys.readouterr().err


def test_eval_benchmark_with_a_bad_byte_names_file_and_line(tmp_path, capsys):
    path = tmp_path / "bad.jsonl"
    path.write_bytes(b'{"question": "1+1?", "answer": "2"}\n{"question": "\xe9?", "answer": "3"}\n')
    assert main(["eval", "--benchmark", str(path), "--output-dir", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "bad.jsonl line 2 is not UTF-8" in err and err.count("\n") == 1
    assert not (tmp_path / "o").exists()


def test_jsonl_with_bom_crlf_and_separator_in_a_question(tmp_path):
    path = tmp_path / "set.jsonl"
    rows = [{"question": "a\u2028b?", "answer": "1"}, {"question": "c?", "answer": "2"}]
    text = "\r\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\r\n"
    path.write_bytes(BOM + text.encode())
    problems = load_problems(str(path))
    assert [p.question for p in problems] == ["a\u2028b?", "c?"]


def test_json_file_with_bom_and_bad_byte(tmp_path):
    good = tmp_path / "set.json"
    good.write_bytes(BOM + b'[{"question": "q?", "answer": "1"}]')
    assert load_problems(str(good))[0].question == "q?"
    bad = tmp_path / "bad.json"
    bad.write_bytes(b'[\n{"question": "q\xff?", "answer": "1"}]')
    with pytest.raises(MotifError, match=r"bad\.json line 2 is not UTF-8"):
        load_problems(str(bad))


def test_yaml_config_with_bom_and_bad_byte(tmp_path, capsys):
    from motif.cli.train import parse_config

    recipe = tmp_path / "r.yaml"
    recipe.write_bytes(BOM + b"max_steps: 3\r\n")
    assert parse_config(["--config", str(recipe)]).optim.max_steps == 3
    recipe.write_bytes(b"max_steps: 3\n# caf\xe9\n")
    assert main(["train", "--config", str(recipe), "--dry-run"]) == 2
    assert "r.yaml line 2 is not UTF-8" in capsys.readouterr().err


def test_read_text_joins_lines_with_newlines(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(BOM + b"a\r\nb\n")
    assert read_text(path) == "a\nb"


def test_clip_never_splits_a_character():
    from motif.textio import clip, clip_middle

    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"  # one grapheme, five code points
    text = "ab" + family + "e\u0301" + "cd"
    assert clip(text, 3) == "ab" + family + "…"
    assert clip(text, 4) == "ab" + family + "e\u0301…"
    assert clip(text, 10) == text
    long = family * 40
    short = clip_middle(long, 3)
    assert short == family * 3 + "..." + family * 3
    assert clip_middle("x" * 50, 28) == "x" * 50
    assert short.encode("utf-8").decode("utf-8") == short  # no lone surrogate
