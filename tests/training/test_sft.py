"""The format cold start: demonstrations that follow the protocol exactly, and ``motif sft``."""

from __future__ import annotations

import json
import re

import pytest
import yaml

from conftest import REPO
from fakes import ScriptedBackend
from motif.answer_format import format_ok, paper_strict_ok, parse_answer, parse_boxed
from motif.cli.main import main
from motif.engine import RolloutEngine
from motif.protocol import Protocol
from motif.tasks import ChainProblem, chain_from_entry, parse_chain
from motif.training.demos import (
    build_demonstrations,
    demonstration_responses,
    held_out_problems,
    load_items,
)

RECIPES = sorted((REPO / "recipes").glob("sft_*.yaml"))
TWO_TERMS = '{"min_terms": 2, "max_terms": 2, "min_digits": 1, "max_digits": 1}'
_PARTIAL = re.compile(r"^Partial result after round (\d+): (-?\d+)\. Remaining: (.*)$")


def _rg_entries(task: str, size: int, seed: int, **config) -> list[dict]:
    import reasoning_gym

    return list(reasoning_gym.create_dataset(task, seed=seed, size=size, **config))


@pytest.mark.parametrize("rounds", [1, 2, 3])
@pytest.mark.parametrize("seed", [0, 1, 7])
def test_demonstrations_follow_the_protocol(rounds, seed):
    protocol = Protocol(rounds=rounds)
    entries = _rg_entries("chain_sum", 8, seed)
    rows = build_demonstrations("chain_sum", rounds, 8, seed)
    assert len(rows) == 8 * rounds
    for j, entry in enumerate(entries):
        summary = None
        for i in range(1, rounds + 1):
            row = rows[j * rounds + i - 1]
            assert set(row) == {"prompt", "completion"}
            assert row["prompt"] == protocol.messages(entry["question"], i, summary)
            (message,) = row["completion"]
            assert message["role"] == "assistant"
            text = message["content"]
            assert format_ok(text, final=i == rounds) and paper_strict_ok(text)
            _check_answer(parse_answer(text), entry, final=i == rounds, round_index=i)
            summary = protocol.summary(text)


def _check_answer(answer: str, entry: dict, final: bool, round_index: int) -> None:
    """The last round boxes the task's answer; earlier ones state a correct partial sum."""
    expression = entry["metadata"]["expression"]
    if final:
        assert parse_boxed(answer) == entry["answer"]
        return
    match = _PARTIAL.match(answer)
    assert match and int(match.group(1)) == round_index
    partial, remaining = int(match.group(2)), match.group(3)
    if remaining == "nothing":
        assert partial == int(entry["answer"])
        return
    assert expression.endswith(" " + remaining)
    assert partial == eval(expression[: -len(remaining)].strip())  # noqa: S307 - digits and +/-
    assert eval(f"{partial} {remaining}") == int(entry["answer"])  # noqa: S307


def test_rows_are_what_the_engine_sends():
    """Replaying the demonstrations through the engine reproduces every row's prompt."""
    protocol = Protocol(rounds=3)
    rows = build_demonstrations("chain_sum", 3, 5, 3)
    replies = {json.dumps(r["prompt"]): r["completion"][0]["content"] for r in rows}
    backend = ScriptedBackend(lambda chat, s: replies[json.dumps(chat)])
    from motif.backends.base import SamplingParams

    engine = RolloutEngine(backend, protocol, SamplingParams(max_new_tokens=10_000))
    questions = [rows[j * 3]["prompt"][1]["content"] for j in range(5)]
    trajectories = engine.run(questions)
    sent = sorted(json.dumps(c) for c in backend.chats)
    assert sent == sorted(json.dumps(r["prompt"]) for r in rows)
    assert all(len(t.rounds) == 3 for t in trajectories)


def test_format_report_scores_perfect_demonstrations():
    from motif.training.sft import format_report

    problems = load_items("chain_sum", 4, 5)
    rows = build_demonstrations("chain_sum", 2, 4, 5)
    replies = {json.dumps(r["prompt"]): r["completion"][0]["content"] for r in rows}
    backend = ScriptedBackend(lambda chat, s: replies[json.dumps(chat)])
    report = format_report(backend, problems, Protocol(rounds=2), max_new_tokens=10_000)
    assert report["format_rate"] == report["trajectory_format_rate"] == 1.0
    assert report["paper_strict_rate"] == report["accuracy"] == 1.0
    assert report["format_rate_by_round"] == [1.0, 1.0] and report["responses"] == 8
    assert report["step_accuracy"] == 1.0 and report["steps_written"] > 0
    assert report["state_right_rate"] == 1.0 and report["state_right_by_round"] == [1.0]


