"""The MOTIF multi-round protocol: prompts, round messages and response parsers.

Pure functions, no torch. The ``paper`` preset reproduces the reference implementation
(purbeshmitra/MOTIF) character for character; see ``docs/protocol.md``.

What is carried from round ``i`` into round ``i + 1`` (the *summary*):

* ``paper`` rule (default): ``text.split("<answer>")[-1].split("</answer>")[0].strip()``.
  A response without tags is therefore carried forward whole (stripped); an unclosed
  ``<answer>`` carries everything after it.
* ``strict`` rule: the content of the last complete ``<answer>...</answer>`` pair, or the
  empty string when there is none (the model gets no credit for untagged text).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

Message = dict[str, str]
Chat = list[Message]
SummaryRule = Literal["paper", "strict"]

_ORDINALS = (
    "first",
    "second",
    "third",
    "fourth",
    "fifth",
    "sixth",
    "seventh",
    "eighth",
    "ninth",
    "tenth",
)

VANILLA_SYSTEM_PROMPT = (
    "You are a helpful assistant.\n"
    "When the user asks a question, you first think about the reasoning process in mind "
    "and then provide the user with an answer.\n"
    "The reasoning process and the answer are enclosed within <reasoning> </reasoning> and "
    "<answer> </answer> tags, respectively.\n"
    "In your answer, you also enclose your final answer in the box: \\boxed{}.\n"
    "Therefore, you respond in the following strict format:\n"
    "<reasoning>\n"
    "reasoning process here\n"
    "</reasoning>\n"
    "<answer>\n"
    "answer here\n"
    "</answer>"
)

_MULTI_ROUND_TEMPLATE = (
    "\n"
    "You are a helpful assistant. When the user asks a question, you solve it in {n} rounds.\n"
    "In each round, you first think about the reasoning process of answering and then provide "
    "the user with a detailed progress about it.\n"
    "The reasoning process and the progress are enclosed within <reasoning> </reasoning> and "
    "<answer> </answer> tags respectively.\n"
    "Therefore, you follow the strict format:\n"
    "<reasoning>\n"
    "reasoning process here\n"
    "</reasoning>\n"
    "<answer>\n"
    "detailed progress here\n"
    "</answer>\n"
    "\n"
    "The User provides this detailed progress as additional context in the next round.\n"
    "You then respond again with further thinking and further progress.\n"
    "When the User says that current round is the final ({ordinal}) round, you provide an "
    "answer inside the answer tags.\n"
    "You also enclose a final answer in {ordinal} round in the box: \\boxed{{}}. "
    "Only this boxed final answer is used for evaluation.\n"
)


def ordinal(n: int) -> str:
    """English ordinal word for ``n`` ("third"), falling back to "11th" style past ten."""
    if 1 <= n <= len(_ORDINALS):
        return _ORDINALS[n - 1]
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _check_rounds(rounds: int) -> None:
    if not isinstance(rounds, int) or rounds < 1:
        raise ValueError(f"rounds must be an integer >= 1, got {rounds!r}")


def system_prompt(rounds: int) -> str:
    """System prompt for an ``rounds``-round protocol.

    ``rounds == 1`` is the reference's vanilla GRPO prompt; ``rounds == 3`` is the paper's
    MOTIF prompt exactly; other values generalise the MOTIF prompt's round count and ordinal.
    """
    _check_rounds(rounds)
    if rounds == 1:
        return VANILLA_SYSTEM_PROMPT
    return _MULTI_ROUND_TEMPLATE.format(n=rounds, ordinal=ordinal(rounds))


def user_message(question: str, round_index: int, rounds: int, summary: str | None = None) -> str:
    """The user turn of round ``round_index`` (1-based) out of ``rounds``.

    Round 1 is the question unchanged. A later round appends only the previous round's
    summary; the last round of a multi-round protocol also appends the final-round
    instruction.
    """
    _check_rounds(rounds)
    if not 1 <= round_index <= rounds:
        raise ValueError(f"round_index must be in 1..{rounds}, got {round_index}")
    text = question
    if round_index > 1:
        text += f' Progress in round {round_index - 1}: "{summary or ""}"'
    if rounds > 1 and round_index == rounds:
        text += f" Current round is the final ({ordinal(rounds)}) round. Provide a final answer."
    return text


def round_messages(
    question: str, round_index: int, rounds: int, summary: str | None = None
) -> Chat:
    """The two-message chat (system, user) of one round: each round is a fresh chat."""
    return [
        {"role": "system", "content": system_prompt(rounds)},
        {"role": "user", "content": user_message(question, round_index, rounds, summary)},
    ]


def parse_reasoning(text: str) -> str | None:
    """Content of the first complete ``<reasoning>...</reasoning>`` pair, stripped; else None."""
    start = text.find("<reasoning>")
    if start < 0:
        return None
    end = text.find("</reasoning>", start)
    if end < 0:
        return None
    return text[start + len("<reasoning>") : end].strip()


def parse_answer(text: str) -> str | None:
    """Content of the last ``<answer>`` that is closed by a later ``</answer>``, stripped.

    None when no ``<answer>`` is closed.
    """
    start = text.rfind("<answer>")
    while start >= 0:
        end = text.find("</answer>", start)
        if end >= 0:
            return text[start + len("<answer>") : end].strip()
        start = text.rfind("<answer>", 0, start)
    return None


def extract_summary(text: str, rule: SummaryRule = "paper") -> str:
    """The summary carried into the next round (see the module docstring for the rules)."""
    if rule == "paper":
        return text.split("<answer>")[-1].split("</answer>")[0].strip()
    if rule == "strict":
        return parse_answer(text) or ""
    raise ValueError(f"unknown summary rule {rule!r}; use 'paper' or 'strict'")


_BOXED = re.compile(r"\\(?:boxed|fbox)\s*\{")


def _matching_braces(text: str) -> dict[int, int]:
    """Map the index of every balanced ``{`` to its ``}`` in one linear pass.

    Escaped characters (``\\{``, ``\\}``) never count, so ``\\boxed{\\{1\\}}`` is one box.
    """
    pairs: dict[int, int] = {}
    stack: list[int] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\":
            i += 2
            continue
        if ch == "{":
            stack.append(i)
        elif ch == "}" and stack:
            pairs[stack.pop()] = i
        i += 1
    return pairs


def parse_boxed(text: str) -> str | None:
    """Content of the last complete ``\\boxed{...}`` (or ``\\fbox{...}``), braces balanced.

    "Last" is the right-most box opening, as in the usual ``last_boxed_only_string``; nested
    braces are kept (``\\boxed{\\frac{1}{2}}`` gives ``\\frac{1}{2}``). A box never closed
    is skipped, so an earlier complete box is returned instead; None when there is none.
    Linear time, so megabyte-long garbage returns quickly.
    """
    if not text or "box" not in text:
        return None
    pairs = _matching_braces(text)
    for match in reversed(list(_BOXED.finditer(text))):
        close = pairs.get(match.end() - 1)
        if close is not None:
            return text[match.end() : close].strip()
    return None


def extract_final_answer(text: str, fallback: Literal["none", "response"] = "none") -> str | None:
    """The final answer of a last-round response.

    The last ``\\boxed{}`` inside the last ``<answer>...</answer>``. With
    ``fallback="response"``, when that gives nothing, the last ``\\boxed{}`` anywhere in the
    response. None when nothing is found.
    """
    if fallback not in ("none", "response"):
        raise ValueError(f"unknown fallback {fallback!r}; use 'none' or 'response'")
    answer = parse_answer(text)
    boxed = parse_boxed(answer) if answer is not None else None
    if boxed is None and fallback == "response":
        boxed = parse_boxed(text)
    return boxed


@dataclass(frozen=True)
class Protocol:
    """A multi-round protocol: how many rounds, and how summaries are carried.

    Args:
        rounds: number of rounds (1 = the vanilla single-round prompt).
        summary_rule: ``paper`` (reference extraction) or ``strict`` (tagged answers only).
    """

    rounds: int = 3
    summary_rule: SummaryRule = "paper"

    def __post_init__(self) -> None:
        _check_rounds(self.rounds)
        if self.summary_rule not in ("paper", "strict"):
            raise ValueError(f"summary_rule must be 'paper' or 'strict', got {self.summary_rule!r}")

    def messages(self, question: str, round_index: int, summary: str | None = None) -> Chat:
        """Chat for ``round_index`` given the previous round's summary."""
        return round_messages(question, round_index, self.rounds, summary)

    def summary(self, text: str) -> str:
        """Summary of a response under this protocol's rule."""
        return extract_summary(text, self.summary_rule)

    def batch_messages(
        self, questions: Sequence[str], round_index: int, summaries: Sequence[str | None]
    ) -> list[Chat]:
        """Chats for many trajectories in the same round."""
        return [self.messages(q, round_index, s) for q, s in zip(questions, summaries, strict=True)]
