"""The answer format (motif.answer_format): reading, writing, checking and scoring replies."""

from __future__ import annotations

import pytest

from motif.answer_format import (
    extract_final_answer,
    format_ok,
    format_reply,
    paper_strict_ok,
    parse_answer,
    parse_boxed,
    parse_reasoning,
    soft_format_score,
    soft_format_score_paper,
    strict_format_score,
    strict_format_score_paper,
    xmlcount_score,
    xmlcount_score_paper,
)
from motif.carryover import extract_summary

# (text, reasoning, strict answer, paper summary)
PARSE_CASES = [
    ("<reasoning>r</reasoning><answer>a</answer>", "r", "a", "a"),
    (
        "<reasoning>\nline1\nline2\n</reasoning>\n<answer>\n42\n</answer>\n",
        "line1\nline2",
        "42",
        "42",
    ),
    ("no tags at all", None, None, "no tags at all"),
    ("  padded text  \n", None, None, "padded text"),
    ("", None, None, ""),
    ("<answer>only answer</answer>", None, "only answer", "only answer"),
    (
        "<reasoning>only reasoning</reasoning>",
        "only reasoning",
        None,
        "<reasoning>only reasoning</reasoning>",
    ),
    # issue 13: a pair inside an unclosed reasoning, or inside an unclosed outer answer, is text
    ("<reasoning>unclosed reasoning <answer>x</answer>", None, None, "x"),
    ("<reasoning>r</reasoning><answer>unclosed answer", "r", None, "unclosed answer"),
    (
        "<reasoning>r</reasoning>answer closed only</answer>",
        "r",
        None,
        "<reasoning>r</reasoning>answer closed only",
    ),
    ("<answer>first</answer> text <answer>second</answer>", None, "second", "second"),
    ("<answer>a</answer> trailing chatter", None, "a", "a"),
    ("<answer></answer>", None, "", ""),
    ("<reasoning></reasoning><answer> </answer>", "", "", ""),
    ("<ANSWER>upper</ANSWER>", None, None, "<ANSWER>upper</ANSWER>"),
    ("<answer>a<answer>b</answer>", None, None, "b"),
    ("<answer>x</answer></answer>", None, "x", "x"),
    (
        "<reasoning>a</reasoning><reasoning>b</reasoning>",
        "a",
        None,
        "<reasoning>a</reasoning><reasoning>b</reasoning>",
    ),
    ("</answer>reversed<answer>", None, None, ""),
    ("<answer>\n\\boxed{5}\n</answer>", None, "\\boxed{5}", "\\boxed{5}"),
    (
        "<reasoning>uses <answer> inside</reasoning><answer>z</answer>",
        "uses <answer> inside",
        "z",
        "z",
    ),
    ("text\x00with\x01control<answer>ok</answer>", None, "ok", "ok"),
    ("<answer>emoji ✓ ünïcode</answer>", None, "emoji ✓ ünïcode", "emoji ✓ ünïcode"),
]


@pytest.mark.parametrize(("text", "reasoning", "answer", "summary"), PARSE_CASES)
def test_parsers(text, reasoning, answer, summary):
    assert parse_reasoning(text) == reasoning
    assert parse_answer(text) == answer
    assert extract_summary(text, "paper") == summary
    assert extract_summary(text, "strict") == (answer or "")


BOXED_CASES = [
    (r"\boxed{42}", "42"),
    (r"The answer is \boxed{\frac{1}{2}}.", r"\frac{1}{2}"),
    (r"\boxed{1} then \boxed{2}", "2"),
    (r"\boxed{\sqrt{\frac{a}{b}}}", r"\sqrt{\frac{a}{b}}"),
    (r"\boxed{2} and \boxed{3", None),  # issue 13: the last box unclosed: no answer
    (r"\boxed{", None),
    ("no box", None),
    ("", None),
    (r"\boxed {7}", "7"),
    (r"\fbox{8}", "8"),
    (r"\boxed{\{1,2\}}", r"\{1,2\}"),
    (r"\boxed{ 12 }", "12"),
    (r"\boxed{}", None),  # issue 13: an empty box is no answer
    (r"\boxed{(1, 2)}", "(1, 2)"),
    (r"\boxed{x^{2^{3}}}", "x^{2^{3}}"),
    (r"\boxed{a}}}", "a"),
    ("\\boxed{" * 50 + "1" + "}" * 50, "1"),
    (r"\boxed{\text{(C)}}", r"\text{(C)}"),
]