def round_of(chat) -> int:
    """The round a summary-protocol chat asks for (its user turn names the previous one)."""
    match = re.search(r"Progress in round (\d+)", chat[1]["content"])
    return int(match.group(1)) + 1 if match else 1


def test_held_out_check_counts_wrong_steps_and_states():
    from motif.training.sft import format_report

    config = {"min_terms": 6, "max_terms": 6, "min_digits": 1, "max_digits": 1}
    problems = load_items("chain_sum", 4, 5, config)
    replies = {p.question: demonstration_responses(p, 3) for p in problems}

    def script(chat, sample):  # round 2 adds one wrong: its step and its state are wrong
        index = round_of(chat)
        text = next(r for q, r in replies.items() if chat[1]["content"].startswith(q))[index - 1]
        if index == 2:
            step = re.search(r"(-?\d+) ([+-]) (\d+) = (-?\d+)\.", text)
            wrong = f"{step.group(1)} {step.group(2)} {step.group(3)} = {int(step.group(4)) + 1}."
            text = text.replace(step.group(0), wrong, 1)
            text = re.sub(
                r"(round 2: )(-?\d+)", lambda m: m.group(1) + str(int(m.group(2)) + 1), text
            )
        return text

    report = format_report(ScriptedBackend(script), problems, Protocol(rounds=3), 10_000)
    assert report["steps_written"] == 4 * 5 and report["steps_right"] == 4 * 4
    assert report["step_accuracy"] == 0.8
    assert report["state_right_by_round"] == [1.0, 0.0] and report["state_right_rate"] == 0.5


def test_more_rounds_than_terms_still_boxes_the_total():
    problem = ChainProblem("Q: 4 - 7 =", "-3", ("-",), (4, 7))
    responses = demonstration_responses(problem, 4)
    assert "Remaining: nothing" in responses[1] and "No terms are left" in responses[2]
    assert parse_boxed(parse_answer(responses[-1])) == "-3"
    assert all(format_ok(r, final=i == 3) for i, r in enumerate(responses))


def test_single_round_is_the_vanilla_format():
    (row,) = build_demonstrations("chain_sum", 1, 1, 0)
    assert row["prompt"] == Protocol(rounds=1).messages(row["prompt"][1]["content"], 1)
    text = row["completion"][0]["content"]
    assert text.startswith("<reasoning>\nStart with ") and text.endswith("}\n</answer>\n")


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("4 - 1 - 7", (("-", "-"), (4, 1, 7))),
        ("2 - -1", (("-",), (2, -1))),
        ("-5 + 3", (("+",), (-5, 3))),
        ("5-3+-2", (("-", "+"), (5, 3, -2))),
        ("( 56 + -33 ) - 84", None),
        ("478 / 1 + -682", None),
        ("3 * 2", None),
        ("1.5 + 2", None),
        ("4 +", None),
        ("", None),
    ],
)
def test_parse_chain(expression, expected):
    assert parse_chain(expression) == expected


def test_entries_with_a_wrong_answer_or_no_metadata():
    entry = {"question": "Sum: 4 + 5 =", "answer": "9"}
    assert chain_from_entry(entry).total == 9
    assert chain_from_entry({**entry, "answer": "10"}) is None
    assert chain_from_entry({**entry, "answer": "nine"}) is None


def test_basic_arithmetic_keeps_only_flat_chains():
    problems = load_items("basic_arithmetic", 10, 0)
    assert len(problems) == 10 and all(p.total == int(p.answer) for p in problems)


def test_held_out_items_are_disjoint_from_the_demonstrations():
    config = {"min_terms": 2, "max_terms": 2, "min_digits": 1, "max_digits": 1}
    train = {p.question for p in load_items("chain_sum", 60, 0, config)}
    held = held_out_problems("chain_sum", 20, 0, config, train_size=60)
    assert len(held) == 20 and not train & {p.question for p in held}


def test_task_config_cannot_set_size_or_seed():
    from motif.errors import ConfigError

    with pytest.raises(ConfigError, match="size"):
        build_demonstrations("chain_sum", 2, 2, 0, {"size": 5})


