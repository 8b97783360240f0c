"""The protocol of a run: how many rounds, and the carry-over between them.

Pure, no torch. :class:`Protocol` names a carry-over strategy and its parameters; what each
strategy does (prompts, budgets, stopping, reading) is :mod:`motif.carryover`'s, the texts are
:mod:`motif.prompts`', the answer format :mod:`motif.answer_format`'s.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from motif.carryover import CarryOver, SummaryRule, TailWindow, make_carry_over
from motif.prompts import Chat


@dataclass(frozen=True)
class Protocol:
    """A multi-round protocol: how many rounds, and how state is carried between them.

    Args:
        rounds: number of rounds (1 = the vanilla single-round prompt); for ``tail``, the
            most chunks of one thought (``window.max_chunks``).
        summary_rule: ``paper`` (reference extraction) or ``strict`` (tagged answers only).
        carry_over: ``summary`` (MOTIF: a fresh chat per round carrying the previous
            ``<answer>``), ``tail`` (Delethink: one assistant turn continued chunk by chunk
            from its first and last tokens) or ``none`` (one pass); see :mod:`motif.carryover`.
        window: the :class:`motif.carryover.TailWindow` of ``tail`` (required there, else None).
        round_end: ``budget`` (default: every round runs to its budget) or ``model``
            (``summary`` only: the model ends each round, a conclusion ends the trajectory,
            ``rounds`` is the cap phi; :class:`motif.carryover.ModelEndedCarryOver`).

    ``carry`` is the strategy these fields make (:func:`motif.carryover.make_carry_over`);
    everything that differs between carry-overs is asked of it.

    Raises:
        ValueError: bad ``rounds`` or ``summary_rule``; ``tail`` without a window or with
            ``rounds != window.max_chunks``; ``none`` with more than one round.
        ConfigError: a ``round_end`` that does not apply to ``carry_over``.
    """

    rounds: int = 3
    summary_rule: SummaryRule = "paper"
    carry_over: str = "summary"
    window: TailWindow | None = None
    round_end: str = "budget"
    carry: CarryOver = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.rounds, int) or self.rounds < 1:
            raise ValueError(f"rounds must be an integer >= 1, got {self.rounds!r}")
        if self.summary_rule not in ("paper", "strict"):
            raise ValueError(f"summary_rule must be 'paper' or 'strict', got {self.summary_rule!r}")
        carry = make_carry_over(
            self.carry_over, self.rounds, self.summary_rule, self.window, self.round_end
        )
        object.__setattr__(self, "carry", carry)

    @property
    def continues_turn(self) -> bool:
        """Whether later rounds continue the same assistant turn from token ids (``tail``)."""
        return self.carry.continues_turn

    def messages(self, question: str, round_index: int, summary: str | None = None) -> Chat:
        """Chat for ``round_index`` given what the previous round carried
        (:meth:`motif.carryover.CarryOver.chat`: a :class:`motif.prompts.RoundChat`)."""
        return self.carry.chat(question, round_index, summary)

    def summary(self, text: str) -> str:
        """What a round that wrote ``text`` carries into the next (``""`` for ``tail``/``none``)."""
        return self.carry.carried(text)

    def batch_messages(
        self, questions: Sequence[str], round_index: int, summaries: Sequence[str | None]
    ) -> list[Chat]:
        """Chats for many trajectories in the same round."""
        return [self.messages(q, round_index, s) for q, s in zip(questions, summaries, strict=True)]
