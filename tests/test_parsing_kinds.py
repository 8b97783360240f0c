"""Issue 13, parsing side: tags read as a structure, and the box rules, as tables.

One rule (``motif.answer_format.answer_span`` + ``boxed_answers``) serves the strict summary, the
final answer, rewards and early stop; the ``paper`` rule keeps the reference's string split.
"""

from __future__ import annotations

import threading
import time

import pytest

from conftest import HANG_GUARD_S
from fakes import ScriptedBackend
from motif.answer_format import (
    answer_span,
    boxed_answers,
    extract_final_answer,
    final_answer_boxes,
    final_answer_text,
    parse_answer,
    parse_boxed,
)
from motif.backends.base import SamplingParams
from motif.carryover import extract_summary
from motif.engine import RolloutEngine
from motif.grading import grade_text
from motif.protocol import Protocol

GREEDY = SamplingParams(max_new_tokens=32)

ROW8 = "<reasoning>Format: <answer>detailed progress here</answer></reasoning><answer>We found 2+3="
ROW9 = r"<answer>Last progress was <answer>2+3</answer>; final \boxed{5}</answer>"
ROW11 = r"First \boxed{5}; no, correcting: \boxed{\frac{7}{2}"

# (kind, text, parse_answer, final answer, paper summary); the first row of a kind is the issue's.
TAG_TABLE = [
    # 8. a pair inside the reasoning (or a code span) never counts
    ("reasoning", ROW8, None, None, "We found 2+3="),
    (
        "reasoning",
        r"<reasoning>format: <answer>x</answer></reasoning><answer>\boxed{5}</answer>",
        r"\boxed{5}",
        "5",
        r"\boxed{5}",
    ),
    ("reasoning", r"<reasoning>guess <answer>\boxed{3}</answer>", None, None, r"\boxed{3}"),
    ("reasoning", r"<answer>\boxed{3}</answer><reasoning>r</reasoning>", None, None, r"\boxed{3}"),
    (
        "reasoning",
        r"<reasoning>r</reasoning><answer>\boxed{2}</answer><reasoning>a <answer>\boxed{9}</answer></reasoning>",
        r"\boxed{2}",
        "2",
        r"\boxed{9}",
    ),
    (
        "code",
        "<reasoning>r</reasoning>\n```\n<answer>\\boxed{3}</answer>\n```\n<answer>\\boxed{5}</answer>",
        r"\boxed{5}",
        "5",
        r"\boxed{5}",
    ),
    (
        "code",
        "<reasoning>r</reasoning> `<answer>\\boxed{3}</answer>`",
        None,
        None,
        r"\boxed{3}",
    ),
    (
        "code",
        "<reasoning>r</reasoning> ``a`<answer>\\boxed{3}</answer>`` <answer>\\boxed{4}</answer>",
        r"\boxed{4}",
        "4",
        r"\boxed{4}",
    ),
    (
        "code",
        "<reasoning>r</reasoning> `unpaired <answer>\\boxed{6}</answer>",
        r"\boxed{6}",
        "6",
        r"\boxed{6}",
    ),
    # 9. nested answers: the outer block
    ("nesting", ROW9, r"Last progress was <answer>2+3</answer>; final \boxed{5}", "5", "2+3"),
    ("nesting", "<answer>a <answer>b</answer> c</answer>", "a <answer>b</answer> c", None, "b"),
    ("nesting", r"<answer>outer <answer>\boxed{1}</answer>", None, None, r"\boxed{1}"),
    (
        "nesting",
        r"<answer>\boxed{1}</answer><answer>q <answer>\boxed{2}</answer> \boxed{3}</answer>",
        r"q <answer>\boxed{2}</answer> \boxed{3}",
        "3",
        r"\boxed{2}",
    ),
    # the last top-level block unclosed: no answer (not an earlier block)
    ("unclosed-tag", r"<answer>\boxed{1}</answer> <answer>\boxed{2}", None, None, r"\boxed{2}"),
    ("unclosed-tag", r"<answer>\boxed{1}</answer> text", r"\boxed{1}", "1", r"\boxed{1}"),
    ("unclosed-tag", "</answer>stray<answer>", None, None, ""),
    ("unclosed-tag", r"<answer>\boxed{1}</answer></answer>", r"\boxed{1}", "1", r"\boxed{1}"),
]


