"""motif.eval.metrics: every trajectory in exactly one outcome bucket (issue 31, item 12), and the
measured wall-clock a later run of the same directory keeps (issue 31, item 5)."""

from __future__ import annotations

import json

import pytest

from eval_fakes import ContextBackend, args, loader_for, rows_of, solver, write_set
from motif.config import GenerationArgs, ModelArgs, ProtocolArgs
from motif.eval.metrics import OUTCOMES, compute_metrics, outcome, outcome_counts
from motif.eval.runner import EvalArgs, run_eval
from motif.eval.store import SUMMARY_FILE, ResultStore
from motif.report import summary_text

LOAD = loader_for(solver)


def row(answer, correct, cut=None, item="x", sample=0) -> dict:
    rounds = [] if cut == 1 else [{"round": 1, "answer": answer, "correct": correct}]
    for r in rounds:
        r.update(prompt_tokens=5, completion_tokens=3, truncated=False)
    return {"id": item, "sample": sample, "answer": answer, "correct": correct, "cut_round": cut,
            "rounds": rounds}  # fmt: skip


@pytest.mark.parametrize(
    ("record", "bucket"),
    [
        (row("4", True), "correct"),
        (row("5", False), "wrong"),
        (row(None, False), "no_answer"),
        (row(None, None), "no_answer"),  # a grader that gives None for no answer
        (row("x^", None), "ungraded"),  # the grader could not decide
        (row(None, None, cut=2), "ungraded"),  # cut in round 2: no answer and no grade, once
        (row(None, None, cut=1), "ungraded"),  # cut before any round ran
    ],
)
def test_each_trajectory_is_in_one_bucket(record, bucket):
    assert outcome(record) == bucket
    counts = outcome_counts([record])
    assert counts == {b: int(b == bucket) for b in OUTCOMES}


def test_outcome_counts_sum_to_the_trajectories():
    records = [
        row("4", True, item="a"),
        row("5", False, item="b"),
        row(None, False, item="c"),
        row("x^", None, item="d"),
        row(None, None, cut=2, item="e"),
    ]
    m = compute_metrics([[r] for r in records], samples=1, rounds=2)
    assert {b: m[b] for b in OUTCOMES} == {"correct": 1, "wrong": 1, "no_answer": 1, "ungraded": 2}
    assert sum(m[b] for b in OUTCOMES) == m["trajectories"] == 5
    assert m["context_overflow"]["cut"] == 1  # the cut one, counted again on its own


def test_a_cut_problem_of_a_real_run_is_counted_once(tmp_path):
    """`motif eval` on a set where one problem's round 2 does not fit: the buckets of the
    summary sum to the trajectories, the cut one as ungraded only (was also 'no answer')."""
    run = EvalArgs(benchmark=write_set(tmp_path), output_dir=str(tmp_path / "out"), batch_size=1)
    summary = run_eval(
        run, ModelArgs(), GenerationArgs(), ProtocolArgs(rounds=2),
        backend_loader=lambda m: ContextBackend(limit=130, reply_words=3),
    )  # fmt: skip
    m = summary["metrics"]
    assert m["context_overflow"]["cut"] == 1
    assert (m["correct"], m["wrong"], m["no_answer"], m["ungraded"]) == (2, 0, 0, 1)
    assert sum(m[b] for b in OUTCOMES) == m["trajectories"] == 3
    assert "no answer 0   ungraded 1 (of them 1 cut: context overflow)" in summary_text(summary)


# --------------------------------------------------------------------------- measured time


def test_measured_time_sums_the_runs_and_survives_a_resume(tmp_path):
    gen, proto = GenerationArgs(), ProtocolArgs(rounds=1)
    first = run_eval(args(tmp_path, limit=2), ModelArgs(), gen, proto, backend_loader=LOAD)
    more = run_eval(args(tmp_path, limit=5), ModelArgs(), gen, proto, backend_loader=LOAD)
    assert first["measured"]["generated_problems"] == 2
    assert more["measured"]["generated_problems"] == 5
    assert more["measured"]["generation_seconds"] == pytest.approx(
        first["run"]["generation_seconds"] + more["run"]["generation_seconds"], abs=2e-3
    )
    again = run_eval(args(tmp_path, limit=5), ModelArgs(), gen, proto, backend_loader=LOAD)
    assert again["run"]["generated_problems"] == 0 and again["run"]["generation_seconds"] == 0
    assert again["measured"] == more["measured"]  # 0.0 s never replaces what was measured
    fewer = run_eval(args(tmp_path, limit=1), ModelArgs(), gen, proto, backend_loader=LOAD)
    assert fewer["metrics"]["problems"] == 1
    assert fewer["measured"] == {**more["measured"], "stored_problems": 5}
    stored = json.loads((tmp_path / "out" / SUMMARY_FILE).read_text())
    assert stored["measured"] == fewer["measured"] and len(rows_of(tmp_path / "out")) == 5


