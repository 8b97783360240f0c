"""Evaluation: pass@k, per-round metrics on a scripted backend, batching, resume, config
refusal, and the `motif eval` command (one end-to-end run on the tiny random model)."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

from eval_fakes import ARITH, args, loader_for, reply, round_of, rows_of, solver, sum_of
from fakes import ScriptedBackend
from motif.backends.base import SamplingParams
from motif.cli.main import main
from motif.config import GenerationArgs, ModelArgs, ProtocolArgs
from motif.data import load_problems
from motif.engine import RolloutEngine, RoundRecord, Trajectory
from motif.errors import ConfigError, MotifError
from motif.eval.metrics import compute_metrics, pass_at_k, report_ks
from motif.eval.runner import EvalArgs, evaluate, run_eval, sample_record
from motif.eval.store import SAMPLES_FILE, ResultStore
from motif.protocol import Protocol

# --------------------------------------------------------------------------- pass@k


def brute_pass_at_k(n: int, c: int, k: int) -> float:
    outcomes = [True] * c + [False] * (n - c)
    subsets = list(itertools.combinations(range(n), k))
    return sum(any(outcomes[i] for i in s) for s in subsets) / len(subsets)


@pytest.mark.parametrize("n", range(1, 8))
def test_pass_at_k_matches_brute_force(n):
    for c in range(n + 1):
        for k in range(1, n + 1):
            assert pass_at_k(n, c, k) == pytest.approx(brute_pass_at_k(n, c, k), abs=1e-12)


def test_pass_at_k_rejects_bad_arguments():
    with pytest.raises(ValueError):
        pass_at_k(4, 5, 1)
    with pytest.raises(ValueError):
        pass_at_k(4, 1, 5)


def test_report_ks():
    assert report_ks(1) == [1]
    assert report_ks(8) == [1, 2, 4, 8]
    assert report_ks(6) == [1, 2, 4, 6]


# --------------------------------------------------------------------------- per-round


def test_per_round_metrics_on_scripted_backend(tmp_path):
    """Problem 0 is fixed in round 2, problem 1 broken in round 2 and fixed in round 3,
    problem 2 never answered, problem 3 always right."""
    plan = {5: ["1", "5", "5"], 17: ["17", "3", "17"], 8: [None, None, None], 10: ["10"] * 3}

    def script(chat, sample):
        text = reply(plan[sum_of(chat)][round_of(chat) - 1])
        return text + (" pad" * 40 if sum_of(chat) == 8 else "")

    problems = load_problems(ARITH, limit=4)
    engine = RolloutEngine(ScriptedBackend(script), Protocol(rounds=3), SamplingParams(30))
    store = ResultStore(tmp_path, {"k": 1}, samples=1)
    evaluate(engine, problems, store, batch_size=3)
    m = compute_metrics(store.groups(p.id for p in problems), samples=1, rounds=3)
    r = m["rounds"]
    assert r["accuracy"] == [0.5, 0.5, 0.75]
    assert r["answered"] == [0.75, 0.75, 0.75]
    assert [(t["fixed"], t["broken"]) for t in r["transitions"]] == [(1, 1), (1, 0)]
    assert m["pass@1"] == 0.75 and m["correct"] == 3 and m["no_answer"] == 1
    assert r["truncation_rate"] == [0.25, 0.25, 0.25]
    assert m["tokens"]["truncated_any_rate"] == 0.25
    words = len(reply("5").split())
    assert r["completion_tokens_mean"][0] == pytest.approx((3 * words + 30) / 4)
    rows = store.groups(p.id for p in problems)
    first = rows[0][0]
    assert [x["answer"] for x in first["rounds"]] == ["1", "5", "5"]
    assert [x["correct"] for x in first["rounds"]] == [False, True, True]
    ctx = max(x["prompt_tokens"] + x["completion_tokens"] for g in rows for x in g[0]["rounds"])
    assert m["tokens"]["largest_round_context"] == ctx
    gen = [sum(x["completion_tokens"] for x in g[0]["rounds"]) for g in rows]
    assert m["tokens"]["generated_mean"] == pytest.approx(sum(gen) / 4)
    assert m["tokens"]["generated_max"] == max(gen)


def test_early_stopped_trajectory_carries_its_last_answer():
    record = RoundRecord(1, "Q", reply("5"), "think", r"\boxed{5}", "", 3, 4, False)
    traj = Trajectory("What is 2 + 3?", [record], stopped_early=True)
    problem = load_problems(ARITH, limit=1)[0]
    row = sample_record(problem, 0, traj, lambda a, g: a == g)
    m = compute_metrics([[row]], samples=1, rounds=3)
    assert m["rounds"]["accuracy"] == [1.0, 1.0, 1.0]
    assert m["rounds"]["ran"] == [1, 0, 0]
    assert m["tokens"]["stopped_early_rate"] == 1.0


# --------------------------------------------------------------------------- runs


def test_run_eval_writes_samples_and_summary_then_resumes_without_generation(tmp_path):
    calls: list = []
    gen, proto = GenerationArgs(max_new_tokens=64), ProtocolArgs(rounds=2)
    summary = run_eval(
        args(tmp_path), ModelArgs(), gen, proto, backend_loader=loader_for(solver, calls)
    )
    out = tmp_path / "out"
    assert (
        len(calls) == 1 and (out / "summary.json").exists() and (out / "eval_config.json").exists()
    )
    rows = rows_of(out)
    assert len(rows) == 6 and {r["sample"] for r in rows} == {0}
    assert all(r["correct"] is True and len(r["rounds"]) == 2 for r in rows)
    assert summary["metrics"]["pass@1"] == 1.0
    cfg = summary["config"]
    assert cfg["protocol"]["rounds"] == 2 and cfg["model"].startswith("default:")
    assert cfg["sampling"]["later_max_new_tokens"] == 128  # twice round 1 (paper: 1024 -> 2048)
    assert len(cfg["data"]["fingerprint"]) == 64 and summary["versions"]["torch"]
    assert summary["run"]["generated_problems"] == 6
    again = run_eval(
        args(tmp_path), ModelArgs(), gen, proto, backend_loader=loader_for(solver, calls)
    )
    assert len(calls) == 1  # no model loaded, nothing generated
    assert again["run"]["generated_problems"] == 0
    assert again["metrics"] == summary["metrics"] and len(rows_of(out)) == 6


def test_batches_go_through_the_engine(tmp_path):
    backend = ScriptedBackend(solver)
    run_eval(
        args(tmp_path, batch_size=4),
        ModelArgs(),
        GenerationArgs(),
        ProtocolArgs(rounds=3),
        backend_loader=lambda m: backend,
    )
    assert backend.calls == [(4, 1)] * 3 + [(2, 1)] * 3


class Crash(RuntimeError):
    pass


def test_resume_after_interruption_no_duplicates_same_summary(tmp_path):
    gen, proto = GenerationArgs(), ProtocolArgs(rounds=2)
    reference = run_eval(
        args(tmp_path, output_dir=str(tmp_path / "ref")),
        ModelArgs(),
        gen,
        proto,
        backend_loader=loader_for(solver),
    )
    seen = {"n": 0}

    def flaky(chat, sample):
        seen["n"] += 1
        if seen["n"] > 5:  # dies in the middle of the second batch
            raise Crash("killed")
        return solver(chat, sample)

    with pytest.raises(Crash):
        run_eval(args(tmp_path), ModelArgs(), gen, proto, backend_loader=loader_for(flaky))
    out = tmp_path / "out"
    assert len(rows_of(out)) == 2  # the first batch was saved
    with (out / SAMPLES_FILE).open("a") as handle:  # a torn line from a crash mid-write
        handle.write('{"id": "2", "sample": 0, "rou')
    final = run_eval(args(tmp_path), ModelArgs(), gen, proto, backend_loader=loader_for(solver))
    rows = rows_of(out)
    assert sorted(r["id"] for r in rows) == [str(i) for i in range(6)]
    assert final["metrics"] == reference["metrics"]
    assert final["run"]["generated_problems"] == 4


def test_store_drops_duplicates_and_unfinished_problems(tmp_path):
    row = {"id": "a", "sample": 0, "rounds": [], "correct": True}
    lines = [row, row, {**row, "id": "b"}, {**row, "id": "b", "sample": 1}, {**row, "id": "c"}]
    (tmp_path / "eval_config.json").write_text('{"k": 1}')
    (tmp_path / SAMPLES_FILE).write_text("".join(json.dumps(x) + "\n" for x in lines))
    store = ResultStore(tmp_path, {"k": 1}, samples=2)
    assert store.finished("b") and not store.finished("a") and not store.finished("c")
    assert len((tmp_path / SAMPLES_FILE).read_text().splitlines()) == 2


def test_corrupt_middle_line_is_an_error(tmp_path):
    (tmp_path / "eval_config.json").write_text('{"k": 1}')
    (tmp_path / SAMPLES_FILE).write_text('garbage\n{"id": "a"}\n')
    with pytest.raises(MotifError, match="line 1 is corrupt"):
        ResultStore(tmp_path, {"k": 1}, samples=1)


def test_limit_growth_only_generates_the_new_problems(tmp_path):
    gen, proto = GenerationArgs(), ProtocolArgs(rounds=1)
    run_eval(args(tmp_path, limit=2), ModelArgs(), gen, proto, backend_loader=loader_for(solver))
    more = run_eval(
        args(tmp_path, limit=5), ModelArgs(), gen, proto, backend_loader=loader_for(solver)
    )
    assert more["run"]["generated_problems"] == 3 and more["metrics"]["problems"] == 5
    fewer = run_eval(
        args(tmp_path, limit=1), ModelArgs(), gen, proto, backend_loader=loader_for(solver)
    )
    assert fewer["metrics"]["problems"] == 1 and len(rows_of(tmp_path / "out")) == 5


def test_different_configuration_is_refused(tmp_path):
    gen = GenerationArgs()
    run_eval(
        args(tmp_path), ModelArgs(), gen, ProtocolArgs(rounds=2), backend_loader=loader_for(solver)
    )
    with pytest.raises(ConfigError, match=r"different configuration.*protocol\.rounds: 2 -> 3"):
        run_eval(
            args(tmp_path),
            ModelArgs(),
            gen,
            ProtocolArgs(rounds=3),
            backend_loader=loader_for(solver),
        )
    other = GenerationArgs(max_new_tokens=99)
    with pytest.raises(ConfigError, match=r"sampling\.max_new_tokens: 1024 -> 99"):
        run_eval(
            args(tmp_path),
            ModelArgs(),
            other,
            ProtocolArgs(rounds=2),
            backend_loader=loader_for(solver),
        )


def test_samples_without_config_are_refused(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / SAMPLES_FILE).write_text("")
    with pytest.raises(ConfigError, match="no eval_config.json"):
        run_eval(
            args(tmp_path),
            ModelArgs(),
            GenerationArgs(),
            ProtocolArgs(),
            backend_loader=loader_for(solver),
        )


def test_sampling_gives_avg_and_pass_at_k(tmp_path):
    def half_right(chat, sample):  # samples 0 and 2 right, 1 and 3 wrong
        return reply(str(sum_of(chat) + sample % 2))

    gen = GenerationArgs(temperature=0.7, seed=1)
    summary = run_eval(
        args(tmp_path, samples=4, limit=3),
        ModelArgs(),
        gen,
        ProtocolArgs(rounds=1),
        backend_loader=loader_for(half_right),
    )
    m = summary["metrics"]
    assert m["avg@4"] == 0.5 and m["trajectories"] == 12
    assert m["pass@k"] == {"1": 0.5, "2": pytest.approx(1 - 1 / 6), "4": 1.0}
    assert len(rows_of(tmp_path / "out")) == 12


def test_bad_sample_counts():
    with pytest.raises(ConfigError, match="--samples must be >= 1"):
        EvalArgs(benchmark=ARITH, samples=0)
    with pytest.raises(ConfigError, match="needs --temperature"):
        run_eval(
            EvalArgs(benchmark=ARITH, samples=2), ModelArgs(), GenerationArgs(), ProtocolArgs()
        )


def test_default_output_dir():
    assert EvalArgs(benchmark="math500").resolved_output_dir(3) == Path("outputs/eval/math500-r3")
    k = EvalArgs(benchmark="reasoning_gym:chain_sum", samples=4)
    assert k.resolved_output_dir(1) == Path("outputs/eval/rg-chain_sum-r1-k4")
    from motif.carryover import carry_over_class

    ended = carry_over_class("summary", round_end="model")
    assert k.resolved_output_dir(3, ended) == Path("outputs/eval/rg-chain_sum-r3-model-k4")
    tail = carry_over_class("tail")
    assert EvalArgs(benchmark="gsm8k").resolved_output_dir(2, tail) == Path(
        "outputs/eval/gsm8k-r2-tail"
    )


# --------------------------------------------------------------------------- the command


def test_cli_errors_exit_2(capsys, tmp_path):
    assert main(["eval", "--benchmark", ARITH, "--samples", "0"]) == 2
    assert "--samples must be >= 1" in capsys.readouterr().err
    assert main(["eval", "--benchmark", "nonesuch", "--output-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "unknown benchmark 'nonesuch'" in err and "math500" in err and len(err.splitlines()) == 1


def test_cli_end_to_end_on_tiny_model(tiny_checkpoint, tmp_path, capsys):
    out = tmp_path / "run"
    argv = [
        "eval",
        "--model",
        str(tiny_checkpoint),
        "--benchmark",
        ARITH,
        "--limit",
        "2",
        "--rounds",
        "2",
        "--max-new-tokens",
        "4",
        "--output-dir",
        str(out),
        "--json",
    ]
    assert main(argv) == 0
    printed = capsys.readouterr()
    summary = json.loads(printed.out)
    assert summary["metrics"]["problems"] == 2 and summary["run"]["generated_problems"] == 2
    # The machine-dependent choices are recorded with the run (issue 21).
    machine = summary["run"]["machine"]
    assert machine["decode"] == "fast" and machine["compute_dtype"].startswith("torch.")
    assert machine["decode_plan"]["fp32_linear_kernel"] in ("aten", "onednn_packed")
    # The printed viewer command works on the run it names.
    assert f"view the trajectories: motif view {out}" in printed.err
    assert main(["view", str(out)]) == 0
    assert (out / "view.html").stat().st_size > 0
    capsys.readouterr()
    rows = rows_of(out)
    assert len(rows) == 2 and all(len(r["rounds"]) == 2 for r in rows)
    assert all(x["completion_tokens"] <= 8 for r in rows for x in r["rounds"])
    assert main([*argv, "--tail-chunk", "64"]) == 0  # not part of a summary run: it resumes
    printed = capsys.readouterr()
    again = json.loads(printed.out)
    assert again["run"]["generated_problems"] == 0 and len(rows_of(out)) == 2
    assert again["metrics"] == summary["metrics"]
    assert "note: --tail-chunk 64: not used (--tail-* apply to --carry-over tail" in printed.err


def test_missing_model_is_named_before_the_run_identity(tiny_checkpoint, tmp_path, capsys):
    """Found by a user test: a typo'd --model on an existing run said "different configuration"."""
    out = tmp_path / "run"
    base = ["eval", "--benchmark", ARITH, "--limit", "1", "--rounds", "1", "--max-new-tokens", "2"]
    assert main([*base, "--model", str(tiny_checkpoint), "--output-dir", str(out)]) == 0
    capsys.readouterr()
    for flags, message in [
        (["--model", str(tmp_path / "nope")], "does not exist"),
        (
            ["--model", str(tiny_checkpoint), "--adapter", str(tmp_path / "no-adapter")],
            "adapter directory",
        ),
    ]:
        assert main([*base, *flags, "--output-dir", str(out)]) == 2
        err = capsys.readouterr().err
        assert message in err and "different configuration" not in err


def test_eval_refuses_a_task_knob_out_of_range(tmp_path, capsys):
    flags = ["--benchmark", "reasoning_gym:chain_sum", "--output-dir", str(tmp_path / "o")]
    assert main(["eval", *flags, "--task-config", '{"min_terms": 5, "max_terms": 2000}']) == 2
    err = capsys.readouterr().err
    assert "--task-config max_terms must be a whole number from 1 to 1000" in err
    assert err.count("\n") == 1 and not (tmp_path / "o").exists()
