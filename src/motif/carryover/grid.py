"""Equal-budget grid cells (``motif eval --grid``): a strategy, its rounds and per-round budget."""

from __future__ import annotations

from dataclasses import dataclass

from motif.carryover.registry import CarryOverName, carry_over_class
from motif.carryover.window import TailWindow


@dataclass(frozen=True)
class GridCell:
    """One cell of an equal-budget comparison.

    Args:
        carry_over: the strategy.
        rounds: rounds (``summary``), chunks (``tail``), or 1 (``none``).
        budget: new tokens per round (``summary``: every round; ``tail``: the chunk size C;
            ``none``: the whole budget).
    """

    carry_over: CarryOverName
    rounds: int
    budget: int

    def total_budget(self, head: int = 0, keep: int | None = None) -> int:
        """Most new tokens of one trajectory under this cell."""
        return carry_over_class(self.carry_over).cell_total_budget(
            self.rounds, self.budget, head, keep
        )

    def largest_context(self) -> int:
        """Most model-written tokens in one round's context (prompt template and question aside).

        ``summary``: 2B, the carried previous answer (at most B tokens, it was written in the
        previous round) plus B new tokens; ``tail``: C (the carried h + m plus C - h - m new);
        ``none``: the whole budget. The measured context (prompt included) is in each eval's
        ``tokens.largest_round_context``.
        """
        return carry_over_class(self.carry_over).cell_largest_context(self.rounds, self.budget)

    def window(self, head: int = 0, keep: int | None = None) -> TailWindow:
        """The :class:`TailWindow` of a ``tail`` cell."""
        return TailWindow(chunk=self.budget, head=head, tail=keep, max_chunks=self.rounds)

    @property
    def label(self) -> str:
        """``summary-3x64``, ``tail-3x64``, ``none-1x192``."""
        return f"{self.carry_over}-{self.rounds}x{self.budget}"
