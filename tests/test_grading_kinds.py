"""Issue 13, grading side: each reported row, and siblings of each kind, as a table.

Kinds: relative tolerance, the imaginary unit, faithful reading (else None), digit groups,
brace-less boxes, inequality = interval in both directions, multi-value golds over all boxes.
Every row says what is right, not what the code happened to do.
"""

from __future__ import annotations

import threading
import time

import pytest

from conftest import HANG_GUARD_S, within_bound
from motif import _reading, grading
from motif.answer_format import has_box
from motif.grading import (
    REL_TOL,
    GradeStats,
    faithful_latex,
    grade,
    grade_text,
    is_correct,
)

FAST = 30.0  # CPU seconds: these tests check verdicts, not speed (see test_grading.py)


def R(answer: str) -> str:
    """A one-round response whose <answer> holds ``answer``."""
    return f"<reasoning>\nwork\n</reasoning>\n<answer>\n{answer}\n</answer>"


# (kind, prediction, gold, expected is_correct); the first row of each kind is the issue's.
ANSWER_TABLE = [
    # 1. numbers compared with a relative tolerance, absolute only at true zero
    ("tolerance", r"\boxed{\frac{1}{2^{98}}}", r"\frac{1}{2^{99}}", False),
    ("tolerance", "0.0000001", "0.0000002", False),
    ("tolerance", r"1.5 \times 10^{-8}", r"1.6 \times 10^{-8}", False),
    ("tolerance", r"x = \frac{1}{2^{98}}", r"\frac{1}{2^{99}}", False),
    ("tolerance", r"(10^{-9}, 1)", r"(2 \cdot 10^{-9}, 1)", False),
    ("tolerance", "-0.0000001", "0.0000001", False),
    (
        "tolerance",
        r"\begin{pmatrix} 10^{-9} \\ 1 \end{pmatrix}",
        r"\begin{pmatrix} 2\cdot 10^{-9} \\ 1 \end{pmatrix}",
        False,
    ),
    ("tolerance", "100001", "100000", False),  # exact values are never widened
    ("tolerance", r"\frac{1}{2^{99}}", r"2^{-99}", True),
    ("tolerance", "0.333333", r"\frac13", True),
    ("tolerance", r"1.5 \times 10^{-8}", r"\frac{3}{2} \cdot 10^{-8}", True),
    ("tolerance", "0.000000100005", r"10^{-7}", True),  # 5e-5 relative: within REL_TOL
    ("tolerance", "0.0", "0", True),
    ("tolerance", r"12.5\%", "0.125", True),
    # 2. one imaginary unit however it is written
    ("imaginary", r"\boxed{1 + 0.5i}", r"1+\frac{1}{2}i", True),
    ("imaginary", r"1 + 0.5\mathrm{i}", r"1+\frac{1}{2}i", True),
    ("imaginary", r"3+4\imath", "3+4i", True),
    ("imaginary", r"2\text{i}", "2i", True),
    ("imaginary", "i^2", "-1", True),
    ("imaginary", r"\frac{1}{i}", "-i", True),
    ("imaginary", "1 + 0.5i", r"1-\frac{1}{2}i", False),
    ("imaginary", r"1+\mathrm{i}", "1", False),  # \mathrm{i} used to be dropped
    ("imaginary", "0.5i", "0.5", False),
    # 3. what cannot be read faithfully is None, never a confident verdict
    ("faithful", r"\boxed{4\sqrt(2)}", "4", None),
    ("faithful", r"4\sqrt(2)", r"4\sqrt{2}", None),
    ("faithful", r"\sqrt(2)", r"\sqrt{2}", None),
    ("faithful", r"\frac(1)(2)", r"\frac12", None),
    ("faithful", "3)", "3", None),
    ("faithful", "5 +", "5", None),
    ("faithful", r"2\sqrt", "2", None),
    ("faithful", "5\\\\", "5", None),
    ("faithful", r"\frac 1234", "17", True),  # TeX: \frac{1}{2}34
    ("faithful", r"\frac 1234", r"\frac{1}{234}", False),
    ("faithful", r"\sqrt2", r"\sqrt{2}", True),
    ("faithful", r"11\sqrt2", r"\sqrt{242}", True),
    ("faithful", r"\frac{\sqrt3}2", r"\frac{\sqrt{3}}{2}", True),
    ("faithful", r"\dfrac\pi2", r"\frac{\pi}{2}", True),
    ("faithful", r"\log_28", "3", True),
    ("faithful", "2^(n+1)", "2^{n+1}", True),
    ("faithful", "sqrt(2)", r"\sqrt{2}", True),
    # 4. every common digit-grouping form
    ("digits", r"\boxed{1\,000}", "1000", True),
    ("digits", r"\boxed{1\,000}", "0", False),
    ("digits", r"1\,000", "1", False),
    ("digits", r"1\,000", "10000", False),
    ("digits", r"1\ 000", "1000", True),
    ("digits", r"1\;000", "1000", True),
    ("digits", "1~000", "1000", True),
    ("digits", "1{,}000", "1000", True),
    ("digits", "1 000", "1000", True),
    ("digits", "1\u202f000", "1000", True),
    ("digits", r"12\,345\,678", "12345678", True),
    ("digits", r"-1\,000\,000", "-10^6", True),
    ("digits", r"\$1\,000", "1000", True),
    ("digits", r"1\,000.5", "1000.5", True),
    ("digits", r"3.141\,592", "3.141592", True),
    ("digits", r"12\,34", "1234", None),  # not a grouping: ambiguous
    ("digits", "1 000 dollars", "1000", True),
    ("digits", r"1\,000\text{ cm}", "1000", True),
    # 6. a one-variable inequality equals its interval, on either side
    ("inequality", r"\boxed{m \geq \sqrt{2}}", r"[\sqrt{2}, \infty)", True),
    ("inequality", "x < 3", r"(-\infty, 3)", True),
    ("inequality", r"-1 \le x \le 2", "[-1, 2]", True),
    ("inequality", r"x \le 0", r"(-\infty, 0]", True),
    ("inequality", r"[2, \infty)", r"x \ge 2", True),
    ("inequality", "x > 2", r"[2, \infty)", False),
    ("inequality", r"m \geq \sqrt{2}", r"(\sqrt{2}, \infty)", False),
    ("inequality", "x + y > 1", r"(1, \infty)", False),
    # 7. multi-value gold: every box of the answer; single-value gold: the last box
    ("multibox", r"\boxed{1} and \boxed{-2}", "1,-2", True),
    ("multibox", r"\boxed{-2}, \boxed{1}", "1,-2", True),
    ("multibox", r"\boxed{1}, \boxed{-2}, \boxed{3}", "1,-2", False),
    ("multibox", r"\boxed{1}", "1,-2", False),
    ("multibox", r"\boxed{3} no: \boxed{5}", "5", True),
    ("multibox", r"\boxed{5} no: \boxed{3}", "5", False),
    # Found by a user test: a gold with one box per value is all its boxes, not the last one
    ("multibox", r"\boxed{-2}", r"\boxed{1},\boxed{-2}", False),
    ("multibox", r"\boxed{1}", r"\boxed{1},\boxed{-2}", False),
    ("multibox", r"\boxed{1}, \boxed{-2}", r"\boxed{1},\boxed{-2}", True),
    ("multibox", r"\boxed{-2,1}", r"\boxed{1} and \boxed{-2}", True),
    # Found by a user test: E notation read as a product with Euler's number
    ("tolerance", "0.0000001", "0", False),  # at zero math-verify's exact verdict stands
    ("enotation", "1e3", "1000", True),
    ("enotation", "1e3", "3e", False),
    ("enotation", "2.5e-3", "0.0025", True),
    ("enotation", "2.5E-3", "0.0026", False),
    ("enotation", r"\boxed{6.02e23}", r"6.02\times10^{23}", True),
    ("enotation", "3e", "3e", True),  # a number times e stays that
    ("enotation", "2e^{x}", "2e^{x}", True),
]

