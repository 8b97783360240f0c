"""`motif report`: the side-by-side table, details, plots, training curves and errors."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from eval_fakes import ARITH, loader_for, reply, solver, sum_of
from motif.cli.main import main
from motif.config import GenerationArgs, ModelArgs, ProtocolArgs
from motif.errors import MotifError
from motif.eval.runner import EvalArgs, run_eval
from motif.report import load_runs, metric_key, summary_text, write_report
from motif.report.training import ema, method_of, training_curves
from motif.runs.training import TrainRun, load_training_run


def late_solver(chat, sample):
    """Wrong in round 1, right afterwards."""
    if "Progress in round" not in chat[-1]["content"]:
        return reply("0")
    return reply(str(sum_of(chat)))


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    gen = GenerationArgs(max_new_tokens=64)
    for name, rounds, script, limit in (("r3", 3, late_solver, 4), ("r1", 1, solver, None)):
        ev = EvalArgs(benchmark=ARITH, output_dir=str(root / name), limit=limit)
        run_eval(
            ev, ModelArgs(), gen, ProtocolArgs(rounds=rounds), backend_loader=loader_for(script)
        )
    train = root / "train"
    train.mkdir()
    lines = [
        json.dumps({"step": 1, "reward": 0.5, "future_accuracy": 0.2}),
        json.dumps({"step": 2, "reward": 0.9}),  # future accuracy not logged this step
        "not json",
        json.dumps({"loss": 1.0}),  # no step
        json.dumps({"step": 3, "reward": 1.1, "future_accuracy": 0.6}),
        '{"step": 4, "rew',  # torn last line
    ]
    (train / "metrics.jsonl").write_text("\n".join(lines))
    return root


def test_report_table_and_plots(runs, tmp_path):
    out = write_report([runs / "r3", runs / "r1", runs / "train"], tmp_path / "rep" / "report.md")
    text = out.read_text()
    assert "| run | eval_arith |" in text
    assert "| SmolLM2-135M-Instruct, 3 rounds | 100.0 (n=4) |" in text
    assert "| SmolLM2-135M-Instruct, 1 round | 100.0 |" in text
    assert "0.0 → 100.0 → 100.0" in text  # accuracy by round of the 3-round run
    assert "| train | 3 | 3 | 1.100 | 0.600 |" in text
    for png in ("report_accuracy_by_round.png", "report_training.png"):
        path = out.parent / png
        assert path.stat().st_size > 1000 and f"]({png})" in text
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_parent_directory_is_searched_one_level_down(runs):
    evals, trains = load_runs([runs])
    assert sorted(r.path.name for r in evals) == ["r1", "r3"]
    assert [t.label for t in trains] == ["train"] and len(trains[0].rows) == 3


def test_same_label_on_same_benchmark_is_disambiguated(runs, tmp_path):
    evals, _ = load_runs([runs / "r1", runs / "r1"])
    assert evals[0].label.endswith("[r1]")


def test_training_only_report_and_missing_keys(tmp_path):
    run = tmp_path / "grpo"
    run.mkdir()
    (run / "metrics.jsonl").write_text(json.dumps({"step": 1, "rewards/accuracy/mean": 1.0}))
    text = write_report([run], tmp_path / "t.md").read_text()
    assert "| grpo | 1 | 1 | – | – |" in text and (tmp_path / "t_training.png").exists()
    assert "pass@1" not in text


def test_metric_key_matching():
    rows = [{"step": 1, "rewards/future_accuracy/mean": 1.0, "rewards/future_accuracy/std": 0.1}]
    assert metric_key(rows, "future_accuracy") == "rewards/future_accuracy/mean"
    assert metric_key([{"reward": 1.0, "reward_std": 0.2}], "reward") == "reward"
    assert metric_key([{"step": 1}], "reward") is None


def test_report_errors(tmp_path):
    with pytest.raises(MotifError, match="holds no summary.json"):
        write_report([tmp_path], tmp_path / "r.md")
    with pytest.raises(MotifError, match="is not a directory"):
        write_report([tmp_path / "nope"], tmp_path / "r.md")


def test_report_hand_over_watch(runs, tmp_path):
    """r3 boxes 0 in round 1 (short, boxed, not the final answer) and the final answer from
    round 2 on (smuggled, boxed); r1 has no round that hands over: no row."""
    text = write_report([runs / "r3", runs / "r1"], tmp_path / "h.md").read_text()
    section = text.split("## Hand-over watch (% of hand-overs, by round)\n\n")[1]
    head, rule, row, *rest = section.split("\n")
    assert head == (
        "| run | benchmark | hand-overs by round | answer smuggled % | empty or degenerate state % "
        "| state copied % | box before the last round % |"
    )
    summary = json.loads((runs / "r3" / "summary.json").read_text())
    short = summary["metrics"]["handover"]["degenerate"][1]
    assert row == (
        f"| SmolLM2-135M-Instruct, 3 rounds | eval_arith | 4 / 4 | 0.0 → 100.0 "
        f"| 100.0 → {100 * short:.1f} | 0.0 → 0.0 | 100.0 → 100.0 |"
    )
    assert rest[0] == ""  # r1: one round, nothing handed over, no row
    r1 = json.loads((runs / "r1" / "summary.json").read_text())["metrics"]["handover"]
    assert r1["handed"] == [] and r1["smuggled"] == []


def test_summary_text(runs):
    summary = json.loads((runs / "r3" / "summary.json").read_text())
    text = summary_text(summary)
    assert "pass@1 100.0%" in text and "round 1->2: fixed 4, broken 0" in text


def test_report_command(runs, tmp_path, capsys):
    out = tmp_path / "cmp.md"
    assert main(["report", str(runs / "r3"), str(runs / "r1"), "--output", str(out)]) == 0
    assert Path(capsys.readouterr().out.strip()) == out and out.exists()
    assert main(["report", str(tmp_path / "missing"), "--output", str(out)]) == 2
    assert "is not a directory" in capsys.readouterr().err


def test_metric_key_prefers_segments():
    rows = [{"rewards/future_accuracy_reward/mean": 1.0, "rewards/accuracy/mean": 0.5}]
    assert metric_key(rows, "future_accuracy") == "rewards/future_accuracy_reward/mean"
    assert metric_key(rows, "reward") is None


# --------------------------------------------------------------------------- training curves


def test_ema_is_tensorboards_debiased_smoothing():
    assert ema([1.0, 1.0, 1.0], 0.9) == pytest.approx([1.0, 1.0, 1.0])  # no pull towards 0
    # s1 = 0.5*2 / (1 - 0.5) = 2; s2 = (0.5*1 + 0.5*4) / (1 - 0.25) = 10/3
    assert ema([2.0, 4.0], 0.5) == pytest.approx([2.0, 10 / 3])
    assert ema([3.0, 1.0], 0.0) == [3.0, 1.0]
    with pytest.raises(MotifError, match="smoothing must be in"):
        ema([1.0], 1.0)


@pytest.mark.parametrize(
    ("label", "method"),
    [("grpo-s1", "grpo"), ("motif_seed2", "motif"), ("motif-s-3", "motif"), ("run", "run")],
)
def test_method_of(label, method):
    assert method_of(label) == method


def train_dir(root: Path, name: str, rows: list[dict], config: str | None = None) -> Path:
    run = root / name
    run.mkdir()
    (run / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    if config is not None:
        (run / "motif_config.yaml").write_text(config)
    return run


def test_curves_pool_seeds_and_x_axes(tmp_path):
    config = "prompts_per_device: 2\nnum_generations: 8\ngradient_accumulation_steps: 2\n"
    for seed, scale in ((1, 1.0), (2, 3.0)):
        rows = [{"step": s, "reward": scale * s, "step_seconds": 30.0 * seed} for s in (1, 2, 3)]
        rows.insert(1, {"step": 2, "reward": 99.0})  # superseded by the resumed run's record
        train_dir(tmp_path, f"grpo-s{seed}", rows, config)
    train_dir(tmp_path, "motif", [{"step": 1, "reward": 1.0, "step_time": 60.0}], config)
    trains = [load_training_run(p) for p in sorted(tmp_path.iterdir())]
    grpo, motif = training_curves(trains, "reward", "step", smoothing=0.0)
    assert grpo.label == "grpo (mean of 2 seeds, min-max band)" and grpo.x == [1, 2, 3]
    assert grpo.smooth == [2.0, 4.0, 6.0] and grpo.low == [1.0, 2.0, 3.0]
    assert grpo.high == [3.0, 6.0, 9.0] and motif.low is None and motif.raw == [1.0]
    grpo, _ = training_curves(trains, "reward", "samples", smoothing=0.0)
    assert grpo.x == [32, 64, 96]  # 2 prompts x 8 generations x 2 accumulation steps
    grpo, motif = training_curves(trains, "reward", "wall-clock", smoothing=0.0)
    assert grpo.x == [0.75, 1.5, 2.25] and motif.x == [1.0]  # minutes, mean over seeds
    (tmp_path / "motif" / "motif_config.yaml").unlink()
    with pytest.raises(MotifError, match="motif: samples per step need"):
        training_curves(trains, "reward", "samples")


def test_report_x_axis_and_smoothing_options(tmp_path):
    run = train_dir(tmp_path, "grpo", [{"step": 1, "reward": 1.0}])
    with pytest.raises(MotifError, match="--x-axis must be one of step, samples, wall-clock"):
        write_report([run], tmp_path / "r.md", x_axis="time")
    with pytest.raises(MotifError, match="logs no step_seconds or step_time"):
        write_report([run], tmp_path / "r.md", x_axis="wall-clock")
    with pytest.raises(MotifError, match="smoothing must be in"):
        write_report([run], tmp_path / "r.md", smoothing=-0.1)
    assert not (tmp_path / "r.md").exists()


# --------------------------------------------------------------------------- non-finite values

NAN, INF = float("nan"), float("inf")


def test_ema_skips_non_finite_values_like_tensorboard():
    """Issue 31: one NaN ended the smoothed curve for every later step."""
    # s1 = 0.5*2 / 0.5 = 2; NaN skipped (the count of values stays 1); s2 = (0.5 + 2) / 0.75
    out = ema([2.0, NAN, 4.0, INF, 4.0], 0.5)
    assert out[0] == 2.0 and math.isnan(out[1]) and out[3] == INF
    assert out[2] == pytest.approx(10 / 3) and out[4] == pytest.approx((5 / 4 + 2) / (7 / 8))


def test_curves_skip_non_finite_values_and_step_times(tmp_path):
    rows = [
        {"step": 1, "reward": 1.0, "step_seconds": 60.0},
        {"step": 2, "reward": NAN, "step_seconds": 60.0},
        {"step": 3, "reward": 3.0, "step_seconds": NAN},  # its time is unknown
        {"step": 4, "reward": INF, "step_seconds": 60.0},
        {"step": 5, "reward": 5.0, "step_seconds": 60.0},
    ]
    run = TrainRun(train_dir(tmp_path, "grpo", rows), rows)
    (curve,) = training_curves([run], "reward", "step", smoothing=0.5)
    assert curve.x == [1, 3, 5] and curve.raw == [1.0, 3.0, 5.0]
    # EMA 0.5 of 1, 3, 5 (the NaN and inf skipped): 0.5/0.5, 1.75/0.75, 3.375/0.875
    assert curve.smooth == pytest.approx([1.0, 7 / 3, 27 / 7])
    (curve,) = training_curves([run], "reward", "wall-clock", smoothing=0.0)
    assert curve.x == [1.0, 4.0] and curve.raw == [1.0, 5.0]  # step 3 has no time, no point


def test_seeds_pool_over_their_finite_steps(tmp_path):
    one = [{"step": s, "reward": float(s)} for s in (1, 2, 3)]
    two = [{"step": 1, "reward": 3.0}, {"step": 2, "reward": NAN}, {"step": 3, "reward": 5.0}]
    trains = [TrainRun(train_dir(tmp_path, f"grpo-s{i}", r), r) for i, r in ((1, one), (2, two))]
    (curve,) = training_curves(trains, "reward", "step", smoothing=0.0)
    assert curve.x == [1, 3] and curve.smooth == [2.0, 4.0]


def test_report_says_what_it_skipped(tmp_path):
    rows = [
        {"step": 1, "reward": 0.5, "future_accuracy": 0.2},
        {"step": NAN, "reward": 9.0},  # no usable step: a bad line
        {"step": 2, "reward": 0.7, "future_accuracy": NAN},
        {"step": 3, "reward": NAN, "future_accuracy": INF},
    ]
    run = train_dir(tmp_path, "grpo", rows)
    text = write_report([run], tmp_path / "r.md").read_text()
    assert "| grpo | 3 | 3 | 0.700 | 0.200 |" in text  # the last finite values
    assert "- grpo: 1 non-finite reward value(s) skipped (NaN or inf; step 3)" in text
    assert "- grpo: 2 non-finite future_accuracy value(s) skipped (NaN or inf; step 2, 3)" in text
    assert metric_key([{"step": 1, "reward": NAN}], "reward") is None


def test_a_non_finite_step_time_is_left_out_and_said(tmp_path):
    rows = [{"step": s, "reward": 1.0, "step_seconds": NAN if s == 2 else 6.0} for s in (1, 2, 3)]
    run = train_dir(tmp_path, "grpo", rows)
    text = write_report([run], tmp_path / "r.md", x_axis="wall-clock").read_text()
    assert "- grpo: 1 non-finite step_seconds value(s) skipped (NaN or inf; step 2)" in text


def test_summary_text_counts_outcomes_and_the_measured_time(tmp_path):
    gen, proto = GenerationArgs(max_new_tokens=64), ProtocolArgs(rounds=1)
    for limit in (3, 2):
        ev = EvalArgs(benchmark=ARITH, output_dir=str(tmp_path / "r"), limit=limit)
        summary = run_eval(ev, ModelArgs(), gen, proto, backend_loader=loader_for(solver))
    text = summary_text(summary)
    assert "no answer 0   ungraded 0   truncated" in text
    assert "for 3 problems (summed over the runs of this directory)" in text
    assert "holds 3 finished problems; this summary covers the first 2 (--limit)" in text


def test_training_runs_show_their_last_held_out_check_and_hand_over_watch(tmp_path):
    """The held-out check during training (heldout/* in metrics.jsonl) gets its own table:
    the last check's rates and the hand-over watch, missing where nothing was counted."""
    from motif.report.tables import heldout_table

    checked = [
        {"step": 5, "heldout/accuracy": 0.5, "heldout/handover_copied": 0.25},
        {"step": 6, "reward": 1.0},
        {"step": 10, "heldout/accuracy": 0.64, "heldout/format_rate": 1.0},
    ]
    runs = [
        TrainRun(train_dir(tmp_path, "motif", checked), checked),
        TrainRun(train_dir(tmp_path, "grpo", [{"step": 1}]), [{"step": 1}]),
    ]
    table = heldout_table(runs).splitlines()
    assert len(table) == 3 and table[0].startswith("| run | check at step | accuracy |")
    assert table[2].startswith("| motif | 10 | 64.0 | 100.0 | – |")  # the last check only
    assert table[2].count("–") == 6  # state_right, skipped_steps and the 4 flags
    assert heldout_table(runs[1:]) is None
