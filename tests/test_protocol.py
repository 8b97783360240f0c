"""The protocol: exact paper strings, round messages and parsers (table-driven)."""

from __future__ import annotations

import pytest

from motif.answer_format import extract_final_answer, parse_answer, parse_boxed, parse_reasoning
from motif.prompts import ordinal, round_messages, system_prompt, user_message
from motif.protocol import Protocol, extract_summary

# Copied from the reference's runtime values (shared/reference/motif-protocol.md).
PAPER_MOTIF_PROMPT = r"""
You are a helpful assistant. When the user asks a question, you solve it in 3 rounds.
In each round, you first think about the reasoning process of answering and then provide the user with a detailed progress about it.
The reasoning process and the progress are enclosed within <reasoning> </reasoning> and <answer> </answer> tags respectively.
Therefore, you follow the strict format:
<reasoning>
reasoning process here
</reasoning>
<answer>
detailed progress here
</answer>

The User provides this detailed progress as additional context in the next round.
You then respond again with further thinking and further progress.
When the User says that current round is the final (third) round, you provide an answer inside the answer tags.
You also enclose a final answer in third round in the box: \boxed{}. Only this boxed final answer is used for evaluation.
"""

PAPER_VANILLA_PROMPT = r"""You are a helpful assistant.
When the user asks a question, you first think about the reasoning process in mind and then provide the user with an answer.
The reasoning process and the answer are enclosed within <reasoning> </reasoning> and <answer> </answer> tags, respectively.
In your answer, you also enclose your final answer in the box: \boxed{}.
Therefore, you respond in the following strict format:
<reasoning>
reasoning process here
</reasoning>
<answer>
answer here
</answer>"""


def test_paper_motif_prompt_exact():
    assert system_prompt(3) == PAPER_MOTIF_PROMPT
    assert system_prompt(3).startswith("\n") and system_prompt(3).endswith(".\n")


def test_paper_vanilla_prompt_exact():
    assert system_prompt(1) == PAPER_VANILLA_PROMPT


def test_prompt_generalises_round_count():
    two = system_prompt(2)
    assert "solve it in 2 rounds" in two and "final (second) round" in two
    assert "in second round in the box" in two
    assert two.replace("2 rounds", "3 rounds").replace("second", "third") == PAPER_MOTIF_PROMPT
    assert "final (12th) round" in system_prompt(12)


@pytest.mark.parametrize(
    ("n", "word"),
    [
        (1, "first"),
        (3, "third"),
        (10, "tenth"),
        (11, "11th"),
        (21, "21st"),
        (22, "22nd"),
        (13, "13th"),
    ],
)
def test_ordinal(n, word):
    assert ordinal(n) == word


def test_round_messages_paper_three_rounds():
    q = "What is 2+2?"
    assert user_message(q, 1, 3) == q
    assert user_message(q, 2, 3, "S1") == 'What is 2+2? Progress in round 1: "S1"'
    assert (
        user_message(q, 3, 3, "S2")
        == 'What is 2+2? Progress in round 2: "S2" Current round is the final (third) round. '
        "Provide a final answer."
    )
    chat = round_messages(q, 2, 3, "S1")
    assert [m["role"] for m in chat] == ["system", "user"]
    assert chat[0]["content"] == PAPER_MOTIF_PROMPT


def test_only_previous_summary_is_carried():
    p = Protocol(rounds=4)
    text = p.messages("Q", 3, "second summary")[-1]["content"]
    assert "Progress in round 2" in text and "round 1" not in text
    assert "final" not in text
    assert p.messages("Q", 4, "s3")[-1]["content"].endswith(
        "Current round is the final (fourth) round. Provide a final answer."
    )


def test_single_round_is_the_vanilla_question():
    assert user_message("Q?", 1, 1) == "Q?"
    assert round_messages("Q?", 1, 1)[0]["content"] == PAPER_VANILLA_PROMPT


@pytest.mark.parametrize("bad", [0, -1, 2.5, None])
def test_bad_round_counts(bad):
    with pytest.raises(ValueError, match="rounds"):
        system_prompt(bad)


def test_round_index_out_of_range():
    with pytest.raises(ValueError, match="round_index"):
        user_message("Q", 4, 3)


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


def test_protocol_validates():
    with pytest.raises(ValueError, match="summary_rule"):
        Protocol(rounds=2, summary_rule="nope")
    with pytest.raises(ValueError, match="rounds"):
        Protocol(rounds=0)


def test_fold_system_puts_the_system_prompt_before_the_first_user_turn():
    from motif.prompts import fold_system

    chat = round_messages("Q?", 2, 3, "so far")
    folded = fold_system(chat)
    assert [m["role"] for m in folded] == ["user"]
    assert folded[0]["content"] == f"{chat[0]['content']}\n\n{chat[1]['content']}"
    assert chat[0]["role"] == "system"  # the given chat is left as it was
    reply = [*chat, {"role": "assistant", "content": "A"}]
    assert fold_system(reply)[1:] == reply[2:]
    user_only = chat[1:]
    assert fold_system(user_only) == user_only and fold_system(user_only) is not user_only