# (kind, response text, gold, expected correct, expected reason)
TEXT_TABLE = [
    # 5. brace-less boxes are boxes wherever boxes are found
    ("braceless", R(r"$\boxed 5$"), "5", True, "correct"),
    ("braceless", R(r"$\boxed{3}$, no: $\boxed 5$"), "5", True, "correct"),
    ("braceless", R(r"$\boxed{3}$, no: $\boxed 5$"), "3", False, "incorrect"),
    ("braceless", R(r"\fbox 7"), "7", True, "correct"),
    ("braceless", R(r"\boxed5"), "5", True, "correct"),
    ("braceless", R(r"\boxedfoo{5}"), "5", False, "no_answer"),  # another command
    # 7. multi-value golds
    ("multibox", R(r"\boxed{1} and \boxed{-2}"), "1,-2", True, "correct"),
    (
        "multibox",
        R(r"\boxed{1+\sqrt{19}} or \boxed{1-\sqrt{19}}"),
        r"1 \pm \sqrt{19}",
        True,
        "correct",
    ),
    ("multibox", R(r"\boxed{1} and \boxed{-2}"), "-2", True, "correct"),
    ("multibox", R(r"\boxed{1} and \boxed{-2}"), "1", False, "incorrect"),
    ("multibox", R(r"\boxed{1} and \boxed{4}"), "1,-2", False, "incorrect"),
    # 10. an empty box is no answer (not "cannot grade")
    ("empty", R(r"\boxed{}"), "5", False, "no_answer"),
    ("empty", R(r"\boxed{ }"), "5", False, "no_answer"),
    ("empty", R(r"\boxed{5} then \boxed{}"), "5", False, "no_answer"),
    ("empty", R(r"\boxed{0}"), "0", True, "correct"),
    # 11. an unclosed last box means no boxed answer
    ("unclosed", r"First \boxed{5}; no, correcting: \boxed{\frac{7}{2}", "5", False, "no_answer"),
    (
        "unclosed",
        R(r"First \boxed{5}; no, correcting: \boxed{\frac{7}{2}"),
        "5",
        False,
        "no_answer",
    ),
    ("unclosed", R(r"\boxed{5} and \boxed{"), "5", False, "no_answer"),
    ("unclosed", R(r"\boxed{5}; no, \boxed{\frac{7}{2}}"), r"\frac72", True, "correct"),
]