@pytest.mark.parametrize(("text", "expected"), BOXED_CASES)
def test_parse_boxed(text, expected):
    assert parse_boxed(text) == expected


def test_final_answer_and_fallbacks():
    tagged = "<reasoning>\\boxed{1}</reasoning><answer>\\boxed{2}</answer>"
    assert extract_final_answer(tagged) == "2"
    untagged = "so the result is \\boxed{3}"
    assert extract_final_answer(untagged) is None
    assert extract_final_answer(untagged, fallback="response") == "3"
    no_box = "<answer>3</answer> \\boxed{4}"
    assert extract_final_answer(no_box) is None
    assert extract_final_answer(no_box, fallback="response") == "4"
    with pytest.raises(ValueError, match="fallback"):
        extract_final_answer("x", fallback="anything")


def test_parsers_never_raise_on_garbage():
    blobs = ["<" * 1000, "\\boxed{" * 5000, bytes(range(256)).decode("latin-1"), "}{" * 1000]
    for blob in blobs:
        parse_reasoning(blob), parse_answer(blob), parse_boxed(blob), extract_summary(blob)


# --------------------------------------------------------------------------- writing and checking


def test_a_written_reply_passes_every_check_and_reads_back():
    reply = format_reply("7 + 3 = 10.", "\\boxed{10}")
    assert reply == "<reasoning>\n7 + 3 = 10.\n</reasoning>\n<answer>\n\\boxed{10}\n</answer>\n"
    assert parse_reasoning(reply) == "7 + 3 = 10."
    assert parse_answer(reply) == "\\boxed{10}"
    assert extract_final_answer(reply) == "10"
    assert format_ok(reply) and format_ok(reply, final=True) and paper_strict_ok(reply)
    for score in (xmlcount_score, xmlcount_score_paper, soft_format_score):
        assert score(reply) == 0.5
    assert soft_format_score_paper(reply) == 0.0  # the reference's quirk: no DOTALL
    assert strict_format_score(reply) == strict_format_score_paper(reply) == 0.5


# (text, format_ok, format_ok final, paper_strict_ok)
CHECK_CASES = [
    (format_reply("r", "state"), True, False, True),
    (format_reply("r", "\\boxed{3}").rstrip("\n"), True, True, False),  # no final newline
    (format_reply("r", "\\boxed{3}") + "\n", False, False, True),  # two newlines after
    (format_reply("line 1\nline 2", "\\boxed{3}"), True, True, False),  # multi-line: not paper
    (format_reply("", "\\boxed{3}"), False, False, True),  # an empty block
    ("<reasoning>r</reasoning><answer>\\boxed{3}</answer>", False, False, False),  # one line
    ("chatter " + format_reply("r", "\\boxed{3}"), False, False, False),
    ("\\boxed{3}", False, False, False),
]


@pytest.mark.parametrize(("text", "ok", "final", "paper"), CHECK_CASES)
def test_format_checks(text, ok, final, paper):
    assert format_ok(text) is ok
    assert format_ok(text, final=True) is final
    assert paper_strict_ok(text) is paper


# (text, xmlcount, xmlcount paper, soft, soft paper, strict, strict paper); hand-computed
MULTI = format_reply("a\nb", "\\boxed{3}")
SCORE_CASES = [
    (MULTI.rstrip("\n"), 0.5, 0.5 - 0.001 * (len(MULTI) - 2), 0.5, 0.0, 0.5, 0.0),
    (format_reply("r", "x") + "  tail", 0.496, 0.5 - 0.006 - (7 - 1) * 0.001, 0.5, 0.0, 0.0, 0.0),
    (format_reply("r", "x") * 2, 0.0, 0.0, 0.5, 0.0, 0.0, 0.0),  # two blocks
    ("  <reasoning>r</reasoning> <answer>x</answer>", 0.0, 0.0, 0.5, 0.0, 0.0, 0.0),
    ("no tags", 0.0, 0.0, 0.0, 0.0, 0.0, 0.0),
]


@pytest.mark.parametrize(
    ("text", "xml", "xml_paper", "soft", "soft_paper", "strict", "strict_paper"), SCORE_CASES
)
def test_format_scores(text, xml, xml_paper, soft, soft_paper, strict, strict_paper):
    assert xmlcount_score(text) == pytest.approx(xml)
    assert xmlcount_score_paper(text) == pytest.approx(xml_paper)
    assert soft_format_score(text) == soft
    assert soft_format_score_paper(text) == soft_paper
    assert strict_format_score(text) == strict
    assert strict_format_score_paper(text) == strict_paper
