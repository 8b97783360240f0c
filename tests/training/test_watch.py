"""The held-out check during training (`motif train --heldout-every`): metrics, diagnostic, errors."""

from __future__ import annotations

import pytest

from motif.cli.main import main
from motif.engine import RoundRecord, Trajectory
from motif.tasks import ChainProblem, LetterProblem, skips_steps, steps_needed
from motif.training.watch import METRICS, PREFIX, watch_metrics
from train_fakes import TINY_RUN, adapter_tensors, read_metrics

CHAIN = ChainProblem("What is 4 + 5 - 3 + 10?", "16", ("+", "-", "+"), (4, 5, 3, 10))
NEGATIVE = ChainProblem("What is 4 - -7?", "11", ("-",), (4, -7))
LETTERS = LetterProblem("How many a in 'banana cab'?", "4", "a", ("banana", "cab"))
BOXED = "<answer>\n\\boxed{16}\n</answer>"
STATE = "<answer>9</answer>"


def trajectory(*texts: str, carry_over: str = "summary") -> Trajectory:
    """A trajectory of the given round (``tail``: chunk) texts; nothing else is read."""
    rounds = [
        RoundRecord(i, "", text, None, None, "", 0, 0, False) for i, text in enumerate(texts, 1)
    ]
    return Trajectory("q", rounds, carry_over=carry_over)


@pytest.mark.parametrize(
    ("item", "needed"),
    [(CHAIN, 3), (NEGATIVE, 1), (LETTERS, 2), (ChainProblem("7?", "7", (), (7,)), 0)],
)
def test_steps_needed_is_what_the_worked_solution_writes(item, needed):
    assert steps_needed(item) == needed


@pytest.mark.parametrize(
    ("item", "texts", "carry_over", "skipped"),
    [
        # every step, then the boxed answer
        (CHAIN, ["Start with 4. 4 + 5 = 9. 9 - 3 = 6. 6 + 10 = 16.\n" + BOXED], "summary", False),
        # the first study's shortcut: one addition, then a boxed guess
        (CHAIN, ["Start with 4. 4 + 5 = 9.\n" + BOXED], "summary", True),
        (CHAIN, [BOXED], "summary", True),  # no work at all
        # every step written, all wrong: the work is shown (step_accuracy judges it)
        (CHAIN, ["4 + 5 = 1. 1 - 3 = 2. 2 + 10 = 3.\n" + BOXED], "summary", False),
        (CHAIN, ["Start with 4. 4 + 5 = 9."], "summary", False),  # boxes nothing: ran out
        (CHAIN, ["4 + 5 = 9. \\boxed{16}"], "summary", False),  # a box outside <answer>
        # the work split over rounds counts together
        (CHAIN, ["4 + 5 = 9. " + STATE, "9 - 3 = 6. 6 + 10 = 16.\n" + BOXED], "summary", False),
        (CHAIN, ["4 + 5 = 9. " + STATE, "6 + 10 = 16.\n" + BOXED], "summary", True),
        # a tail step split by a chunk boundary counts once, in the whole thought
        (CHAIN, ["Start with 4. 4 + 5 = 9. 9 -", " 3 = 6. 6 + 10 = 16.\n" + BOXED], "tail", False),
        (CHAIN, ["Start with 4. 4 + 5 = 9.", "\n" + BOXED], "tail", True),
        (NEGATIVE, ["4 - -7 = 11.\n<answer>\\boxed{11}</answer>"], "none", False),
        (LETTERS, ["banana has 3 a, 0 + 3 = 3.\n<answer>\\boxed{4}</answer>"], "summary", True),
        (
            LETTERS,
            ["banana has 3 a, 0 + 3 = 3. cab has 1 a, 3 + 1 = 4.\n<answer>\\boxed{4}</answer>"],
            "summary",
            False,
        ),
    ],
)
def test_skipped_steps_diagnostic(item, texts, carry_over, skipped):
    assert skips_steps(item, trajectory(*texts, carry_over=carry_over)) is skipped


def test_watch_metrics_are_rates_and_leave_out_what_has_nothing_to_count():
    from motif.config import ProtocolArgs

    protocol = ProtocolArgs(rounds=2).protocol()
    state = "<answer>\nPartial result after round 1: 9. Remaining: - 3 + 10\n</answer>\n"
    right = "<reasoning>\n4 + 5 = 9.\n</reasoning>\n" + state
    last = "<reasoning>\n9 - 3 = 6. 6 + 10 = 16.\n</reasoning>\n" + BOXED + "\n"
    worked = trajectory(right, last)
    worked.rounds[0].summary = state  # the state handed over to round 2
    guessed = trajectory("no work", "<reasoning>\nguess\n</reasoning>\n" + BOXED + "\n")
    metrics = watch_metrics([worked, guessed], [CHAIN, CHAIN], protocol, 1.5)
    assert set(metrics) == {PREFIX + name for name in METRICS}
    assert metrics[PREFIX + "accuracy"] == 1.0 and metrics[PREFIX + "skipped_steps"] == 0.5
    assert metrics[PREFIX + "step_accuracy"] == 1.0 and metrics[PREFIX + "seconds"] == 1.5
    assert metrics[PREFIX + "format_rate"] == 0.75  # "no work" is not in the tag format
    assert metrics[PREFIX + "state_right"] == 0.5  # "no work" hands over no state
    one_round = ProtocolArgs(rounds=1).protocol()  # hands no state over
    bare = watch_metrics([trajectory("x")], [CHAIN], one_round, 0.1)
    assert PREFIX + "step_accuracy" not in bare and PREFIX + "state_right" not in bare
    assert bare[PREFIX + "accuracy"] == 0.0 and bare[PREFIX + "skipped_steps"] == 0.0