def _ids(table: list[tuple]) -> list[str]:
    return [f"{row[0]}-{i}" for i, row in enumerate(table)]


@pytest.mark.parametrize(
    ("kind", "prediction", "gold", "expected"), ANSWER_TABLE, ids=_ids(ANSWER_TABLE)
)
def test_answer_table(kind: str, prediction: str, gold: str, expected: bool | None) -> None:
    assert is_correct(prediction, gold, timeout_s=FAST) is expected
    if expected is None:
        assert grade(prediction, gold, timeout_s=FAST).reason == grading.PREDICTION_UNPARSEABLE


@pytest.mark.parametrize(
    ("kind", "text", "gold", "correct", "reason"), TEXT_TABLE, ids=_ids(TEXT_TABLE)
)
def test_text_table(kind: str, text: str, gold: str, correct: bool, reason: str) -> None:
    result = grade_text(text, gold, fallback="response", timeout_s=FAST)
    assert (result.correct, result.reason) == (correct, reason)
    if has_box(text):
        # The two public APIs agree on a response's boxes (row 5 had them disagree).
        assert is_correct(text, gold, timeout_s=FAST) is correct


def test_every_kind_has_siblings_both_ways() -> None:
    verdicts: dict[str, set] = {}
    for kind, *_, expected in ANSWER_TABLE:
        verdicts.setdefault(kind, set()).add(expected)
    for kind, _, _, correct, _ in TEXT_TABLE:
        verdicts.setdefault(kind, set()).add(correct)
    counts = {k: sum(r[0] == k for r in ANSWER_TABLE + TEXT_TABLE) for k in verdicts}
    assert all(n >= 4 for n in counts.values()), counts  # the row and three siblings at least
    assert all({True, False} <= v or {None, True} <= v for v in verdicts.values()), verdicts


def test_multi_box_answer_is_recorded() -> None:
    assert grade_text(R(r"\boxed{1} and \boxed{-2}"), "1,-2").answer == "1, -2"
    assert grade_text(R(r"\boxed{3} and \boxed{5}"), "5").answer == "5"


