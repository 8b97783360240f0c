"""MOTIF's carry-over: a fresh chat each round, carrying the previous round's summary."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from motif.answer_format import parse_answer
from motif.carryover.base import CarryOver
from motif.carryover.window import TailWindow
from motif.prompts import RoundChat, round_messages

SummaryRule = Literal["paper", "strict"]
SUMMARY_RULES: tuple[str, ...] = ("paper", "strict")
"""The ``--summary-rule`` values: what a round's summary is read as (:func:`extract_summary`)."""


def extract_summary(text: str, rule: SummaryRule = "paper") -> str:
    """The summary a ``summary`` round carries into the next round.

    ``paper`` (the reference implementation's, default):
    ``text.split("<answer>")[-1].split("</answer>")[0].strip()``: a response without tags is
    carried forward whole (stripped); an unclosed ``<answer>`` carries everything after it.
    ``strict``: the content of the final ``<answer>`` block read as a structure
    (:func:`motif.answer_format.answer_span`), or ``""`` when there is none (the model gets no
    credit for untagged text).

    Raises:
        ValueError: an unknown ``rule``.
    """
    if rule == "paper":
        return text.split("<answer>")[-1].split("</answer>")[0].strip()
    if rule == "strict":
        return parse_answer(text) or ""
    raise ValueError(f"unknown summary rule {rule!r}; use 'paper' or 'strict'")


@dataclass(frozen=True)
class SummaryCarryOver(CarryOver):
    """MOTIF's carry-over: each round a fresh chat with the question and the previous
    round's summary (:func:`extract_summary` under ``rule``).

    Raises:
        ValueError: ``rounds < 1`` or an unknown ``rule``.
    """

    name: ClassVar[str] = "summary"
    hands_state: ClassVar[bool] = True
    legacy: ClassVar[bool] = True

    rounds: int = 3
    rule: SummaryRule = "paper"

    def __post_init__(self) -> None:
        if not isinstance(self.rounds, int) or self.rounds < 1:
            raise ValueError(f"rounds must be an integer >= 1, got {self.rounds!r}")
        if self.rule not in SUMMARY_RULES:
            raise ValueError(f"summary_rule must be 'paper' or 'strict', got {self.rule!r}")

    def chat(self, question: str, index: int, carried: str | None = None) -> RoundChat:
        return round_messages(question, index, self.rounds, carried)

    def carried(self, text: str) -> str:
        return extract_summary(text, self.rule)

    @classmethod
    def resolve_rounds(cls, args: Any) -> int:
        return 3 if args.rounds is None else args.rounds

    @classmethod
    def from_args(cls, args: Any) -> CarryOver:
        return cls(rounds=args.rounds, rule=args.summary_rule)

    @classmethod
    def make(cls, rounds: int, summary_rule: str, window: TailWindow | None) -> CarryOver:
        cls._no_window(window)
        return cls(rounds, summary_rule)  # type: ignore[arg-type]

    @classmethod
    def cell_largest_context(cls, rounds: int, budget: int) -> int:
        """2B with more than one round: the carried answer (at most B tokens, written in the
        previous round) plus B new tokens."""
        return 2 * budget if rounds > 1 else budget

    @classmethod
    def cell_options(cls, rounds: int, budget: int) -> dict[str, int | None]:
        return {"rounds": rounds}