def test_measured_time_restarts_when_the_rows_it_counted_are_gone(tmp_path):
    gen, proto = GenerationArgs(), ProtocolArgs(rounds=1)
    run_eval(args(tmp_path, limit=3), ModelArgs(), gen, proto, backend_loader=LOAD)
    (tmp_path / "out" / "samples.jsonl").unlink()  # removed by hand; the summary stays
    again = run_eval(args(tmp_path, limit=3), ModelArgs(), gen, proto, backend_loader=LOAD)
    assert again["measured"]["generated_problems"] == 3  # not 6
    assert again["measured"]["generation_seconds"] == again["run"]["generation_seconds"]


def test_a_summary_written_before_measured_existed_seeds_it(tmp_path):
    store = ResultStore(tmp_path, {"k": 1}, samples=1)
    store.append([row("4", True, item=str(i)) for i in range(4)])
    legacy = {"run": {"generation_seconds": 12.5, "generated_problems": 4}}
    (tmp_path / SUMMARY_FILE).write_text(json.dumps(legacy))
    summary = {"run": {"generation_seconds": 0.0, "generated_problems": 0}}
    store.write_summary(summary)
    assert summary["measured"] == {
        "generation_seconds": 12.5, "generated_problems": 4, "problems_per_minute": 19.2,
        "stored_problems": 4,
    }  # fmt: skip


# --------------------------------------------------------------------------- the hand-over watch

METRIC_KEYS = {
    "problems", "samples_per_problem", "trajectories", *OUTCOMES, "pass@1", "avg@1", "pass@k",
    "rounds", "tokens", "context_overflow",
}  # fmt: skip
ROUND_KEYS = {
    "accuracy", "answered", "ran", "transitions", "prompt_tokens_mean", "completion_tokens_mean",
    "truncation_rate",
}  # fmt: skip


def test_a_summary_run_gets_the_hand_over_block_and_keeps_every_key(tmp_path):
    """The solver boxes the right answer in every round: round 1 hands over its box, so every
    hand-over smuggles the final answer and boxes before the last round."""
    summary = run_eval(
        args(tmp_path, limit=3), ModelArgs(), GenerationArgs(), ProtocolArgs(rounds=2),
        backend_loader=LOAD,
    )  # fmt: skip
    m = summary["metrics"]
    assert set(m) == METRIC_KEYS | {"handover"} and set(m["rounds"]) == ROUND_KEYS
    block = m["handover"]
    assert block["handed"] == [3] and block["counts"]["smuggled"] == [3]
    assert block["smuggled"] == [1.0] and block["boxed"] == [1.0] and block["copied"] == [0.0]
    # "\boxed{5}" and "\boxed{8}" are 9 non-blank characters, short; "\boxed{17}" is 10
    assert block["degenerate"] == [2 / 3] and block["counts"]["degenerate"] == [2]
    stored = json.loads((tmp_path / "out" / SUMMARY_FILE).read_text())
    assert stored["metrics"]["handover"] == block
    table = summary_text(summary).splitlines()
    head = next(line for line in table if line.lstrip().startswith("round  accuracy%"))
    assert head.endswith("truncated%  smuggled%  degenerate%  copied%  boxed%")
    rows = table[table.index(head) + 1 : table.index(head) + 3]
    assert rows[0].split()[-4:] == ["100.0", "66.7", "0.0", "100.0"]
    assert rows[1].split()[-4:] == ["-", "-", "-", "-"]  # the last round hands nothing over


def test_strategies_that_hand_no_state_get_no_hand_over_block():
    records = [{**row("4", True), "carry_over": "tail"}]
    m = compute_metrics([records], samples=1, rounds=1)
    assert set(m) == METRIC_KEYS and "handover" not in m
    one_pass = compute_metrics([[row("4", True)]], 1, 1, protocol={"carry_over": "none"})
    assert "handover" not in one_pass
    single = compute_metrics([[row("4", True)]], 1, 1, protocol={"rounds": 1})
    assert single["handover"]["handed"] == []  # summary with one round: nothing handed over
