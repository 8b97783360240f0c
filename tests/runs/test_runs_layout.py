"""motif.runs.layout: the row schema every writer keeps (one trajectory serialisation)."""

from __future__ import annotations

import json

from motif.cli.infer import trajectory_json
from motif.data import Problem
from motif.engine import RoundRecord, Trajectory
from motif.eval.runner import sample_record
from motif.runs.layout import ROUND_BUDGET_KEYS, SAMPLE_KEYS, checkpoint_name

ROW_KEYS = [
    "id",
    "sample",
    "gold",
    "answer",
    "correct",
    "stopped_early",
    "cut_round",
    "carry_over",
    "generated_tokens",
    "largest_context",
    "question",
    "rounds",
]
"""The keys of a ``samples.jsonl`` row, in the order of the published files."""


def trajectory() -> Trajectory:
    rounds = [
        RoundRecord(1, "p1", r"<answer>\boxed{4}</answer>", "r", r"\boxed{4}", "s", 10, 5, False),
        RoundRecord(2, "p2", r"\boxed{5}", None, None, "", 12, 7, True, carried_tokens=3),
    ]
    return Trajectory("What is 2 + 3?", rounds, stopped_early=True)


def test_to_dict_is_the_record_and_budget_adds_the_accounting():
    traj = trajectory()
    plain = traj.to_dict()
    assert list(plain) == ["question", "carry_over", "stopped_early", "cut_round", "rounds"]
    assert list(plain["rounds"][1])[-2:] == ["truncated", "carried_tokens"]
    full = traj.to_dict(budget=True)
    assert [r["context_tokens"] for r in full["rounds"]] == [15, 19]
    assert full["generated_tokens"] == 12 and full["largest_context"] == 19
    assert json.dumps(plain) == json.dumps(traj.to_dict())  # budget=False adds nothing


def test_eval_rows_and_infer_records_pick_from_to_dict_in_their_published_order():
    traj = trajectory()
    row = sample_record(Problem("7", "What is 2 + 3?", "5", {}), 0, traj, lambda a, g: a == g)
    assert list(row) == ROW_KEYS and set(SAMPLE_KEYS) <= set(row)
    head = ["round", "text", "answer", "correct"]
    assert [list(r) for r in row["rounds"]] == [[*head, *ROUND_BUDGET_KEYS]] * 2
    assert [(r["answer"], r["correct"]) for r in row["rounds"]] == [("4", False), ("5", True)]
    assert row["generated_tokens"] == 12 and row["rounds"][1]["carried_tokens"] == 3
    record = trajectory_json(traj)
    assert list(record) == [
        "question",
        "carry_over",
        "rounds",
        "generated_tokens",
        "largest_context",
        "stopped_early",
        "cut_round",
        "final_answer",
    ]
    own = ["round", "reasoning", "answer", "summary", "text"]
    assert list(record["rounds"][0]) == [*own, *ROUND_BUDGET_KEYS]
    assert record["final_answer"] == "5" and record["rounds"][0]["answer"] == r"\boxed{4}"


def test_checkpoint_names():
    assert checkpoint_name(40) == "checkpoint-40"