def _ids(table: list[tuple]) -> list[str]:
    return [f"{row[0]}-{i}" for i, row in enumerate(table)]


@pytest.mark.parametrize(
    ("kind", "text", "answer", "final", "paper"), TAG_TABLE, ids=_ids(TAG_TABLE)
)
def test_tag_table(kind: str, text: str, answer: str | None, final: str | None, paper: str) -> None:
    assert parse_answer(text) == answer
    assert extract_summary(text, "strict") == (answer or "")
    assert extract_final_answer(text) == final
    # paper parity: the reference's split, bugs included, whatever the structure says
    assert extract_summary(text, "paper") == paper
    assert Protocol(rounds=2).summary(text) == paper


# (kind, text, last box, all boxes)
BOX_TABLE = [
    # 10. an empty box is no answer
    ("empty", r"\boxed{}", None, []),
    ("empty", r"\boxed{ }", None, []),
    ("empty", r"\boxed{5} then \boxed{}", None, []),
    ("empty", r"\boxed{} then \boxed{5}", "5", ["5"]),
    ("empty", r"\boxed{0}", "0", ["0"]),
    # 11. an unclosed last box means no boxed answer
    ("unclosed", ROW11, None, []),
    ("unclosed", r"\boxed{5} \boxed{", None, []),
    ("unclosed", r"\boxed{5} and \boxed{\frac{7}{2}}", r"\frac{7}{2}", ["5", r"\frac{7}{2}"]),
    ("unclosed", r"\boxed{\boxed{5}", "5", ["5"]),  # the right-most opening is closed
    ("unclosed", r"\boxed{5", None, []),
    # 5. brace-less boxes
    ("braceless", r"$\boxed 5$", "5", ["5"]),
    ("braceless", r"\boxed{3}, no: $\boxed 5$", "5", ["3", "5"]),
    ("braceless", "\\fbox 7\nmore text", "7", ["7"]),
    ("braceless", r"\boxed5", "5", ["5"]),
    ("braceless", r"\boxedfoo{5}", None, []),
    ("braceless", r"\boxed $", None, []),
    # nesting of boxes: the innermost last box; outer boxes are not repeated
    ("nesting", r"\boxed{\boxed{5}}", "5", ["5"]),
    ("nesting", r"\boxed{1} and \boxed{-2}", "-2", ["1", "-2"]),
    ("nesting", r"\boxed{\boxed{1} + \boxed{2}}", "2", ["2"]),
]


@pytest.mark.parametrize(("kind", "text", "last", "boxes"), BOX_TABLE, ids=_ids(BOX_TABLE))
def test_box_table(kind: str, text: str, last: str | None, boxes: list[str]) -> None:
    assert parse_boxed(text) == last
    assert boxed_answers(text) == boxes
    assert final_answer_boxes(f"<answer>{text}</answer>") == boxes


def test_fallback_never_goes_past_a_broken_last_box() -> None:
    text = r"<answer>\boxed{5} then \boxed{7</answer>"
    assert extract_final_answer(text, fallback="response") is None
    # With no answer block, the fallback reads the response; an unclosed last box is still none.
    assert extract_final_answer(ROW11, fallback="response") is None
    assert extract_final_answer(r"so \boxed{7}", fallback="response") == "7"


def test_issue_rows_through_the_oracle() -> None:
    assert grade_text(ROW8, "5").reason == "no_answer"
    assert grade_text(ROW9, "5").correct is True
    assert grade_text(ROW11, "5", fallback="response").correct is False
    assert grade_text("<answer>\\boxed{}</answer>", "5").reason == "no_answer"


