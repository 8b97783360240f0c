"""Rounds the model ends itself (``--round-end model``): InftyThink's protocol.

InftyThink (arXiv 2503.06692) and InftyThink+ (arXiv 2602.06960): within a per-round cap of
new tokens, a round ends when the model closes its reply: either a *summary* of its progress,
which the next round carries exactly as MOTIF's summary carry-over does, or a *conclusion*
(a boxed final answer in the round's ``<answer>``), which ends the trajectory. At most
``phi`` rounds (``--max-rounds``); round ``phi`` is told it must conclude.
"""

from __future__ import annotations

from typing import Any, ClassVar

from motif.answer_format import extract_final_answer
from motif.carryover.summary import SummaryCarryOver
from motif.errors import ConfigError
from motif.prompts import RoundChat, model_ended_messages

DEFAULT_MAX_ROUNDS = 3
"""phi when ``--max-rounds`` is not given: the rounds of a default ``--carry-over summary``
run, so the two compare at the same largest total budget."""
MIN_ROUND_TOKENS = 32
"""The smallest per-round cap (new tokens) a model-ended round accepts: the answer format's
tags alone take about 15 to 25 tokens with common tokenizers, and a round must also reason
and write the state it hands on (or its conclusion) before the cap cuts it."""


class ModelEndedCarryOver(SummaryCarryOver):
    """The summary carry-over with rounds the model ends itself (``--round-end model``).

    ``rounds`` is phi, the most rounds. Each round is a fresh chat
    (:func:`motif.prompts.model_ended_messages`) carrying the previous round's summary
    (:func:`~motif.carryover.summary.extract_summary` under ``rule``); a round whose
    ``<answer>`` holds a boxed answer concludes and ends the trajectory
    (:meth:`finished`), whatever ``--early-stop`` says. Stored trajectories name the
    ``summary`` carry-over (they are read the same way); run identities add
    ``round_end: model`` (:meth:`identity`).

    Raises:
        ValueError: ``rounds < 1`` or an unknown ``rule``.
    """

    round_end: ClassVar[str] = "model"
    own_options: ClassVar[tuple[str, ...]] = ("round_end", "max_rounds")
    rounds_option: ClassVar[str | None] = "--max-rounds"
    takes_rounds: ClassVar[bool] = False

    def chat(self, question: str, index: int, carried: str | None = None) -> RoundChat:
        return model_ended_messages(question, index, self.rounds, carried)

    def finished(self, text: str, truncated: bool, early_stop: bool) -> bool:
        """A conclusion ends the trajectory: the round's ``<answer>`` holds a boxed answer
        (:func:`motif.answer_format.extract_final_answer`); a summary does not."""
        return extract_final_answer(text) is not None

    def identity(self) -> dict:
        return {"round_end": self.round_end}

    @classmethod
    def label(cls, rounds: int, chunk: int | None = None) -> str:
        """``up to 3 model-ended rounds``: phi is a cap, the model may conclude sooner."""
        return f"up to {rounds} model-ended round{'s' if rounds > 1 else ''}"

    @classmethod
    def check_budgets(
        cls,
        first: int,
        later: int | None,
        options: tuple[str, str] = ("--max-new-tokens", "--later-max-new-tokens"),
    ) -> None:
        """Refuse a per-round cap below :data:`MIN_ROUND_TOKENS`."""
        for option, value in zip(options, (first, later), strict=True):
            if value is not None and value < MIN_ROUND_TOKENS:
                raise ConfigError(
                    f"{option} {value} is a per-round cap too small for --round-end model: a "
                    f"round must hold its tags, its reasoning and the state it hands on; use "
                    f"{option} {MIN_ROUND_TOKENS} or more"
                )

    @classmethod
    def check_efficiency_reward(cls) -> None:
        """The efficiency reward counts the rounds the model chose to use: it applies."""

    @classmethod
    def resolve_rounds(cls, args: Any) -> int:
        phi = DEFAULT_MAX_ROUNDS if args.max_rounds is None else args.max_rounds
        if args.rounds not in (None, phi):
            raise ConfigError(
                f"--round-end model caps the rounds with --max-rounds (phi = {phi}); drop "
                f"--rounds {args.rounds} or use --max-rounds {args.rounds}"
            )
        return phi

    @classmethod
    def check_args(cls, args: Any) -> None:
        if args.early_stop:
            raise ConfigError(
                "--early-stop does not apply to --round-end model: a conclusion (a boxed "
                "answer) always ends the trajectory; drop --early-stop"
            )
