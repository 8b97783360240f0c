"""`motif sft --extra-carry-over`: one cold start demonstrating several carry-over formats."""

from __future__ import annotations

import json

import pytest

from motif.cli.main import main

LONG = '{"min_terms": 12, "max_terms": 12, "min_digits": 1, "max_digits": 1}'
WINDOW = ["--tail-chunk", "64", "--tail-head", "8", "--tail-keep", "24", "--tail-chunks", "8"]
FLAGS = ["--dry-run", "--num-examples", "3", "--task-config", LONG, *WINDOW]


def _config(flags):
    from motif.cli.common import parse
    from motif.config import ModelArgs, ProtocolArgs
    from motif.training.config import LoraArgs
    from motif.training.sft_config import SftArgs, SftConfig

    return SftConfig(*parse("sft", (SftArgs, ModelArgs, ProtocolArgs, LoraArgs), flags))


def test_each_format_is_demonstrated_once():
    from motif.training.sft_rows import formats

    config = _config([*FLAGS, "--extra-rounds", "1", "--extra-carry-over", "tail", "none"])
    assert [(f.label, f.thought, f.rounds) for f in formats(config)] == [
        ("summary, 3 rounds", False, 3),
        ("one pass", False, 1),  # none is the one-pass format --extra-rounds 1 already asked for
        ("tail (chunks of one thought)", True, 1),
    ]


