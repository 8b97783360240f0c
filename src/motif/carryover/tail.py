"""Delethink's carry-over: one assistant turn continued chunk by chunk (``--carry-over tail``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from motif.carryover.base import CarryOver
from motif.carryover.window import TAIL_OPTIONS, TailWindow, tail_window
from motif.errors import ConfigError


@dataclass(frozen=True)
class TailCarryOver(CarryOver):
    """Delethink's carry-over: one assistant turn continued chunk by chunk from the first
    ``h`` and last ``m`` tokens of the thought (:class:`TailWindow`); ``rounds`` is the
    window's ``I``."""

    name: ClassVar[str] = "tail"
    unit: ClassVar[str] = "chunk"
    continues_turn: ClassVar[bool] = True
    joins_rounds: ClassVar[bool] = True
    sets_budgets: ClassVar[bool] = True
    own_options: ClassVar[tuple[str, ...]] = TAIL_OPTIONS
    rounds_option: ClassVar[str | None] = "--tail-chunks"
    takes_rounds: ClassVar[bool] = False

    window: TailWindow = TailWindow()

    @property
    def rounds(self) -> int:  # type: ignore[override]
        return self.window.max_chunks

    def prefix(self, thought_ids: Sequence[int]) -> list[int] | None:
        return self.window.carried(thought_ids)

    def tail_window(self) -> TailWindow | None:
        return self.window

    def identity(self) -> dict:
        w = self.window
        return {
            "window": {
                "chunk": w.chunk,
                "head": w.head,
                "keep": w.keep_tail,
                "chunks": w.max_chunks,
            }
        }

    def max_new_tokens(self, index: int, first: int, later: int | None) -> int:
        """The window's: ``C`` for chunk 1, ``C - h - m`` after, whatever the options say."""
        return self.window.new_tokens(index)

    def budget_option(self, index: int) -> str:
        return "--tail-chunk (C: chunk 1's budget, and every later chunk's carried plus new)"

    def largest_budget(self, first: int, later: int | None) -> tuple[int, str]:
        return self.window.chunk, "--tail-chunk"

    @classmethod
    def overflow_fix(cls, rounds: Sequence[int]) -> str:
        return "lower --tail-chunk (every chunk's context), or use a model with a longer context"

    def finished(self, text: str, truncated: bool, early_stop: bool) -> bool:
        """A thought ends at its end-of-sequence: a chunk that stopped before its budget."""
        return not truncated

    @classmethod
    def resolve_rounds(cls, args: Any) -> int:
        chunks = tail_window(args).max_chunks  # checks C, h, m, I first
        if args.rounds not in (None, chunks):
            raise ConfigError(
                f"--carry-over tail counts chunks with --tail-chunks ({chunks}); "
                f"drop --rounds {args.rounds} or set --tail-chunks {args.rounds}"
            )
        return chunks

    @classmethod
    def check_args(cls, args: Any) -> None:
        if args.early_stop:
            raise ConfigError(
                "--early-stop does not apply to --carry-over tail: a thought already stops at "
                "its end-of-sequence; drop --early-stop"
            )

    @classmethod
    def unused_options(cls, args: Any) -> list[tuple[str, tuple[str, ...], str]]:
        budgets = "--carry-over tail: --tail-chunk and the window set each chunk's budget"
        return [
            ("generation", ("max_new_tokens", "later_max_new_tokens"), budgets),
            ("protocol", ("summary_rule",), "--carry-over tail carries tokens"),
        ]

    @classmethod
    def from_args(cls, args: Any) -> CarryOver:
        return cls(window=tail_window(args))

    @classmethod
    def make(cls, rounds: int, summary_rule: str, window: TailWindow | None) -> CarryOver:
        if window is None or window.max_chunks != rounds:
            raise ValueError("carry_over='tail' needs a TailWindow with max_chunks == rounds")
        return cls(window)

    @classmethod
    def heading(cls, index: int, new_tokens: int, carried_tokens: int, flag: str = "") -> str:
        carried = f", {carried_tokens} carried" if carried_tokens else ""
        return f"Chunk {index} ({new_tokens} new tokens{carried}{flag})"

    @classmethod
    def label(cls, rounds: int, chunk: int | None = None) -> str:
        return f"tail {rounds} chunk{'s' if rounds > 1 else ''} of {chunk}"

    @classmethod
    def cell_total_budget(cls, rounds: int, budget: int, head: int, keep: int | None) -> int:
        return TailWindow(chunk=budget, head=head, tail=keep, max_chunks=rounds).total_budget

    @classmethod
    def cell_options(cls, rounds: int, budget: int) -> dict[str, int | None]:
        return {"rounds": None, "tail_chunk": budget, "tail_chunks": rounds}

    @classmethod
    def cell_note(cls, rounds: int, budget: int, head: int, keep: int | None) -> str:
        window = TailWindow(chunk=budget, head=head, tail=keep, max_chunks=rounds)
        return f" ({window.chunk} + {window.max_chunks - 1} x {window.later_new_tokens})"

    @classmethod
    def suggest_cell(cls, budget: int, total: int, head: int, keep: int | None) -> str:
        step = TailWindow(chunk=budget, head=head, tail=keep).later_new_tokens
        if total >= budget and (total - budget) % step == 0:
            return f"use tail:{1 + (total - budget) // step}x{budget}"
        return (
            f"no chunk count of C = {budget} totals {total} (C + (I-1) x {step}); change C, "
            "--tail-head/--tail-keep or the total"
        )