def test_unfaithful_readings_are_counted() -> None:
    stats = GradeStats()
    for text in (R(r"\boxed{4\sqrt(2)}"), R(r"\boxed{12\,34}"), R(r"\boxed{4}")):
        stats.add(grade_text(text, "4"))
    assert stats.counts[grading.PREDICTION_UNPARSEABLE] == 2 and stats.ungraded == 2


def test_relative_tolerance_wraps_math_verify_once() -> None:
    import math_verify.grader

    assert REL_TOL == 1e-4
    _reading._install_relative_tolerance()  # what the grading worker does once
    hook = math_verify.grader.sympy_numeric_eq
    assert getattr(hook, "motif_relative", False)
    _reading._install_relative_tolerance()
    assert math_verify.grader.sympy_numeric_eq is hook


@pytest.mark.parametrize(
    ("core", "expected"),
    [
        (r"1\,000", "1000"),
        (r"\frac 1234", r"\frac{1}{2}34"),
        (r"\sqrt[3]8", r"\sqrt[3]{8}"),
        (r"\frac{\sqrt2}3", r"\frac{\sqrt{2}}{3}"),
        (r"\frac12 + \frac{a}b", r"\frac{1}{2} + \frac{a}{b}"),
        (r"1+\mathrm{i}", "1+{i}"),
        ("2^(n+1)", "2^{(n+1)}"),
        (r"4\sqrt(2)", None),
        (r"\frac{1}", None),
        (r"\sqrt[3", None),
        (r"\sqrt [3] 8", r"\sqrt [3]{8}"),
        (r"12\,34", None),
        (r"1\quad000", None),
        (r"1 \qquad 000", None),
        (r"1\hspace{1em}000", None),
        (r"x \quad y", r"x \quad y"),
        ("1e3", r"1\cdot10^{3}"),
        ("x=2.5E-3", r"x=2.5\cdot10^{-3}"),
        ("3e", "3e"),
        ("a1e3", "a1e3"),
    ],
)
def test_faithful_latex(core: str, expected: str | None) -> None:
    assert faithful_latex(core) == expected


# --------------------------------------------------------------------------- bad input

THIN_SPACED_1MB = "1" + "\\,000" * 200_000  # 1 MB of digit groups separated by \,
THIN_SPACED_ODD = "12\\," * 250_000  # not a grouping: 1 MB of ambiguous spacing


def test_faithful_latex_is_linear_on_a_megabyte() -> None:
    blobs = ["\\frac" * 200_000, "\\sqrt2" * 150_000, "\\sqrt [3]" * 100_000, "2^(" * 300_000]
    for text in (THIN_SPACED_1MB, THIN_SPACED_ODD, *blobs):
        start = time.monotonic()
        faithful_latex(text)
        assert time.monotonic() - start < HANG_GUARD_S  # linear: a second; quadratic: hours


def _thin_space_calls(timeout_s: float) -> list:
    return [
        grade(THIN_SPACED_1MB, "1000", timeout_s=timeout_s),
        grade(f"\\boxed{{{THIN_SPACED_1MB}}}", "1000", timeout_s=timeout_s),
        grade_text(R(f"\\boxed{{{THIN_SPACED_1MB}}}"), "1000", timeout_s=timeout_s),
        grade_text(R(f"\\boxed{{{THIN_SPACED_1MB[:900]}}}"), "1", timeout_s=timeout_s),
        grade(THIN_SPACED_ODD[:990], "1", timeout_s=timeout_s),
    ]


def test_megabyte_of_thin_spaced_digits_is_bounded_on_the_main_thread() -> None:
    is_correct("1", "1")  # start the grading worker outside the bounded part
    start = time.monotonic()
    results = _thin_space_calls(1.0)
    assert within_bound(time.monotonic() - start, 1.0, calls=5)
    assert all(r.correct in (None, False) for r in results)


def test_megabyte_of_thin_spaced_digits_is_bounded_off_the_main_thread() -> None:
    box: dict = {}
    is_correct("1", "1")  # (main thread) import everything first
    thread = threading.Thread(target=lambda: box.update(r=_thin_space_calls(1.0)))
    start = time.monotonic()
    thread.start()
    thread.join(timeout=60)
    assert not thread.is_alive()
    assert within_bound(time.monotonic() - start, 1.0, calls=5)
    assert all(r.correct in (None, False) for r in box["r"])
