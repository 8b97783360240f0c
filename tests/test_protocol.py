"""The protocol: exact paper strings and round messages (table-driven)."""

from __future__ import annotations

import pytest

from motif.prompts import ordinal, round_messages, system_prompt, user_message
from motif.protocol import Protocol

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