# --------------------------------------------------------------------------- the command


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: p.name)
def test_recipe_dry_run(recipe, tmp_path, capsys, no_model_load):
    code = main(["sft", "--config", str(recipe), "--dry-run", "--output-dir", str(tmp_path / "o")])
    out = capsys.readouterr().out
    assert code == 0, out
    config = yaml.safe_load(recipe.read_text())
    if config.get("carry_over") == "tail":  # one row per chunk: 2 or 3 chunks per thought here
        rows = int(re.search(r"demonstrations: .* = (\d+) rows", out).group(1))
        assert 2 * config["num_examples"] <= rows <= 3 * config["num_examples"]
    else:
        for rounds in [config["rounds"], *(config.get("extra_rounds") or [])]:
            unit = "round" if rounds == 1 else "rounds"
            assert f"x {rounds} {unit} = {config['num_examples'] * rounds} rows" in out
        if config.get("extra_carry_over"):
            assert "# sample demonstration, tail (chunks of one thought)" in out
    assert "<reasoning>" in out and "\\boxed{" in out
    assert not (tmp_path / "o").exists()


def test_recipes_exist():
    assert RECIPES, "no recipes/sft_*.yaml"


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--rounds", "0"], "--rounds must be >= 1"),
        (["--task", "leg_counting"], "--task 'leg_counting' has no demonstration writer"),
        (["--num-examples", "0"], "--num-examples must be >= 1"),
        (["--learning-rate", "0"], "--learning-rate must be > 0"),
        (["--task-config", "[1"], "--task-config must be a JSON mapping"),
        (["--adapter", "x"], "--adapter is not used by motif sft"),
        (["--backend", "vllm"], "--backend vllm is not used by motif sft"),
        (["--lora-r", "0"], "--lora-r must be >= 1"),
        (["--eval-base"], "--eval-base needs --eval-size >= 1"),
        (["--extra-rounds", "0"], "--extra-rounds must be round counts >= 1"),
        (["--extra-rounds", "²"], "invalid int value: '²'"),
        (["--report-to", "mlflow"], "--report-to must be none or tensorboard or wandb"),
    ],
)
def test_bad_config_is_a_one_line_error(flags, message, capsys, no_model_load):
    assert main(["sft", "--dry-run", *flags]) == 2
    assert message in capsys.readouterr().err


