"""studies.replicate and its summary: the held-out split, resumption and the comparisons."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from eval_fakes import greedy, write_run
from motif.runs.training import step_seconds
from studies import jobs, replicate, wallclock
from studies import replicate_layout as layout
from studies import replicate_summary as summary

ROOT = Path(__file__).parents[2]


@pytest.fixture(autouse=True)
def repo_root(monkeypatch):
    monkeypatch.chdir(ROOT)  # the script reads recipes/replicate/ relative to the checkout


def test_heldout_excludes_training_and_demonstration_questions(tmp_path):
    from motif.data import load_problems
    from motif.training.demos import load_items

    path = replicate.heldout(tmp_path, 40)
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(rows) == 40 and len({r["question"] for r in rows}) == 40
    sft, train = layout.recipe("sft"), layout.recipe("motif")
    seen = {p.question for p in load_items("chain_sum", sft["num_examples"], 0, sft["task_config"])}
    config = dict(train["task_config"], size=train["dataset_size"])
    seen |= {
        p.question
        for p in load_problems(train["dataset"], task_config=config, seed=train["dataset_seed"])
    }
    assert not seen & {r["question"] for r in rows}
    assert all(r["answer"].lstrip("-").isdigit() for r in rows)
    assert replicate.heldout(tmp_path, 40) == path  # an existing set is kept as is


def _metrics(run: Path, seconds: list[float]) -> None:
    run.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps({"step": i + 1, "step_seconds": s}) for i, s in enumerate(seconds)]
    (run / "metrics.jsonl").write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize(
    ("grpo", "motif", "every", "expected"),
    [
        ([1.0] * 40, [2.0] * 10, 10, 20),  # MOTIF took 20 s: GRPO's checkpoint-20
        ([1.0] * 40, [2.0] * 12, 10, 20),  # 24 s: the last checkpoint inside the budget
        ([1.0] * 15, [2.0] * 20, 10, 10),  # GRPO never used the budget: its last checkpoint
        ([5.0] * 10, [1.0] * 2, 5, 5),  # nothing fits: the first checkpoint
    ],
)
def test_wall_matched_step(tmp_path, grpo, motif, every, expected):
    _metrics(tmp_path / "g", grpo)
    _metrics(tmp_path / "m", motif)
    assert wallclock.wall_matched_step(tmp_path / "g", tmp_path / "m", every) == expected


def test_a_resumed_step_counts_once(tmp_path):
    _metrics(tmp_path, [1.0, 2.0, 3.0])
    with (tmp_path / "metrics.jsonl").open("a") as f:
        f.write(json.dumps({"step": 3, "step_seconds": 4.0}) + "\n")
    assert step_seconds(tmp_path) == {1: 1.0, 2: 2.0, 3: 4.0}


def test_train_job_resumes_from_a_checkpoint_else_starts_over(tmp_path):
    job = replicate.train_job(tmp_path, "motif", 3)
    assert job.argv[-1] == "--overwrite" and "--seed" in job.argv
    assert job.argv[job.argv.index("--output-dir") + 1] == str(tmp_path / "motif-s3")
    state = tmp_path / "motif-s3" / "checkpoint-10" / "trainer_state.json"
    state.parent.mkdir(parents=True)
    state.write_text("{}")
    assert replicate.train_job(tmp_path, "motif", 3).argv[-1] == "--resume"


def test_run_jobs_skips_finished_and_stops_on_failure(tmp_path, capsys):
    done = tmp_path / "done"
    done.write_text("")
    ok = jobs.Job("ok", [sys.executable, "-c", "print('hi')"])
    skipped = jobs.Job("skipped", [sys.executable, "-c", "raise SystemExit(3)"], done)
    jobs.run_jobs([skipped, ok], 2, tmp_path / "logs")
    assert "[done] skipped" in capsys.readouterr().out
    assert (tmp_path / "logs" / "ok.log").read_text().strip() == "hi"
    bad = jobs.Job("bad", [sys.executable, "-c", "raise SystemExit(3)"])
    with pytest.raises(SystemExit, match="bad failed"):
        jobs.run_jobs([bad], 1, tmp_path / "logs")


def _eval(ids: list[str], correct: list[bool]) -> dict:
    return {
        "ids": ids,
        "correct": correct,
        "format": correct,
        "last_number": [[c] for c in correct],
    }


def test_paired_table_reads_the_eval_dirs_through_motif_compare(tmp_path):

    steps = layout.recipe("motif")["max_steps"]
    for method in ("grpo", "motif"):
        _metrics(tmp_path / f"{method}-s1", [1.0] * steps)
    write_run(tmp_path / "eval" / f"motif-s1@{steps}-r1", greedy("1100"))
    write_run(tmp_path / "eval" / f"grpo-s1@{steps}-r1", greedy("1000"))
    lines = summary.paired_table(tmp_path, [1]).splitlines()
    # equal step times: the wall-clock match is GRPO's checkpoint of the same step
    assert lines[2] == "| 1 | 1 round | +25.0 ± 21.7 points | +25.0 ± 21.7 points |"
    assert lines[3] == "| 1 | 2 rounds | — | — |"  # not evaluated yet
    write_run(tmp_path / "eval" / f"motif-s1@{steps}-r2", greedy("11"))
    write_run(tmp_path / "eval" / f"grpo-s1@{steps}-r2", greedy("111"))
    with pytest.raises(ValueError, match="different items"):
        summary.paired_table(tmp_path, [1])


@pytest.mark.parametrize(
    ("evals", "expected"),
    [
        ([None], "—"),
        ([_eval(["1", "2", "3", "4"], [True, False, False, False])], "25.0 ± 21.7"),
        (
            [_eval(["1", "2"], [True, False]), _eval(["1", "2"], [True, True]), None],
            "75.0 (50.0–100.0)",
        ),
    ],
)
def test_table_cells(evals, expected):
    assert summary.cell(evals) == expected


def test_round_one_summary_is_checked_against_the_demonstration():
    from motif.training.demos import demonstration_responses, problem_from_entry

    question = "State the final answer to the following arithmetic problem: 7 + 9 + 4 ="
    problem = problem_from_entry({"question": question, "answer": "20"})
    right, last = demonstration_responses(problem, 2)
    wrong = right.replace("Remaining: + 4", "Remaining: - 4")
    assert wrong != right

    def row(first: str, rounds: int = 2) -> dict:
        texts = [first, last][:rounds]
        return {"question": question, "gold": "20", "rounds": [{"text": t} for t in texts]}

    assert summary.summary_as_demonstrated(row(right)) is True
    assert summary.summary_as_demonstrated(row(wrong)) is False
    assert summary.summary_as_demonstrated(row("no tags")) is False
    assert summary.summary_as_demonstrated(row(right, rounds=1)) is None


def test_publish_copies_tables_metrics_and_eval_summaries(tmp_path):
    out, dest = tmp_path / "runs", tmp_path / "docs"
    _metrics(out / "grpo-s1", [1.0, 2.0])
    (out / "eval" / "base-r1").mkdir(parents=True)
    (out / "eval" / "base-r1" / "summary.json").write_text('{"accuracy": 0.5}')
    (out / "eval" / "unfinished-r2").mkdir()
    (out / "summary.md").write_text("# table")
    (out / "training_report_training.png").write_bytes(b"png")
    copied = summary.publish(out, dest, [1])
    assert {p.relative_to(dest).as_posix() for p in copied} == {
        "summary.md",
        "training_report_training.png",
        "grpo-s1.metrics.jsonl",
        "eval/base-r1.json",
    }
    assert (dest / "grpo-s1.metrics.jsonl").read_text() == (
        out / "grpo-s1" / "metrics.jsonl"
    ).read_text()


def test_a_finished_run_is_continued_when_its_recipe_asks_for_more_steps(tmp_path):
    run = tmp_path / "grpo-s1"
    _metrics(run, [1.0] * 5)
    job = jobs.Job("grpo-s1", ["true"], run / "adapter_model.safetensors", steps=5)
    assert not job.is_done()  # no final adapter yet
    (run / "adapter_model.safetensors").write_bytes(b"")
    assert job.is_done() and layout.finished(run, 5)
    job.steps = 8  # the recipe's max_steps was raised
    assert not job.is_done() and not layout.finished(run, 8)


def test_eval_and_transfer_jobs_cover_finished_seeds_only(tmp_path):
    for method in ("grpo", "motif"):
        run = tmp_path / f"{method}-s1"
        _metrics(run, [1.0] * layout.recipe(method)["max_steps"])
        (run / "adapter_model.safetensors").write_bytes(b"")
    _metrics(tmp_path / "grpo-s2", [1.0] * 3)  # seed 2 still training
    steps = layout.recipe("motif")["max_steps"]
    names = [j.name for j in replicate.eval_jobs(tmp_path, [1, 2], ["--benchmark", "x"])]
    assert names[:4] == ["eval base-r1", "eval base-r2", "eval sft-r1", "eval sft-r2"]
    assert f"eval motif-s1@{steps}-r1" in names and not any("-s2@" in n for n in names)
    assert all(n.endswith("-r2") for n in names[-2:])  # MOTIF's curve comes last
    transfer = [j.name for j in replicate.transfer_jobs(tmp_path, [1, 2], "data", 200)]
    # equal step times: the wall-clock match is GRPO's own checkpoint of the same step, listed once
    assert transfer[0] == f"eval gsm8k-grpo-s1@{steps}-r1" and len(transfer) == 8
    assert all(n.endswith("-r1") for n in transfer[:4])
    single = replicate.transfer_jobs(tmp_path, [1], "data", 200, protocols=(1,))
    assert [j.name for j in single] == [n for n in transfer if n.endswith("-r1")]


def test_transfer_covers_the_wall_clock_match(tmp_path):
    steps, grpo_steps = (
        layout.recipe("motif")["max_steps"],
        layout.recipe("grpo")["max_steps"],
    )
    _metrics(tmp_path / "grpo-s1", [1.0] * grpo_steps)
    _metrics(tmp_path / "motif-s1", [2.0] * steps)  # MOTIF's time holds twice GRPO's steps
    for method in ("grpo", "motif"):
        (tmp_path / f"{method}-s1" / "adapter_model.safetensors").write_bytes(b"")
    wall = wallclock.wall_matched_step(tmp_path / "grpo-s1", tmp_path / "motif-s1", 5)
    assert wall > steps
    names = [j.name for j in replicate.transfer_jobs(tmp_path, [1], "data", 200, protocols=(1,))]
    expected = [f"grpo-s1@{steps}", f"motif-s1@{steps}", f"grpo-s1@{wall}", "sft", "base"]
    assert names == [f"eval gsm8k-{n}-r1" for n in expected]


@pytest.mark.parametrize(
    ("texts", "skipped"),
    [
        (["Start with 9. 9 + 2 = 11. 11 - 6 = 5. \\boxed{5}"], False),
        (["Start with 9. 9 + 2 = 11. \\boxed{11}"], True),  # stopped after one addition
        (["Start with 9. 9 + 2 = 11.", "Continue from 11. 11 - 6 = 5."], False),
        (["Start with 9.", "Continue from the partial result 9. 9 + 2 = 11."], True),
    ],
)
def test_skipped_operations_are_counted_over_all_rounds(texts, skipped):
    question = "State the final answer to the following arithmetic problem: 9 + 2 - 6 ="
    row = {"question": question, "gold": "5", "rounds": [{"text": t} for t in texts]}
    assert summary.skips_an_operation(row) is skipped


def test_skipped_operations_need_a_chain_sum():
    row = {"question": "Janet has 3 apples. How many?", "gold": "3", "rounds": [{"text": "3"}]}
    assert summary.skips_an_operation(row) is None
