"""The MOTIF multi-round protocol: how many rounds, and what each hands to the next.

Pure functions, no torch. The texts are :mod:`motif.prompts`', the answer format
:mod:`motif.answer_format`'s, the behaviour of each carry-over :mod:`motif.carryover`'s.

What is carried from round ``i`` into round ``i + 1`` (the *summary*):

* ``paper`` rule (default): ``text.split("<answer>")[-1].split("</answer>")[0].strip()``.
  A response without tags is therefore carried forward whole (stripped); an unclosed
  ``<answer>`` carries everything after it.
* ``strict`` rule: the content of the final ``<answer>`` block read as a structure
  (:func:`motif.answer_format.answer_span`), or the empty string when there is none (the
  model gets no credit for untagged text).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from motif.answer_format import parse_answer
from motif.carryover import TailWindow, check_carry_over
from motif.prompts import Chat, _check_rounds, round_messages

SummaryRule = Literal["paper", "strict"]


def extract_summary(text: str, rule: SummaryRule = "paper") -> str:
    """The summary carried into the next round (see the module docstring for the rules)."""
    if rule == "paper":
        return text.split("<answer>")[-1].split("</answer>")[0].strip()
    if rule == "strict":
        return parse_answer(text) or ""
    raise ValueError(f"unknown summary rule {rule!r}; use 'paper' or 'strict'")


@dataclass(frozen=True)
class Protocol:
    """A multi-round protocol: how many rounds, and how state is carried between them.

    Args:
        rounds: number of rounds (1 = the vanilla single-round prompt); for ``tail``, the
            most chunks of one thought (``window.max_chunks``).
        summary_rule: ``paper`` (reference extraction) or ``strict`` (tagged answers only).
        carry_over: ``summary`` (MOTIF: a fresh chat per round carrying the previous
            ``<answer>``), ``tail`` (Delethink: one assistant turn continued chunk by chunk
            from its first and last tokens, see :mod:`motif.carryover`) or ``none`` (one pass).
        window: the :class:`motif.carryover.TailWindow` of ``tail`` (required there, else None).

    Raises:
        ValueError: bad ``rounds`` or ``summary_rule``; ``tail`` without a window or with
            ``rounds != window.max_chunks``; ``none`` with more than one round.
    """

    rounds: int = 3
    summary_rule: SummaryRule = "paper"
    carry_over: str = "summary"
    window: TailWindow | None = None

    def __post_init__(self) -> None:
        _check_rounds(self.rounds)
        if self.summary_rule not in ("paper", "strict"):
            raise ValueError(f"summary_rule must be 'paper' or 'strict', got {self.summary_rule!r}")
        check_carry_over(self.carry_over, "carry_over")
        if self.carry_over == "tail":
            if self.window is None or self.window.max_chunks != self.rounds:
                raise ValueError("carry_over='tail' needs a TailWindow with max_chunks == rounds")
        elif self.window is not None:
            raise ValueError(
                f"a TailWindow only applies to carry_over='tail', not {self.carry_over!r}"
            )
        if self.carry_over == "none" and self.rounds != 1:
            raise ValueError(f"carry_over='none' is one pass; got rounds={self.rounds}")

    @property
    def continues_turn(self) -> bool:
        """Whether later rounds continue the same assistant turn (``tail``) from token ids."""
        return self.carry_over == "tail"

    def messages(self, question: str, round_index: int, summary: str | None = None) -> Chat:
        """Chat for ``round_index`` given the previous round's summary.

        ``tail`` and ``none`` always use the single-round prompt: a tail chunk continues the
        assistant turn of that chat (the carried tokens go after its generation prompt).
        """
        if self.carry_over != "summary":
            return round_messages(question, 1, 1)
        return round_messages(question, round_index, self.rounds, summary)

    def summary(self, text: str) -> str:
        """Summary of a response under this protocol's rule (``""`` for ``tail``/``none``)."""
        if self.carry_over != "summary":
            return ""
        return extract_summary(text, self.summary_rule)

    def batch_messages(
        self, questions: Sequence[str], round_index: int, summaries: Sequence[str | None]
    ) -> list[Chat]:
        """Chats for many trajectories in the same round."""
        return [self.messages(q, round_index, s) for q, s in zip(questions, summaries, strict=True)]
