"""The carry-over strategy interface (:class:`CarryOver`) and the names ``--carry-over`` takes.

What every strategy must say, with the defaults most share; each strategy is one subclass in a
module of its own (:mod:`~motif.carryover.summary`, :mod:`~motif.carryover.tail`,
:mod:`~motif.carryover.one_pass`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Literal

from motif.answer_format import extract_final_answer
from motif.carryover.window import TailWindow
from motif.errors import ConfigError
from motif.prompts import RoundChat, round_messages

CarryOverName = Literal["summary", "tail", "none"]


class CarryOver:
    """A carry-over strategy: what one round hands to the next, and all that follows from it.

    Subclasses set the class attributes and override what differs; an instance knows its
    ``rounds`` (rounds, chunks, or 1). Class-level behaviour (reading stored texts, resolving
    options) needs no instance: :func:`carry_over_class` gives the class of a stored name.

    Class attributes:
        name: the ``--carry-over`` spelling, stored in every trajectory and eval config.
        unit: what one step of it is called in messages (``round``, ``chunk``, ``pass``).
        continues_turn: later rounds continue the same assistant turn from token ids
            (:meth:`prefix`), so a backend must return token ids and a template must let an
            assistant turn be continued.
        hands_state: a round hands a separate text (its summary) to the next one.
        joins_rounds: the rounds' texts are pieces of one text (the answer is read from them
            joined).
        own_options: ``ProtocolArgs`` fields only this strategy reads.
        legacy: runs written before carry-overs existed are this strategy's: its name is left
            out of run identities and default folder names, so they still resume.
        later_rounds: the strategy has rounds after the first (their budget is recorded).
        sets_budgets: the strategy sets every round's budget itself (:meth:`max_new_tokens`
            ignores ``--max-new-tokens`` and ``--later-max-new-tokens``).
        takes_rounds: ``--rounds`` sets how many rounds it runs (else its own option, or
            always one).
        rounds_option: the option that sets how many rounds it runs (``--rounds``,
            ``--tail-chunks``, ``--max-rounds``; None: always one), as messages name it.
        round_end: what ends a round (``--round-end``): ``budget`` (it runs to its token
            budget or its end-of-sequence, and a fixed number of rounds run) or ``model``
            (the model ends each round and, with a conclusion, the trajectory).
    """

    name: ClassVar[str]
    unit: ClassVar[str] = "round"
    continues_turn: ClassVar[bool] = False
    hands_state: ClassVar[bool] = False
    joins_rounds: ClassVar[bool] = False
    own_options: ClassVar[tuple[str, ...]] = ()
    legacy: ClassVar[bool] = False
    later_rounds: ClassVar[bool] = True
    sets_budgets: ClassVar[bool] = False
    rounds_option: ClassVar[str | None] = "--rounds"
    takes_rounds: ClassVar[bool] = True
    round_end: ClassVar[str] = "budget"

    rounds: int

    # -- a round's prompt -------------------------------------------------------------
    def chat(self, question: str, index: int, carried: str | None = None) -> RoundChat:
        """The chat of round ``index`` (1-based) given what the previous round carried.

        The single-round prompt by default: a strategy that carries no text in the prompt.
        """
        return round_messages(question, 1, 1)

    def carried(self, text: str) -> str:
        """The text a round that wrote ``text`` hands to the next round's prompt (``""``:
        none)."""
        return ""

    def prefix(self, thought_ids: Sequence[int]) -> list[int] | None:
        """Token ids a later round's assistant turn already holds (None: a fresh turn)."""
        return None

    def tail_window(self) -> TailWindow | None:
        """The :class:`TailWindow` this strategy chunks a thought with (None: it does not)."""
        return None

    # -- budgets ---------------------------------------------------------------------------
    def max_new_tokens(self, index: int, first: int, later: int | None) -> int:
        """Round ``index``'s budget of new tokens, given ``--max-new-tokens`` (``first``) and
        ``--later-max-new-tokens`` (``later``, None: as ``first``)."""
        return first if index == 1 or not later else later

    def budget_option(self, index: int) -> str:
        """The option that sets round ``index``'s budget, as an error message names it."""
        if self.rounds == 1:
            return "--max-new-tokens"
        if index == 1:
            return "--max-new-tokens (round 1's budget)"
        return "--later-max-new-tokens (the budget of rounds 2..n)"

    def largest_budget(self, first: int, later: int | None) -> tuple[int, str]:
        """(the largest per-round budget, the option that sets it)."""
        if self.rounds > 1 and later and later > first:
            return later, "--later-max-new-tokens"
        return first, "--max-new-tokens"

    @classmethod
    def check_budgets(
        cls,
        first: int,
        later: int | None,
        options: tuple[str, str] = ("--max-new-tokens", "--later-max-new-tokens"),
    ) -> None:
        """Refuse per-round budgets (``first``, ``later``: None as ``first``, in new tokens)
        this strategy cannot run, before any model loads (:class:`ConfigError`, one line
        naming the option of ``options`` that sets it). Any budget >= 1 by default."""

    @classmethod
    def check_efficiency_reward(cls) -> None:
        """Refuse InftyThink+'s efficiency reward (:func:`motif.rewards.efficiency_factor`),
        which counts the rounds a model chose to use, unless the model ends its rounds.

        Raises:
            ConfigError: one line naming ``--efficiency-reward`` and the fix.
        """
        raise ConfigError(
            "--efficiency-reward scores how many rounds the model chose to use, so it needs "
            "rounds the model ends itself: add --round-end model (with --carry-over summary) "
            "or drop --efficiency-reward"
        )

    @classmethod
    def overflow_fix(cls, rounds: Sequence[int]) -> str:
        """The options that would make the cut ``rounds`` (1-based) fit the context."""
        fixes = []
        if 1 in rounds:
            fixes.append("lower --max-new-tokens (round 1's budget)")
        if any(r > 1 for r in rounds):
            fixes.append(
                "lower --later-max-new-tokens, or pass --context-overflow truncate to cut the "
                "carried summary"
            )
        return "; ".join(fixes) + ", or use a model with a longer context"

    # -- stopping and reading ------------------------------------------------------------
    def finished(self, text: str, truncated: bool, early_stop: bool) -> bool:
        """Whether a trajectory whose last round wrote ``text`` (``truncated``: it stopped at
        its budget) ends before its last round: with ``early_stop``, once that round's
        ``<answer>`` holds a boxed answer."""
        return early_stop and extract_final_answer(text) is not None

    @classmethod
    def read_texts(cls, texts: Sequence[str]) -> list[str]:
        """The rounds' ``texts`` as a reader takes them: one text per round, or for a
        strategy that ``joins_rounds`` the one text they are pieces of."""
        return ["".join(texts)] if cls.joins_rounds else list(texts)

    @classmethod
    def answer_text(cls, texts: Sequence[str]) -> str:
        """The text the answer after the rounds with these ``texts`` is read from."""
        read = cls.read_texts(texts)
        return read[-1] if read else ""

    @classmethod
    def heading(cls, index: int, new_tokens: int, carried_tokens: int, flag: str = "") -> str:
        """A stored round's heading in a text view: ``Round 2 (12 tokens, truncated)``."""
        return f"{cls.unit.title()} {index} ({new_tokens} tokens{flag})"

    @classmethod
    def label(cls, rounds: int, chunk: int | None = None) -> str:
        """How a run's protocol reads in a table row: ``3 rounds``."""
        return f"{rounds} {cls.unit}{'s' if rounds > 1 else ''}"

    def identity(self) -> dict:
        """This strategy's own parameters as a run identity records them (``{}``: none
        beyond rounds and the summary rule): a re-run with other values refuses the folder."""
        return {}

    # -- options ---------------------------------------------------------------------------
    @classmethod
    def resolve_rounds(cls, args: Any) -> int:
        """The rounds a ``ProtocolArgs`` means under this strategy (``args.rounds`` None:
        the strategy's default). Raises :class:`ConfigError` naming the option."""
        raise NotImplementedError

    @classmethod
    def check_args(cls, args: Any) -> None:
        """Refuse options this strategy cannot honour (:class:`ConfigError`, one line)."""

    @classmethod
    def unused_options(cls, args: Any) -> list[tuple[str, tuple[str, ...], str]]:
        """The options a run of ``args`` (a resolved ``ProtocolArgs``) ignores, as
        ``(where, fields, why)``: ``where`` is ``"generation"`` (``GenerationArgs`` fields) or
        ``"protocol"`` (``ProtocolArgs`` fields), ``why`` the note's reason."""
        if args.rounds != 1:
            return []
        why = f"one round{cls._why_one()}"
        return [
            ("generation", ("later_max_new_tokens",), why),
            ("protocol", ("summary_rule",), why),
        ]

    @classmethod
    def _why_one(cls) -> str:
        return ""

    @classmethod
    def from_args(cls, args: Any) -> CarryOver:
        """The strategy a (resolved) ``ProtocolArgs`` describes."""
        raise NotImplementedError

    @classmethod
    def make(cls, rounds: int, summary_rule: str, window: TailWindow | None) -> CarryOver:
        """The strategy from :class:`motif.protocol.Protocol`'s fields.

        Raises:
            ValueError: parameters that do not belong to this strategy (a window where it
                takes none, a round count it cannot run).
        """
        raise NotImplementedError(f"{cls.__name__} does not say how Protocol builds it")

    @classmethod
    def _no_window(cls, window: TailWindow | None) -> None:
        if window is not None:
            raise ValueError(f"a TailWindow only applies to carry_over='tail', not {cls.name!r}")

    # -- equal-budget grids ------------------------------------------------------------
    @classmethod
    def cell_total_budget(cls, rounds: int, budget: int, head: int, keep: int | None) -> int:
        """Most new tokens of one trajectory of a grid cell (``budget`` per round)."""
        return rounds * budget

    @classmethod
    def cell_largest_context(cls, rounds: int, budget: int) -> int:
        """Most model-written tokens in one round's context of a grid cell."""
        return budget

    @classmethod
    def check_cell(cls, rounds: int, budget: int, text: str) -> None:
        """Refuse a grid cell ``text`` (``STRATEGY:NxB``) this strategy cannot run."""

    @classmethod
    def cell_options(cls, rounds: int, budget: int) -> dict[str, int | None]:
        """The ``ProtocolArgs`` fields a grid cell of ``rounds`` x ``budget`` sets."""
        return {"rounds": None}

    @classmethod
    def cell_note(cls, rounds: int, budget: int, head: int, keep: int | None) -> str:
        """How a cell's total budget is made up, when not ``rounds x budget`` (``""``)."""
        return ""

    @classmethod
    def suggest_cell(cls, budget: int, total: int, head: int, keep: int | None) -> str:
        """A cell of this strategy and per-round ``budget`` that totals ``total``, if any."""
        if total % budget == 0:
            return f"use {cls.name}:{total // budget}x{budget}"
        return f"no round count of {budget} tokens totals {total}; change B or the total"