def _round_one(first: str):
    def respond(chat, sample):
        if "Progress in round" in chat[-1]["content"]:
            return "<reasoning>more</reasoning><answer>partial progress</answer>"
        return first

    return respond


@pytest.mark.parametrize(
    ("first", "stops"),
    [
        (r"<reasoning>r</reasoning><answer>\boxed{}</answer>", False),  # row 10
        (r"<reasoning>r</reasoning><answer>\boxed{ }</answer>", False),
        (r"<reasoning>r</reasoning><answer>\boxed{5}, no: \boxed{\frac{7}{2}</answer>", False),
        (r"<reasoning>as <answer>\boxed{4}</answer></reasoning><answer>more to do</answer>", False),
        (r"<reasoning>r</reasoning><answer>\boxed{4}</answer>", True),
        (r"<reasoning>r</reasoning><answer>$\boxed 4$</answer>", True),
        (r"<reasoning>r</reasoning><answer>q <answer>x</answer> \boxed{4}</answer>", True),
    ],
)
def test_early_stop_uses_the_same_rule(first: str, stops: bool) -> None:
    backend = ScriptedBackend(_round_one(first))
    engine = RolloutEngine(backend, Protocol(rounds=3), GREEDY, early_stop=True)
    [trajectory] = engine.run(["What is 2+2?"])
    assert trajectory.stopped_early is stops
    assert len(trajectory.rounds) == (1 if stops else 3)
    assert (extract_final_answer(first) is not None) is stops


# --------------------------------------------------------------------------- bad input

MEGABYTE_BLOBS = {
    "thin-spaced digits": "1" + "\\,000" * 200_000,
    "thin-spaced digits boxed": "<answer>\\boxed{" + "1\\," * 330_000 + "}</answer>",
    "brace-less boxes": "\\boxed " * 150_000,
    "open answers": "<answer>" * 130_000,
    "open reasoning": "<reasoning>" * 90_000 + "<answer>1</answer>",
    "backtick runs": "".join("`" * k + " " for k in range(1, 1400)),
    "fences": "```\n" * 250_000,
    "open boxes": "\\boxed{" * 140_000,
}


def _parse_all(blob: str) -> None:
    parse_answer(blob), answer_span(blob), parse_boxed(blob), boxed_answers(blob)
    extract_final_answer(blob, fallback="response"), extract_summary(blob, "strict")


@pytest.mark.parametrize("name", list(MEGABYTE_BLOBS))
def test_parsers_are_linear_on_a_megabyte(name: str) -> None:
    start = time.monotonic()
    _parse_all(MEGABYTE_BLOBS[name])
    assert time.monotonic() - start < HANG_GUARD_S  # linear: a second; quadratic: hours


def test_parsers_off_the_main_thread() -> None:
    errors: list = []

    def work() -> None:
        try:
            _parse_all(MEGABYTE_BLOBS["thin-spaced digits boxed"])
        except BaseException as exc:  # surface it to the test thread
            errors.append(exc)

    thread = threading.Thread(target=work)
    start = time.monotonic()
    thread.start()
    thread.join(timeout=30)
    assert not thread.is_alive() and not errors
    assert time.monotonic() - start < HANG_GUARD_S  # linear: a second; quadratic: hours


@pytest.mark.parametrize(
    ("text", "gold"),
    [
        (r"<answer>\boxed{1} and \boxed{-2}</answer>", "1,-2"),
        (r"<reasoning>\boxed{9}</reasoning><answer>\boxed{3}, \boxed{5}</answer>", "5"),
        (r"<answer>so</answer> \boxed{1}, \boxed{-2}", "1,-2"),
        (r"<answer>\boxed{}</answer>", "5"),
    ],
)
def test_final_answer_text_grades_like_the_response(text: str, gold: str) -> None:
    from motif.grading import is_correct

    region = final_answer_text(text, fallback="response")
    by_text = grade_text(text, gold, fallback="response").correct
    assert (is_correct(region, gold) if region is not None else False) is by_text
