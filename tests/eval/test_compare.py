"""`motif compare` and motif.eval.compare: paired differences, standard errors, bad input."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest

from eval_fakes import ARITH, greedy, loader_for, reply, sum_of, write_run
from motif.cli.main import main
from motif.config import GenerationArgs, ModelArgs, ProtocolArgs
from motif.errors import ConfigError
from motif.eval.compare import (
    Z95,
    accuracy_interval,
    compare_dirs,
    compare_runs,
    comparison_table,
    load_scores,
    mean_se,
    over_seeds,
    paired_interval,
    samples_to_reach,
    wilson_interval,
)
from motif.eval.runner import EvalArgs, run_eval


def agresti_min(b: int, c: int, n: int) -> tuple[float, float]:
    """Agresti and Min (2005), by hand: 1/2 added to each cell of the 2 x 2 table, then Wald."""
    b1, c1, m = b + 0.5, c + 0.5, n + 2
    half = 1.959964 * math.sqrt((b1 + c1) - (b1 - c1) ** 2 / m) / m
    return (b1 - c1) / m - half, (b1 - c1) / m + half


# (A, B, accuracy A, accuracy B, difference, SE, 95% CI, A better, B better); SEs by hand:
# one sample per item, Agresti's sqrt((b + c) - (b - c)^2 / n) / n (None: no discordant pair,
# a variance of 0) and Agresti-Min's interval; avg@K, the plug-in standard deviation of the
# per-item differences over sqrt(n) and difference +- 1.96 SE.
SE_1100 = math.sqrt(1 - 1 / 4) / 4
SE_10110 = math.sqrt(3 - 1 / 5) / 5
CASES = [
    (greedy("1100"), greedy("1000"), 0.5, 0.25, 0.25, SE_1100, (-0.2756, 0.6090), 1, 0),
    (greedy("10110"), greedy("01100"), 0.6, 0.4, 0.2, SE_10110, (-0.4070, 0.6928), 2, 1),
    # ? = wrong
    (greedy("1?0"), greedy("010"), 1 / 3, 1 / 3, 0.0, math.sqrt(2) / 3, (-0.6790, 0.6790), 1, 1),
    (greedy("1010"), greedy("1010"), 0.5, 0.5, 0.0, None, (-0.3267, 0.3267), 0, 0),
    (  # avg@2: items score 1, .5, 0 against .5, .5, .5; differences .5, 0, -.5
        {"0": [True, True], "1": [True, False], "2": [False, False]},
        {"0": [True, False], "1": [False, True], "2": [False, True]},
        0.5,
        0.5,
        0.0,
        math.sqrt(1 / 6) / math.sqrt(3),
        (-1.959964 * math.sqrt(1 / 18), 1.959964 * math.sqrt(1 / 18)),
        1,
        1,
    ),
]


@pytest.mark.parametrize(
    ("a", "b", "acc_a", "acc_b", "diff", "se", "ci", "a_more", "b_more"), CASES
)
def test_paired_difference_and_standard_error(
    tmp_path, a, b, acc_a, acc_b, diff, se, ci, a_more, b_more
):
    runs = [load_scores(write_run(tmp_path / name, o)) for name, o in (("a", a), ("b", b))]
    c = compare_runs(*runs)
    assert (c.items, c.a_better, c.b_better) == (len(a), a_more, b_more)
    assert c.accuracy_a == pytest.approx(acc_a) and c.accuracy_b == pytest.approx(acc_b)
    assert c.difference == pytest.approx(diff, abs=1e-12)
    assert c.se is None if se is None else c.se == pytest.approx(se)
    assert c.ci95 == pytest.approx(ci, abs=1e-4)
    if runs[0].samples == 1:
        assert c.ci95 == pytest.approx(agresti_min(a_more, b_more, len(a)))


@pytest.mark.parametrize("flags", ["1", "0", "11", "00"])
def test_no_discordant_pair_on_one_or_two_items_is_not_a_certainty(tmp_path, flags):
    """Issue 31: 1-2 items right (or wrong) in both runs printed +0.0 ± 0.0 [+0.0, +0.0]."""
    runs, [c] = compare_dirs([write_run(tmp_path / name, greedy(flags)) for name in ("a", "b")])
    assert c.difference == 0.0 and c.se is None
    low, high = c.ci95
    assert low < 0 < high and high - low > 0.5  # wide, as two items must leave it
    assert (low, high) == pytest.approx(agresti_min(0, 0, len(flags)))
    table = comparison_table(runs, [c])
    assert "| +0.0 ± n/a | [" in table and "[+0.0, +0.0]" not in table
    assert "Agresti-Min" in table


def test_several_samples_with_equal_differences_have_no_interval(tmp_path):
    same = {"0": [True, False], "1": [True, True]}
    runs, [c] = compare_dirs([write_run(tmp_path / n, same) for n in ("a", "b")])
    assert (c.difference, c.se, c.ci95) == (0.0, None, None)
    assert "| +0.0 ± n/a | n/a |" in comparison_table(runs, [c])


def test_mean_se_is_the_binomial_error_for_flags():
    assert mean_se([1, 1, 0, 0, 0]) == pytest.approx((0.4, math.sqrt(0.4 * 0.6 / 5)))
    assert abs(Z95 - 1.959964) < 1e-6
    with pytest.raises(ValueError, match="at least one"):
        mean_se([])


@pytest.mark.parametrize("values", [[1.0], [0.0], [1, 1, 1], [0.25, 0.25]])
def test_mean_se_cannot_be_estimated_from_one_value_or_no_spread(values):
    assert mean_se(values) == (pytest.approx(values[0]), None)


@pytest.mark.parametrize(
    ("successes", "n", "expected"),
    [  # Wilson (1927); the values of Agresti and Coull (1998) and any table of the score interval
        (0, 10, (0.0, 0.2775)),
        (10, 10, (0.7225, 1.0)),
        (5, 10, (0.2366, 0.7634)),
        (1, 1, (0.2065, 1.0)),
    ],
)
def test_wilson_interval(successes, n, expected):
    assert wilson_interval(successes, n) == pytest.approx(expected, abs=1e-4)


def test_interval_input_is_checked():
    with pytest.raises(ValueError, match="0 <= successes <= n"):
        wilson_interval(3, 2)
    with pytest.raises(ValueError, match="a_better \\+ b_better <= n"):
        paired_interval(2, 2, 3)


def test_accuracy_interval_of_a_run(tmp_path):
    all_right = load_scores(write_run(tmp_path / "a", greedy("11")))
    assert accuracy_interval(all_right) == pytest.approx(wilson_interval(2, 2))
    same = load_scores(write_run(tmp_path / "b", {"0": [True, False], "1": [False, True]}))
    assert accuracy_interval(same) is None  # avg@2, every item 0.5: no spread


def test_unreadable_duplicate_and_unfinished_rows(tmp_path):
    run = write_run(tmp_path / "a", {"0": [True, False], "1": [True, True]})
    with (run / "samples.jsonl").open("a") as f:
        f.write(json.dumps({"id": "0", "sample": 1, "correct": True}) + "\n")  # a second copy
        f.write(json.dumps({"id": "2", "sample": 0, "correct": True}) + "\n")  # 1 of 2 samples
        f.write('{"id": "3", "sam')  # cut off mid-line
    scores = load_scores(run)
    assert scores.scores == {"0": 0.5, "1": 1.0} and scores.samples == 2
    assert scores.label == "a"


def _grid(tmp_path: Path) -> Path:
    (tmp_path / "grid" / "cells" / "x").mkdir(parents=True)
    return tmp_path / "grid"


def _no_config(tmp_path: Path) -> Path:
    (tmp_path / "bare").mkdir()
    (tmp_path / "bare" / "samples.jsonl").write_text('{"id": "0", "sample": 0, "correct": true}\n')
    return tmp_path / "bare"


def _unfinished(tmp_path: Path) -> Path:
    run = write_run(tmp_path / "half", {"0": [True, True]})
    lines = (run / "samples.jsonl").read_text().splitlines()
    (run / "samples.jsonl").write_text(lines[0] + "\n")
    return run


BAD = [
    (lambda t: [t / "a", t / "missing"], "missing is not a directory"),
    (lambda t: [t / "a", t], "is not an eval run (no samples.jsonl)"),
    (lambda t: [t / "a", _grid(t)], "is an equal-budget grid, not an eval run: pass one of its"),
    (lambda t: [t / "a", _no_config(t)], "samples per item unknown"),
    (lambda t: [t / "a", _unfinished(t)], "holds no finished item (all 2 samples stored)"),
    (lambda t: [t / "a"], "at least two eval run directories"),
    (
        lambda t: [t / "a", write_run(t / "b", greedy("111"))],
        "hold different items (1 only in the first, 0 only in the second, 0 with another",
    ),
    (
        lambda t: [
            t / "a",
            write_run(t / "b", {"0": [True], "1": [True], "2": [True], "9": [True]}),
        ],
        "(1 only in the first, 1 only in the second",
    ),
    (
        lambda t: [t / "a", write_run(t / "b", greedy("1111"), question="What is {} + 1?")],
        "(0 only in the first, 0 only in the second, 4 with another question under the same id)",
    ),
]


@pytest.mark.parametrize(("dirs", "message"), BAD)
def test_bad_input_is_one_line_naming_the_directory(tmp_path, dirs, message):
    write_run(tmp_path / "a", greedy("1100"))
    with pytest.raises(ConfigError, match=re.escape(message)) as info:
        compare_dirs(dirs(tmp_path))
    assert "\n" not in str(info.value)


def test_every_pair_of_three_runs(tmp_path):
    dirs = [
        write_run(tmp_path / n, greedy(f)) for n, f in (("a", "110"), ("b", "100"), ("c", "011"))
    ]
    runs, comparisons = compare_dirs(dirs)
    assert [r.label for r in runs] == ["a", "b", "c"]
    pairs = [(Path(c.a).name, Path(c.b).name) for c in comparisons]
    assert pairs == [("a", "b"), ("a", "c"), ("b", "c")]
    assert [c.difference for c in comparisons] == pytest.approx([1 / 3, 0.0, -1 / 3])


@pytest.mark.parametrize(
    ("curve", "target", "expected"),
    [
        ([(10, 0.2), (20, None), (30, 0.5), (40, 0.6)], 0.5, 30 * 16),  # reached exactly
        ([(40, 0.6), (30, 0.55), (10, 0.2)], 0.5, 30 * 16),  # any order: the earliest step
        ([(10, 0.2), (20, None)], 0.5, None),  # never reached
        ([], 0.0, None),
    ],
)
def test_samples_to_reach(curve, target, expected):
    assert samples_to_reach(curve, target, samples_per_step=16) == expected


def test_compare_command_table_json_and_errors(tmp_path, capsys):
    a, b = write_run(tmp_path / "a", greedy("1100")), write_run(tmp_path / "b", greedy("1000"))
    assert main(["compare", str(a), str(b)]) == 0
    out = capsys.readouterr().out
    assert f"| {a} | a | 4 | 1 | 50.0 | [15.0, 85.0] |" in out  # Wilson, 2 of 4
    assert f"| {a} | {b} | 4 | 50.0 | 25.0 | +25.0 ± 21.7 | [-27.6, +60.9] | 1 | 0 |" in out
    assert main(["compare", str(a), str(b), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [r["items"] for r in data["runs"]] == [4, 4]
    assert data["comparisons"][0]["se"] == pytest.approx(math.sqrt(0.75) / 4)
    for argv in ([str(a), str(tmp_path / "nope")], [str(a)]):
        assert main(["compare", *argv]) == 2
        err = capsys.readouterr().err
        assert err.startswith("motif: error:") and err.count("\n") == 1


def test_runs_written_by_motif_eval(tmp_path):
    """The rows `motif eval` writes: a solver against a model wrong on odd sums (5, 17, 11)."""

    def odd_wrong(chat, sample):
        n = sum_of(chat)
        return reply(str(n + 1 if n % 2 else n))

    for name, script in (
        ("right", lambda chat, sample: reply(str(sum_of(chat)))),
        ("odd", odd_wrong),
    ):
        run_eval(
            EvalArgs(benchmark=ARITH, output_dir=str(tmp_path / name)),
            ModelArgs(),
            GenerationArgs(max_new_tokens=40),
            ProtocolArgs(rounds=1),
            backend_loader=loader_for(script),
        )
    _, [c] = compare_dirs([tmp_path / "right", tmp_path / "odd"])
    assert (c.items, c.accuracy_a, c.accuracy_b, c.a_better, c.b_better) == (6, 1.0, 0.5, 3, 0)
    assert c.se == pytest.approx(0.5 / math.sqrt(6))


def test_over_seeds_gives_the_spread_of_the_seeds_and_the_items_part():
    s = over_seeds([0.2, 0.4, 0.6], item_ses=[0.02, 0.02, 0.02])
    assert s.mean == pytest.approx(0.4)
    assert s.se == pytest.approx(0.2 / math.sqrt(3))  # sample sd 0.2 over 3 seeds
    assert s.item_se == pytest.approx(0.02)  # the same items: correlated, so not / sqrt(3)
    assert (s.low, s.high, s.values) == (0.2, 0.6, (0.2, 0.4, 0.6))


def test_over_seeds_of_one_seed_has_no_seed_error():
    s = over_seeds([0.3])
    assert (s.mean, s.se, s.item_se, s.low, s.high) == (0.3, None, None, 0.3, 0.3)


def test_over_seeds_that_agree_have_no_seed_error_and_unknown_item_errors_stay_unknown():
    s = over_seeds([0.5, 0.5, 0.5], item_ses=[0.1, None, 0.1])
    assert (s.mean, s.se, s.item_se) == (0.5, None, None)  # not "± 0.0"


@pytest.mark.parametrize(
    ("values", "item_ses", "message"),
    [([], None, "at least one"), ([0.1, 0.2], [0.01], "2 values but 1")],
)
def test_over_seeds_refuses_bad_input(values, item_ses, message):
    with pytest.raises(ValueError, match=message):
        over_seeds(values, item_ses)
