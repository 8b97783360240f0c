"""The correctness oracle: real-data table, normalisation, extraction, bad input, time bounds."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import FIXTURES, within_bound
from motif import grading
from motif._timebound import WorkerDied, WorkerError, WorkerProcess
from motif.grading import (
    Grade,
    GradeStats,
    gold_parses,
    grade,
    grade_many,
    grade_response,
    grade_text,
    is_correct,
    normalize_gold,
    paper_gold,
)

FIXTURES = FIXTURES
REAL_CASES = [json.loads(line) for line in (FIXTURES / "grading_cases.jsonl").open()]
# Every AIME 2024 gold with a leading zero (copied from aime24_test.jsonl's "answer" field).
AIME24_LEADING_ZERO_GOLDS = {"025", "073", "023", "045", "033", "080", "055"}
# Correctness tests grade ordinary inputs: their verdict, not the machine's speed, is tested, so
# their bound is far above what any of them needs (CPU seconds; a busy machine does not count).
FAST = 30.0
POWER_TOWER = r"\boxed{9^{9^{9^{9}}}}"  # verify() would evaluate it for ages


def _case_id(case: dict) -> str:
    return f"{case['dataset']}:{case['id']}:{case['prediction'][:24]}"


# --------------------------------------------------------------------------- the table


@pytest.mark.parametrize("case", REAL_CASES, ids=[_case_id(c) for c in REAL_CASES])
def test_real_data_cases(case: dict) -> None:
    assert is_correct(case["prediction"], case["gold"], timeout_s=FAST) is case["expected"]


def test_real_table_covers_the_data_sets() -> None:
    datasets = {c["dataset"] for c in REAL_CASES}
    assert {"math500", "aime24", "amc23", "gsm8k"} <= datasets
    assert len(REAL_CASES) >= 40
    aime_golds = {c["gold"] for c in REAL_CASES if c["dataset"] == "aime24"}
    assert aime_golds >= AIME24_LEADING_ZERO_GOLDS


SYNTHETIC = [
    # (prediction, gold, expected)
    ("1,234", "1234", True),
    ("1234", "#### 1,234", True),
    ("$1,234", "1234", True),
    ("\\$1,234.00", "1234", True),
    ("$18.90", "\\$18.90", True),
    ("18.90 dollars", "18.9", True),
    ("5 cm", "5", True),
    ("\\boxed{42}", "42", True),
    ("The answer is \\boxed{41} or rather \\boxed{42}", "42", True),
    ("\\boxed{\\frac{1}{2}}", "0.5", True),
    ("\\dfrac12", "\\frac{1}{2}", True),
    ("1/2", "\\frac12", True),
    ("0.333", "\\frac13", False),
    ("\\sqrt{8}", "2\\sqrt{2}", True),
    ("$[1,3)$", "[1,3)", True),
    ("[1,3)", "[1,3)", True),
    ("(1,3)", "[1,3)", False),
    ("x^2+2x+1", "(x+1)^2", True),
    ("50\\%", "50", True),
    ("0.5", "50\\%", True),
    ("30^\\circ", "30", True),
    ("30", "30^{\\circ}", True),
    ("-7", "-7.0", True),
    ("7", -7.0, False),
    ("025", "25", True),
    ("26", "025", False),
    ("27", 27.0, True),
    ("27", 27, True),
    ("\\text{(B)}", "B", True),
    ("x = 3", "3", True),
    ("\\infty", "\\infty", True),
    ("-\\infty", "\\infty", False),
    ("2+3i", "3i+2", True),
    ("\\pi", "3.14159", False),
    # no answer: an empty box, or a last box never closed (issue 13)
    ("\\boxed{}", "5", False),
    ("\\boxed{", "5", False),
    # cannot grade
    ("", "5", None),
    ("5", "", None),
    ("5", "#### ", None),
    ("5", float("nan"), None),
    ("{", "5", None),
]


@pytest.mark.parametrize(("prediction", "gold", "expected"), SYNTHETIC)
def test_synthetic_cases(prediction: str, gold, expected: bool | None) -> None:
    assert is_correct(prediction, gold, timeout_s=FAST) is expected


def test_table_size() -> None:
    assert len(REAL_CASES) + len(SYNTHETIC) >= 80


def test_public_name_through_package() -> None:
    from motif import is_correct as lazy

    assert lazy is is_correct
    assert lazy("\\boxed{2}", "2") is True


def test_none_prediction_is_no_answer() -> None:
    result = grade(None, "5")
    assert (result.correct, result.reason) == (False, grading.NO_ANSWER)


# --------------------------------------------------------------------------- golds


@pytest.mark.parametrize(
    ("raw", "source", "expected"),
    [
        ("Janet sells 16 - 3 - 4 = 9 eggs.\n#### 18", None, "18"),
        ("so the total is\n#### 1,234", None, "1234"),
        ("#### 1,234", "gsm8k", "1234"),
        ("1,234", "gsm8k", "1234"),
        ("-5", "gsm8k", "-5"),
        ("025", "aime", "25"),
        ("000", "aime", "0"),
        ("27.0", "amc", "27"),
        (27.0, "amc", "27"),
        (-1.0, None, "-1"),
        (2.5, None, "2.5"),
        (7, None, "7"),
        ("  \\frac{1}{2} ", "math", "\\frac{1}{2}"),
        ("10,\\!080", "math", "10,\\!080"),
        ("1,-2", "math", "1,-2"),
        (float("inf"), None, ""),
    ],
)
def test_normalize_gold(raw, source, expected: str) -> None:
    assert normalize_gold(raw, source) == expected


def test_normalize_gold_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="unknown gold source"):
        normalize_gold("1", "gsm9k")
    with pytest.raises(TypeError, match="gold answer must be"):
        normalize_gold(None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="gold answer must be"):
        normalize_gold(True)


def test_paper_gold_keeps_the_string() -> None:
    assert paper_gold("work\n#### 1,234") == "1,234"
    assert paper_gold(" \\frac{1}{2} ") == "\\frac{1}{2}"


@given(st.integers(min_value=-(10**12), max_value=10**12))
@settings(max_examples=40, deadline=None)
def test_integers_in_any_common_form(n: int) -> None:
    assert is_correct(f"{n:,}", str(n), timeout_s=FAST) is True
    assert is_correct(f"\\boxed{{{n}}}", f"#### {n:,}", timeout_s=FAST) is True
    assert is_correct(str(n + 1), str(n), timeout_s=FAST) is False


@given(st.one_of(st.integers(-(10**6), 10**6), st.text("0123456789.,-", min_size=1, max_size=8)))
@settings(max_examples=40, deadline=None)
def test_normalize_gold_is_idempotent(raw) -> None:
    once = normalize_gold(raw)
    assert normalize_gold(once) == once


def test_gold_parses() -> None:
    assert gold_parses("\\frac{1}{2}") is True
    assert gold_parses("") is False


# --------------------------------------------------------------------------- responses


RESPONSE = "<reasoning>\nsome work, \\boxed{7}\n</reasoning>\n<answer>\nSo \\boxed{18}\n</answer>"


@pytest.mark.parametrize(
    ("text", "fallback", "expected", "reason"),
    [
        (RESPONSE, "none", True, "correct"),
        ("<answer>\\boxed{17}</answer> and later \\boxed{18}", "none", False, "incorrect"),
        ("<answer>no box here</answer> \\boxed{18}", "none", False, "no_answer"),
        ("<answer>no box here</answer> \\boxed{18}", "response", True, "correct"),
        ("The answer is \\boxed{18}.", "none", False, "no_answer"),
        ("The answer is \\boxed{18}.", "response", True, "correct"),
        ("<answer>\\boxed{1}</answer><answer>\\boxed{18}</answer>", "none", True, "correct"),
        ("<answer>\\boxed{18", "response", False, "no_answer"),
    ],
)
def test_grade_text_extraction(text: str, fallback, expected: bool, reason: str) -> None:
    result = grade_text(text, "#### 18", fallback=fallback, timeout_s=FAST)
    assert (result.correct, result.reason) == (expected, reason)
    assert grade_response(text, "18", fallback=fallback, timeout_s=FAST) is expected


def test_grade_text_reports_the_extracted_answer() -> None:
    assert grade_text(RESPONSE, "18").answer == "18"


def test_grade_text_rejects_unknown_fallback() -> None:
    with pytest.raises(ValueError, match="unknown fallback"):
        grade_text(RESPONSE, "18", fallback="anywhere")  # type: ignore[arg-type]


def test_bugs_fail_loud() -> None:
    with pytest.raises(TypeError, match="prediction must be a str"):
        is_correct(18, "18")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="timeout_s"):
        is_correct("1", "1", timeout_s=0)
    with pytest.raises(TypeError, match="use Grade.correct"):
        bool(grade("1", "1"))


# --------------------------------------------------------------------------- stats


def test_grade_stats_counts_and_logs(caplog: pytest.LogCaptureFixture) -> None:
    stats = GradeStats()
    results = grade_many([("1", "1"), ("2", "1"), (None, "1"), ("1", "")], stats=stats)
    assert results == [True, False, False, None]
    assert stats.total == 4 and stats.ungraded == 1
    assert stats.counts[grading.GOLD_UNPARSEABLE] == 1
    with caplog.at_level(logging.WARNING, logger="motif.grading"):
        stats.log("batch")
    assert "batch: 4 graded" in caplog.text and "(1 None)" in caplog.text


def test_grade_stats_quiet_when_everything_graded(caplog: pytest.LogCaptureFixture) -> None:
    stats = GradeStats()
    stats.add(Grade(True, grading.CORRECT))
    with caplog.at_level(logging.WARNING, logger="motif.grading"):
        stats.log("batch")
    assert caplog.text == ""


# --------------------------------------------------------------------------- bad input


BAD_INPUTS = {
    "1MB": "7" * 1_000_000,
    "1MB boxed": "\\boxed{" + "7" * 1_000_000 + "}",
    "nested braces": "\\boxed{" + "{" * 5000 + "1" + "}" * 5000 + "}",
    "nested fractions": "\\boxed{" + "\\frac{1}{" * 60 + "2" + "}" * 60 + "}",
    "unclosed box": "\\boxed{" * 20_000,
    "binary": bytes(range(256)).decode("latin-1") * 4,
    "nul and surrogates": "\x00\ud800\\boxed{\x00}",
}


@pytest.mark.parametrize("name", list(BAD_INPUTS))
def test_bad_predictions_are_bounded(name: str, caplog: pytest.LogCaptureFixture) -> None:
    stats = GradeStats()
    grade("1", "1")  # start the worker outside the bounded part
    start = time.monotonic()
    by_answer = stats.add(grade(BAD_INPUTS[name], "25", timeout_s=1.0))
    by_text = stats.add(grade_text(BAD_INPUTS[name], "25", fallback="response", timeout_s=1.0))
    assert within_bound(time.monotonic() - start, 1.0, calls=2)
    assert by_answer.correct in (None, False) and by_text.correct in (None, False)
    with caplog.at_level(logging.DEBUG, logger="motif.grading"):
        stats.log(name)
    assert f"{name}: 2 graded" in caplog.text


def test_empty_gold_cannot_grade() -> None:
    assert grade("5", "").reason == grading.GOLD_UNPARSEABLE
    assert grade_text(RESPONSE, "   ").correct is None


def test_pathological_expression_times_out() -> None:
    grade("1", "1")
    start = time.monotonic()
    result = grade(POWER_TOWER, "25", timeout_s=0.5)
    assert (result.correct, result.reason) == (None, grading.TIMEOUT)
    assert within_bound(time.monotonic() - start, 0.5)


def test_grading_leaves_the_callers_signals_alone() -> None:
    handlers = {s: signal.getsignal(s) for s in (signal.SIGALRM, signal.SIGPROF)}
    signal.setitimer(signal.ITIMER_REAL, 30.0)  # someone else's pending timer
    try:
        grade(POWER_TOWER, "25", timeout_s=0.3)
        assert {s: signal.getsignal(s) for s in handlers} == handlers
        remaining, _ = signal.getitimer(signal.ITIMER_REAL)
        assert 20.0 < remaining <= 30.0
        assert signal.getitimer(signal.ITIMER_PROF) == (0.0, 0.0)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)


def test_the_verdict_counts_cpu_time_not_a_busy_machine(monkeypatch) -> None:
    # The worker is paused (as a loaded machine would starve it) for longer than the
    # call's bound: the verdict, decided on CPU time, is still the right one.
    grade("1", "1")
    proc = grading._WORKER._proc
    os.kill(proc.pid, signal.SIGSTOP)
    resume = threading.Timer(0.8, os.kill, (proc.pid, signal.SIGCONT))
    resume.start()
    try:
        assert grade("\\boxed{\\frac{1}{2}}", "0.5", timeout_s=0.5).correct is True
    finally:
        resume.join()


# --------------------------------------------------------------------------- threads


def _in_thread(fn, *args, **kwargs):
    box: dict = {}

    def target() -> None:
        try:
            box["value"] = fn(*args, **kwargs)
        except BaseException as exc:  # surface anything to the test thread
            box["error"] = exc

    thread = threading.Thread(target=target)
    thread.start()
    thread.join(timeout=60)
    assert not thread.is_alive(), "grading hung off the main thread"
    if "error" in box:
        raise box["error"]
    return box["value"]


def test_grading_off_the_main_thread() -> None:
    assert _in_thread(is_correct, "\\boxed{\\frac{1}{2}}", "0.5") is True
    assert _in_thread(is_correct, "3", "#### 4") is False
    assert _in_thread(grade_text, RESPONSE, "18").answer == "18"


def test_off_main_thread_is_bounded() -> None:
    _in_thread(is_correct, "1", "1")  # start the worker outside the timed part
    start = time.monotonic()
    result = _in_thread(grade, POWER_TOWER, "25", timeout_s=0.5)
    assert (result.correct, result.reason) == (None, grading.TIMEOUT)
    assert within_bound(time.monotonic() - start, 0.5)


def test_hung_worker_is_killed_and_replaced(monkeypatch: pytest.MonkeyPatch) -> None:
    # A wall-clock wait shorter than the worker's own CPU timer makes the caller give up
    # first, as it does for a hang inside C code (tests/test_timebound.py has a real one).
    grade("1", "1")
    monkeypatch.setattr(grading, "WALL_FACTOR", 0.1)
    monkeypatch.setattr(grading._WORKER, "grace_s", 0.0)
    pid = grading._WORKER._proc.pid
    result = grade(POWER_TOWER, "25", timeout_s=2.0)
    assert (result.correct, result.reason) == (None, grading.TIMEOUT)
    assert grading._WORKER._proc is None
    monkeypatch.setattr(grading, "WALL_FACTOR", 4.0)
    monkeypatch.setattr(grading._WORKER, "grace_s", 2.0)
    assert _in_thread(is_correct, "2", "2") is True
    assert grading._WORKER._proc.pid != pid


def test_many_threads_at_once() -> None:
    cases = [(f"\\boxed{{{n}}}", str(n), True) for n in range(6)] + [("1", "2", False)] * 2
    results: list = [None] * len(cases)

    def work(i: int) -> None:
        results[i] = is_correct(cases[i][0], cases[i][1])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(cases))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert results == [c[2] for c in cases]


def test_worker_process_replies_reraises_and_recovers() -> None:
    # Stdlib handlers, so the child needs nothing from the test tree.
    echo = WorkerProcess("builtins:dict", startup_s=30)
    raising = WorkerProcess("json:loads", startup_s=30)  # json.loads(dict) raises TypeError
    exiting = WorkerProcess("sys:exit", startup_s=30)  # SystemExit: the child goes away
    try:
        assert echo.call({"a": [1, "\u00e9\x00"]}, 5.0) == {"a": [1, "\u00e9\x00"]}
        with pytest.raises(WorkerError, match="TypeError"):
            raising.call({"a": 1}, 5.0)
        pid = raising._proc.pid
        with pytest.raises(WorkerError):
            raising.call({"b": 2}, 5.0)
        assert raising._proc.pid == pid  # an error in the handler does not cost the worker
        with pytest.raises(WorkerDied):
            exiting.call({"a": 1}, 5.0)
        with pytest.raises(WorkerDied):  # restarted, and died again
            exiting.call({"a": 1}, 5.0)
    finally:
        for worker in (echo, raising, exiting):
            worker.close()


def test_import_is_cheap() -> None:
    code = "import sys, motif.grading; print('math_verify' in sys.modules, 'torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


# --------------------------------------------------------------------------- properties

LATEX_ATOMS = st.sampled_from(
    ["1", "2", "025", "0.5", "x", "y", "\\pi", "\\infty", "i", "e", "-3", "1,000", "\\$5", "50\\%"]
)


def _latex_node(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    pair = st.tuples(children, children)
    return st.one_of(
        pair.map(lambda p: f"\\frac{{{p[0]}}}{{{p[1]}}}"),
        children.map(lambda a: f"\\sqrt{{{a}}}"),
        pair.map(lambda p: f"{p[0]}^{{{p[1]}}}"),
        pair.map(lambda p: f"{p[0]}+{p[1]}"),
        pair.map(lambda p: f"({p[0]}, {p[1]}]"),
        pair.map(lambda p: f"\\left[{p[0]}, {p[1]}\\right)"),
        children.map(lambda a: f"\\boxed{{{a}}}"),
        children.map(lambda a: f"{a}^\\circ"),
        children.map(lambda a: f"{a} \\text{{ cm}}"),
        pair.map(lambda p: f"x = {p[0]}, y = {p[1]}"),
        pair.map(lambda p: f"\\begin{{pmatrix}} {p[0]} \\\\ {p[1]} \\end{{pmatrix}}"),
    )


LATEX = st.recursive(LATEX_ATOMS, _latex_node, max_leaves=8)
PROPERTY_SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@given(prediction=LATEX, gold=LATEX)
@PROPERTY_SETTINGS
def test_random_latex_never_raises_and_is_bounded(prediction: str, gold: str) -> None:
    start = time.monotonic()
    result = grade(prediction, gold, timeout_s=1.0)
    assert within_bound(time.monotonic() - start, 1.0)
    assert result.correct in (True, False, None)


@given(text=st.text(max_size=300), gold=st.text(max_size=20))
@PROPERTY_SETTINGS
def test_random_text_never_raises_and_is_bounded(text: str, gold: str) -> None:
    start = time.monotonic()
    by_answer = grade(text, gold, timeout_s=1.0)
    by_text = grade_text(text, gold, fallback="response", timeout_s=1.0)
    assert within_bound(time.monotonic() - start, 1.0, calls=2)
    assert by_answer.correct in (True, False, None) and by_text.correct in (True, False, None)


@given(LATEX)
@settings(max_examples=30, deadline=None)
def test_an_answer_equals_itself_unless_ungradable(expr: str) -> None:
    assert is_correct(expr, expr, timeout_s=1.0) in (True, None)