LONG = '{"min_terms": 12, "max_terms": 12, "min_digits": 1, "max_digits": 1}'
TAIL = ["--carry-over", "tail", "--tail-chunk", "64", "--tail-head", "8", "--tail-keep", "24"]


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--task-config", '{"min_terms": 0}'], "--task-config min_terms must be a whole number"),
        (
            ["--task", "letter_counting", "--task-config", '{"min_words": 9, "max_words": 2}'],
            "--task-config min_words (9) must not exceed max_words (2)",
        ),
        (
            ["--rounds", "5", "--task-config", '{"min_terms": 3, "max_terms": 4}'],
            "--rounds 5 splits the work into more rounds than the 3 terms of the smallest",
        ),
        (
            [
                "--rounds",
                "2",
                "--extra-rounds",
                "4",
                "--task-config",
                '{"min_terms": 3, "max_terms": 3}',
            ],
            "--extra-rounds 4 splits the work into more rounds than the 3 terms",
        ),
        (
            ["--rounds", "2", "--task-config", LONG, "--eval-max-new-tokens", "64"],
            "the longest demonstrated round is 111 new tokens (item 4, round 1 of 2), more than "
            "the per-round budget --eval-max-new-tokens 64: use more --rounds",
        ),
        (
            [
                "--rounds",
                "1",
                "--task-config",
                LONG,
                "--eval-max-new-tokens",
                "256",
                "--max-length",
                "256",
            ],
            "the longest demonstration row is 326 tokens (prompt and completion), more than "
            "--max-length 256",
        ),
        (
            [*TAIL, "--tail-chunks", "2", "--task-config", LONG],
            "more than --tail-chunks 2 chunks of --tail-chunk 64 hold (96 = C + (I - 1)(C - h - m)",
        ),
        (
            [*TAIL, "--tail-chunks", "8", "--extra-rounds", "1"],
            "--extra-rounds demonstrates other round counts of --carry-over summary; drop it",
        ),
    ],
)
def test_demonstrations_that_cannot_fit_are_one_line_errors(flags, message, capsys, no_model_load):
    """Bad input of issue 16: the knob, the per-round budget, more rounds than work."""
    assert main(["sft", "--dry-run", "--num-examples", "4", *flags]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err


def test_tail_rows_are_chunks_of_one_thought(tokenizer):
    from motif.cli.common import parse
    from motif.config import ModelArgs, ProtocolArgs
    from motif.training.config import LoraArgs
    from motif.training.sft import build_rows, total_steps, training_rows
    from motif.training.sft_config import SftArgs, SftConfig

    flags = ["--dry-run", "--num-examples", "3", "--task-config", LONG, *TAIL, "--tail-chunks", "8"]
    flags += ["--per-device-batch-size", "2"]
    config = SftConfig(*parse("sft", (SftArgs, ModelArgs, ProtocolArgs, LoraArgs), flags))
    rows = build_rows(config, tokenizer)
    starts = [r for r in rows if len(r["prompt"]) == 2]  # chunk 1 of each thought
    assert len(starts) == 3 and len(rows) > 6
    assert all(set(r) == {"input_ids", "completion_mask"} for r in training_rows(rows))
    assert total_steps(config) == -(-len(rows) // 2)
    from motif.training.demos import rows_text, sample_text

    assert rows_text("chain_sum", 3, [1], rows).endswith(f"chunks (mean) = {len(rows)} rows")
    shown = sample_text(rows, 8)
    first = rows[: 1 + next(i for i, r in enumerate(rows[1:]) if len(r["prompt"]) == 2)]
    assert shown.count("--- chunk ") == 2 * len(first) - 1 and "\\boxed{" in shown


def test_extra_rounds_demonstrate_each_protocol(capsys, no_model_load):
    flags = ["--dry-run", "--rounds", "2", "--extra-rounds", "1", "2", "--num-examples", "3"]
    flags += ["--per-device-batch-size", "3"]
    assert main(["sft", *flags]) == 0
    out = capsys.readouterr().out
    assert "demonstrations: 2 formats of the same items = 9 rows" in out
    assert "  summary, 2 rounds: 3 chain_sum items x 2 rounds = 6 rows" in out
    assert "  one pass: 3 chain_sum items x 1 round = 3 rows" in out
    assert "optimiser:      3 steps of 3 rows" in out


def test_extra_rounds_rows_hold_both_protocols():
    from motif.cli.common import parse
    from motif.config import ModelArgs, ProtocolArgs
    from motif.training.config import LoraArgs
    from motif.training.sft import build_rows
    from motif.training.sft_config import SftArgs, SftConfig

    flags = ["--dry-run", "--rounds", "2", "--extra-rounds", "1", "--num-examples", "2"]
    config = SftConfig(*parse("sft", (SftArgs, ModelArgs, ProtocolArgs, LoraArgs), flags))
    rows = build_rows(config)
    assert rows[:4] == build_demonstrations("chain_sum", 2, 2, 0)
    assert rows[4:] == build_demonstrations("chain_sum", 1, 2, 0)


def test_output_dir_is_required_for_a_real_run(capsys, no_model_load):
    assert main(["sft"]) == 2
    assert "--output-dir is required" in capsys.readouterr().err


def test_existing_output_dir_is_left_alone(tmp_path, capsys, no_model_load):
    (tmp_path / "old.txt").write_text("x")
    assert main(["sft", "--output-dir", str(tmp_path), "--num-examples", "1"]) == 2
    assert "not empty and was not created by motif" in capsys.readouterr().err
    assert (tmp_path / "old.txt").exists()
    (tmp_path / ".motif-run").write_text("{}")
    assert main(["sft", "--output-dir", str(tmp_path), "--num-examples", "1"]) == 2
    assert "holds a motif sft run; pass --overwrite to replace it" in capsys.readouterr().err
    (tmp_path / "checkpoint-5").mkdir()  # a run stopped part way (motif sft --save-steps)
    (tmp_path / "checkpoint-5" / "trainer_state.json").write_text("{}")
    assert main(["sft", "--output-dir", str(tmp_path), "--num-examples", "1"]) == 2
    err = capsys.readouterr().err
    assert "pass --resume to continue it from its last checkpoint or --overwrite" in err


@pytest.mark.filterwarnings("error::FutureWarning")  # issue 14, item 15: no deprecated names
def test_tiny_model_cold_start_writes_a_loadable_adapter(tiny_checkpoint, tmp_path, capsys):
    from motif.models import load_model

    out = tmp_path / "run"
    out.mkdir()
    (out / "stale.txt").write_text("old run")
    (out / ".motif-run").write_text("{}")  # an earlier motif run: --overwrite may replace it
    flags = ["--model", str(tiny_checkpoint), "--output-dir", str(out), "--overwrite"]
    flags += ["--rounds", "2", "--num-examples", "2", "--max-steps", "2"]
    flags += ["--per-device-batch-size", "2", "--lora-r", "2", "--lora-alpha", "4"]
    flags += ["--lora-target-modules", "q_proj", "v_proj", "--logging-steps", "1"]
    flags += ["--lora-last-layers", "1", "--dtype", "float32"]
    flags += ["--eval-size", "1", "--eval-max-new-tokens", "48", "--task-config", TWO_TERMS]
    assert main(["sft", *flags]) == 0, capsys.readouterr().err
    assert not (out / "stale.txt").exists()
    for name in ("adapter_config.json", "adapter_model.safetensors", "tokenizer_config.json"):
        assert (out / name).exists(), name
    saved = yaml.safe_load((out / "motif_config.yaml").read_text())
    assert saved["rounds"] == 2 and saved["model"] == str(tiny_checkpoint)
    metrics = json.loads((out / "sft_metrics.json").read_text())
    assert metrics["steps"] == 2 and metrics["rows"] == 4
    assert metrics["held_out"]["items"] == 1 and metrics["held_out"]["responses"] == 2
    adapter = json.loads((out / "adapter_config.json").read_text())
    assert adapter["layers_to_transform"] == [1] and adapter["r"] == 2
    model, _ = load_model(str(tiny_checkpoint), adapter=str(out), device="cpu")
    assert type(model).__name__ == "PeftModelForCausalLM"


@pytest.mark.filterwarnings("error::FutureWarning")
def test_tiny_model_tail_cold_start_trains_on_chunk_rows(tiny_checkpoint, tmp_path, capsys):
    out = tmp_path / "tail"
    flags = ["--model", str(tiny_checkpoint), "--output-dir", str(out), "--num-examples", "2"]
    flags += [*TAIL, "--tail-chunks", "8", "--task-config", LONG, "--max-steps", "2"]
    flags += ["--per-device-batch-size", "2", "--lora-r", "2", "--lora-alpha", "4"]
    flags += ["--lora-target-modules", "q_proj", "--lora-last-layers", "1", "--dtype", "float32"]
    flags += ["--eval-size", "1"]
    assert main(["sft", *flags]) == 0, capsys.readouterr().err
    metrics = json.loads((out / "sft_metrics.json").read_text())
    assert metrics["steps"] == 2 and metrics["rows"] > 2 * 3
    held = metrics["held_out"]
    assert held["items"] == 1 and held["responses"] == 1 and held["state_right_by_round"] == []
    assert held["state_right_rate"] is None and "step_accuracy" in held


def test_eval_base_reports_without_training(tiny_checkpoint, tmp_path, capsys):
    flags = ["--model", str(tiny_checkpoint), "--eval-base", "--eval-size", "1"]
    flags += ["--task-config", TWO_TERMS, "--num-examples", "4"]
    assert main(["sft", *flags, "--eval-max-new-tokens", "48", "--rounds", "2"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["items"] == 1 and report["responses"] == 2 and report["format_rate"] == 0.0


def test_held_out_check_generates_with_the_model_options(monkeypatch, tokenizer):
    """`motif sft --decode generate --decode-dtype model` reaches the held-out check's backend
    (it was built with the defaults, whatever the flags said)."""
    import motif.models
    import motif.training.heldout as heldout
    from conftest import build_tiny_model
    from motif.config import ModelArgs, ProtocolArgs
    from motif.training.config import LoraArgs
    from motif.training.sft_config import SftArgs, SftConfig

    model = build_tiny_model(tokenizer)
    monkeypatch.setattr(motif.models, "load_model", lambda *a, **k: (model, tokenizer))
    seen = []
    monkeypatch.setattr(heldout, "format_report", lambda backend, *a: seen.append(backend))
    config = SftConfig(
        SftArgs(dry_run=True, eval_size=2),
        ModelArgs(decode="generate", decode_dtype="model"),
        ProtocolArgs(),
        LoraArgs(),
    )
    heldout.evaluate_adapter(config, None)
    assert (seen[0].decode, seen[0].decode_dtype) == ("generate", "model")


@pytest.mark.parametrize("value", ["2,²", "2,x", [2, "²"], "0"])
def test_extra_rounds_text_with_a_non_ascii_digit_is_a_one_line_error(value):
    from motif.errors import ConfigError
    from motif.training.sft_config import SftArgs

    with pytest.raises(ConfigError, match="--extra-rounds must be round counts >= 1"):
        SftArgs(extra_rounds=value)
    assert SftArgs(extra_rounds="1, 2").extra_rounds == [1, 2]
