"""`motif infer` end to end on a tiny local checkpoint, and its one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import REPO
from motif.cli.main import main


def run_cli(capsys, *args):
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_infer_json_three_rounds(capsys, tiny_checkpoint):
    code, out, err = run_cli(
        capsys,
        "infer",
        "What is 12 + 30?",
        "--model",
        str(tiny_checkpoint),
        "--rounds",
        "3",
        "--max-new-tokens",
        "6",
        "--json",
        "--tail-head",
        "8",
    )
    assert code == 0, err
    assert "note: --tail-head 8: not used (--tail-* apply to --carry-over tail" in err
    record = json.loads(out.strip().splitlines()[0])
    assert record["question"] == "What is 12 + 30?"
    assert [r["round"] for r in record["rounds"]] == [1, 2, 3]
    for r in record["rounds"]:
        assert {"reasoning", "answer", "completion_tokens", "truncated"} <= set(r)
        assert 0 < r["completion_tokens"] <= 6
    assert "final_answer" in record


def test_infer_model_ended_rounds(capsys, tiny_checkpoint):
    """Rounds the model ends itself: at most phi rounds, each within its cap; the record says
    the model ended its rounds."""
    code, out, err = run_cli(
        capsys,
        "infer",
        "What is 12 + 30?",
        "--model",
        str(tiny_checkpoint),
        "--round-end",
        "model",
        "--max-rounds",
        "2",
        "--max-new-tokens",
        "32",
        "--json",
    )
    assert code == 0, err
    record = json.loads(out.strip().splitlines()[0])
    assert record["round_end"] == "model" and record["carry_over"] == "summary"
    rounds = record["rounds"]
    assert 1 <= len(rounds) <= 2
    assert all(0 < r["completion_tokens"] <= 32 for r in rounds)
    # round 2 runs unless round 1 concluded (a boxed answer)
    assert record["stopped_early"] == (len(rounds) == 1)
    if len(rounds) == 1:
        assert "\\boxed" in rounds[0]["answer"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--round-end", "model", "--max-rounds", "0"], "--max-rounds must be >= 1"),
        (
            ["--round-end", "model", "--max-new-tokens", "8"],
            "--max-new-tokens 8 is a per-round cap",
        ),
        (["--round-end", "model", "--carry-over", "tail"], "--round-end model applies to"),
        (["--round-end", "model", "--rounds", "4"], "use --max-rounds 4"),
    ],
)
def test_model_ended_bad_input_is_one_line_before_any_model_loads(capsys, args, message):
    code, out, err = run_cli(capsys, "infer", "q", "--model", "/does/not/exist", *args)
    assert code == 2
    assert message in err and "does not exist" not in err  # refused before the model is read
    assert len(err.strip().splitlines()) == 1


def test_infer_file_and_underscore_spelling(capsys, tiny_checkpoint, tmp_path):
    qfile = tmp_path / "q.txt"
    qfile.write_text("First?\n\nSecond?\n")
    code, out, err = run_cli(
        capsys,
        "infer",
        "--file",
        str(qfile),
        "--model",
        str(tiny_checkpoint),
        "--rounds",
        "2",
        "--max_new_tokens",
        "4",
        "--temperature",
        "0.7",
        "--seed",
        "3",
        "--json",
    )
    assert code == 0, err
    records = [json.loads(line) for line in out.strip().splitlines()]
    assert [r["question"] for r in records] == ["First?", "Second?"]


def test_infer_config_file(capsys, tiny_checkpoint, tmp_path):
    cfg = tmp_path / "infer.yaml"
    cfg.write_text(f"model: {tiny_checkpoint}\nrounds: 2\nmax_new_tokens: 3\n")
    code, out, err = run_cli(capsys, "infer", "Q?", "--config", str(cfg))
    assert code == 0, err
    assert "--- Round 2" in out and "Final answer:" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["infer", ""], "question is empty"),
        (["infer", "q", "--rounds", "0"], "--rounds must be >= 1"),
        (["infer", "q", "--model", "/does/not/exist"], "does not exist"),
        (["infer", "q", "--model", "nobody/no-such-model"], "offline"),
        (
            ["infer", "q", "--adapter", "/no/adapter"],
            "adapter directory /no/adapter does not exist",
        ),
        (["infer", "--file", "/no/file.txt"], "--file /no/file.txt does not exist"),
        (["infer", "q", "--top-p", "1.5"], "--top-p"),
        (["infer", "q", "--bogus-flag", "1"], "unknown option"),
        (["infer", "q", "--config", "/no/cfg.yaml"], "config file /no/cfg.yaml does not exist"),
        (["nonsense"], "unknown command"),
    ],
)
def test_bad_input_is_one_line_exit_2(capsys, args, message):
    code, out, err = run_cli(capsys, *args)
    assert code == 2
    assert message in err
    assert "Traceback" not in err and len(err.strip().splitlines()) >= 1


def test_adapter_that_does_not_match_the_model(capsys, tiny_checkpoint, tmp_path, tokenizer):
    from peft import LoraConfig, get_peft_model

    from conftest import build_tiny_model

    other = build_tiny_model(tokenizer, hidden=32)
    adapter = tmp_path / "adapter"
    get_peft_model(other, LoraConfig(r=2, target_modules=["q_proj"])).save_pretrained(adapter)
    code, _, err = run_cli(
        capsys, "infer", "q", "--model", str(tiny_checkpoint), "--adapter", str(adapter)
    )
    assert code == 2 and "does not match model" in err


def test_help_is_fast_and_imports_nothing_heavy():
    code = (
        "import sys, motif.cli.main as m; m.main(['--help']); "
        "print('HEAVY' if {'torch','transformers','trl'} & set(sys.modules) else 'LIGHT')"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "infer" in out.stdout and out.stdout.strip().endswith("LIGHT")


@pytest.mark.slow
def test_infer_default_model_json():
    """The issue's done-when command on the embedded default model."""
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "motif.cli.main",
            "infer",
            "What is 12 + 30?",
            "--rounds",
            "3",
            "--max-new-tokens",
            "48",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    record = json.loads(out.stdout)
    assert len(record["rounds"]) == 3


@pytest.mark.parametrize(
    "argv",
    [
        ["infer", "Q", "--tail-chunk", "1.5"],
        ["eval", "--benchmark", "gsm8k", "--samples", "two"],
        ["train", "--rounds"],
    ],
)
def test_argparse_errors_are_one_line(argv, capsys):
    from motif.cli.main import main

    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("motif: error: argument --")
    assert "--help" in err[0]


@pytest.mark.slow
def test_the_readme_first_command_answers_as_shown(capsys, monkeypatch):
    """The README's first try, run as written: the published adapter answers in 3 rounds."""
    import re
    import shlex

    from motif.cli.main import main

    repo = REPO
    monkeypatch.chdir(repo)
    readme = (repo / "README.md").read_text()
    block = readme.split("## First try", 1)[1].split("```bash\n", 1)[1].split("```", 1)[0]
    argv = shlex.split(block.replace("\\\n", " "))
    assert argv[0] == ".venv/bin/motif"
    assert main(argv[1:]) == 0
    out = capsys.readouterr().out
    shown = re.search(r"```text\n(.*?)```", readme.split("## First try", 1)[1], re.S).group(1)
    assert shown.strip() == out.strip()  # the README shows the whole output