def _train(out, tiny_checkpoint, *flags: str) -> list[dict]:
    """Three tiny MOTIF steps (logging every 10: no step logs unless the check makes it)."""
    run = ["train", "--model", str(tiny_checkpoint), "--output-dir", str(out), *TINY_RUN]
    assert main([*run, "--max-steps", "3", "--logging-steps", "10", *flags]) == 0
    return read_metrics(out) if (out / "metrics.jsonl").exists() else []


def test_checks_log_with_their_steps_and_leave_training_alone(
    tiny_checkpoint, tmp_path, with_length_reward
):
    """Every 2nd step and the last: heldout/* in that step's row; the weights are those of a
    run without the check (greedy rollouts draw no random numbers and write no weights)."""
    watched = _train(tmp_path / "w", tiny_checkpoint, "--heldout-every", "2", "--heldout-size", "2")
    assert [r["step"] for r in watched] == [2, 3]
    for record in watched:
        for name in ("accuracy", "format_rate", "skipped_steps"):
            assert 0.0 <= record[PREFIX + name] <= 1.0, name
        assert record[PREFIX + "seconds"] > 0 and "loss" in record and "step_seconds" in record
    assert _train(tmp_path / "plain", tiny_checkpoint) == []
    ours, theirs = adapter_tensors(tmp_path / "w"), adapter_tensors(tmp_path / "plain")
    assert ours.keys() == theirs.keys()
    assert all((ours[k] == theirs[k]).all() for k in ours)
    assert any(v.abs().sum() > 0 for k, v in ours.items() if "lora_B" in k)  # it did train


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--heldout-every", "2"], "--heldout-every draws held-out items of the training task"),
        (["--heldout-every", "-1"], "--heldout-every must be >= 0"),
        (["--heldout-size", "0"], "--heldout-size must be >= 1"),
    ],
)
def test_bad_watch_config_is_one_line_exit_2(flags, message, capsys):
    assert main(["train", "--dry-run", *flags]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_fewer_items_than_processes_is_refused(monkeypatch):
    from motif.cli.train import parse_config
    from motif.errors import ConfigError
    from motif.training.trainer import check_watch

    config = parse_config([*TINY_RUN, "--heldout-every", "1", "--heldout-size", "2"])
    monkeypatch.setenv("WORLD_SIZE", "4")
    with pytest.raises(ConfigError, match="--heldout-size 2 is below the 4 processes"):
        check_watch(config, {"question": []})


def test_held_out_items_are_unseen_and_the_options_are_no_identity():
    from motif.cli.train import parse_config
    from motif.training.rundir import run_identity
    from motif.training.trainer import build_dataset, check_watch

    config = parse_config([*TINY_RUN, "--heldout-every", "1", "--heldout-size", "5"])
    dataset = build_dataset(config)
    items = check_watch(config, dataset)
    assert len(items) == 5 and not {i.question for i in items} & set(dataset["question"])
    assert config.to_dict()["heldout_size"] == 5
    assert "heldout_every" not in parse_config(TINY_RUN).to_dict()  # old runs resume
    settings = run_identity(config.to_dict(), None, None, "")["settings"]
    assert not {"heldout_every", "heldout_size"} & set(settings)


def test_every_training_rollout_generates_in_the_rollout_dtype(
    tiny_checkpoint, tmp_path, monkeypatch
):
    """Round 1 (motif's decode path), the continuations and the held-out check each build
    their backend with ``--rollout-decode-dtype``."""
    import contextlib

    import torch

    from motif.training.policy import TrainingPolicy

    seen, real = [], TrainingPolicy.backend

    @contextlib.contextmanager
    def recording(self):
        with real(self) as backend:
            seen.append(backend.compute_dtype())
            yield backend

    monkeypatch.setattr(TrainingPolicy, "backend", recording)
    flags = ("--rollout-decode-dtype", "bfloat16", "--heldout-every", "2", "--heldout-size", "2")
    _train(tmp_path / "o", tiny_checkpoint, *flags)
    # 3 steps x (round 1 + continuations) + 2 checks, all in bf16
    assert len(seen) >= 8 and set(seen) == {torch.bfloat16}