def test_mixed_rows_are_the_token_ids_of_each_format(tokenizer):
    from motif.training.sft_rows import build_blocks, build_rows, total_steps, training_rows

    config = _config([*FLAGS, "--extra-carry-over", "tail", "--per-device-batch-size", "4"])
    (summary, summary_rows), (tail, tail_rows) = build_blocks(config, tokenizer)
    assert (summary.thought, summary.rounds, len(summary_rows)) == (False, 3, 9)
    alone = build_rows(_config([*FLAGS, "--carry-over", "tail"]), tokenizer)
    assert tail.thought and tail_rows == alone  # the same chunks as a tail cold start
    for row in summary_rows:
        ids, mask = row["input_ids"], row["completion_mask"]
        prompt = tokenizer.apply_chat_template(
            row["prompt"], tokenize=False, add_generation_prompt=True
        )
        assert tokenizer.decode(ids[: mask.index(1)]) == prompt
        written = tokenizer.decode([t for t, m in zip(ids, mask, strict=True) if m])
        assert written == row["completion"][0]["content"] + tokenizer.eos_token
    rows = training_rows(build_rows(config, tokenizer))
    assert all(set(r) == {"input_ids", "completion_mask"} for r in rows)
    assert total_steps(config) == -(-len(rows) // 4)


def test_dry_run_shows_every_format(capsys, no_model_load):
    assert main(["sft", *FLAGS, "--extra-carry-over", "tail"]) == 0
    out = capsys.readouterr().out
    assert "demonstrations: 2 formats of the same items = " in out
    assert "  summary, 3 rounds: 3 chain_sum items x 3 rounds = 9 rows" in out
    assert "# sample demonstration, summary, 3 rounds" in out
    assert "# sample demonstration, tail (chunks of one thought)" in out


def test_tail_options_without_tail_demonstrations_are_a_note(capsys, no_model_load):
    assert main(["sft", *FLAGS]) == 0  # FLAGS set the --tail-* window; summary rounds only
    out = capsys.readouterr().out
    assert "note:           --tail-chunk 64, " in out
    assert "not used (they apply to tail demonstrations: --carry-over tail or " in out
    assert main(["sft", *FLAGS, "--extra-carry-over", "tail"]) == 0
    assert "note:" not in capsys.readouterr().out


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--extra-carry-over", "summary"], "--extra-carry-over takes tail or none; got 'summary'"),
        (
            ["--carry-over", "tail", "--extra-carry-over", "none"],
            "--extra-carry-over adds formats to a --carry-over summary cold start; drop it",
        ),
        (
            ["--extra-carry-over", "tail", "--tail-chunks", "2"],
            "more than --tail-chunks 2 chunks of --tail-chunk 64 hold",
        ),
    ],
)
def test_bad_extra_carry_over_is_a_one_line_error(flags, message, capsys, no_model_load):
    assert main(["sft", *FLAGS, *flags]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err


@pytest.mark.filterwarnings("error::FutureWarning")
def test_tiny_model_trains_on_mixed_formats(tiny_checkpoint, tmp_path, capsys):
    out = tmp_path / "mixed"
    flags = ["--model", str(tiny_checkpoint), "--output-dir", str(out), "--num-examples", "2"]
    flags += [*WINDOW, "--task-config", LONG, "--extra-carry-over", "tail", "--max-steps", "2"]
    flags += ["--per-device-batch-size", "2", "--lora-r", "2", "--lora-alpha", "4"]
    flags += ["--lora-target-modules", "q_proj", "--lora-last-layers", "1", "--dtype", "float32"]
    assert main(["sft", *flags]) == 0, capsys.readouterr().err
    metrics = json.loads((out / "sft_metrics.json").read_text())
    assert metrics["steps"] == 2 and metrics["rows"] > 2 * 3 + 2
    assert metrics["demonstrated"] == ["summary, 3 rounds", "tail (chunks of one thought)"]


def test_model_ended_cold_start_demonstrates_rounds_under_the_cap(capsys, no_model_load):
    from motif.training.sft_rows import formats

    flags = [*FLAGS, "--round-end", "model", "--max-rounds", "3", "--extra-rounds", "2"]
    config = _config(flags)
    assert [(f.label, f.rounds, f.cap, f.option) for f in formats(config)] == [
        ("model-ended, 3 of at most 3 rounds", 3, 3, "--max-rounds"),
        ("model-ended, 2 of at most 3 rounds", 2, 3, "--extra-rounds"),
    ]
    assert main(["sft", *flags]) == 0
    out = capsys.readouterr().out
    assert "  model-ended, 2 of at most 3 rounds: 3 chain_sum items x 2 rounds = 6 rows" in out
    assert "# sample demonstration, model-ended, 3 of at most 3 rounds" in out
    assert "(round 3 of at most 3). Conclude: provide the final answer in \\boxed{}." in out


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (
            ["--max-rounds", "2", "--extra-rounds", "3"],
            "--extra-rounds 3 is more rounds than --max-rounds 2",
        ),
        (["--eval-max-new-tokens", "16"], "--eval-max-new-tokens 16 is a per-round cap too small"),
        (["--max-rounds", "0"], "--max-rounds must be >= 1"),
    ],
)
def test_bad_model_ended_cold_start_is_a_one_line_error(flags, message, capsys, no_model_load):
    assert main(["sft", *FLAGS, "--round-end", "model", *flags]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err


def test_one_mixed_cold_start_demonstrates_every_arms_format(tokenizer, capsys, no_model_load):
    """--extra-round-end model adds the model-ended rounds (phi = --rounds) to summary rounds
    and tail chunks: one cold start for every arm of the methods comparison (issue 35)."""
    from motif.training.sft_rows import build_blocks, formats

    flags = [*FLAGS, "--extra-carry-over", "tail", "--extra-round-end", "model"]
    config = _config(flags)
    assert [(f.label, f.cap, f.option) for f in formats(config)] == [
        ("summary, 3 rounds", None, "--rounds"),
        ("tail (chunks of one thought)", None, "--extra-carry-over"),
        ("model-ended, 3 of at most 3 rounds", 3, "--extra-round-end"),
    ]
    blocks = build_blocks(config, tokenizer)
    summary, ended = blocks[0][1], blocks[2][1]
    assert len(summary) == len(ended) == 9  # the same items and rounds, other prompts
    texts = [tokenizer.decode(r["input_ids"]) for r in (summary[2], ended[2])]
    assert "Current round is the final (third) round." in texts[0]
    assert "(round 3 of at most 3). Conclude" in texts[1] and "of at most" not in texts[0]
    assert main(["sft", *flags]) == 0
    assert "demonstrations: 3 formats of the same items = " in capsys.readouterr().out


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--extra-round-end", "budget"], "--extra-round-end takes model; budget-ended rounds"),
        (["--extra-round-end", "soon"], "--round-end must be one of"),
        (
            ["--round-end", "model", "--extra-round-end", "model"],
            "--extra-round-end model: --round-end model already demonstrates it",
        ),
        (
            ["--carry-over", "tail", "--extra-round-end", "model"],
            "--round-end model applies to --carry-over summary",
        ),
    ],
)
def test_bad_extra_round_end_is_a_one_line_error(flags, message, capsys, no_model_load):
    assert main(["sft", *FLAGS, *flags]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err
