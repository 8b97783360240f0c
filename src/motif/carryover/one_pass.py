"""No carry-over: one pass, the whole budget in one context (``--carry-over none``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from motif.carryover.base import CarryOver
from motif.carryover.window import TailWindow
from motif.errors import ConfigError


@dataclass(frozen=True)
class OnePass(CarryOver):
    """No carry-over: one pass, the whole budget in one context."""

    name: ClassVar[str] = "none"
    later_rounds: ClassVar[bool] = False
    rounds_option: ClassVar[str | None] = None
    takes_rounds: ClassVar[bool] = False

    @property
    def rounds(self) -> int:  # type: ignore[override]
        return 1

    @classmethod
    def resolve_rounds(cls, args: Any) -> int:
        if args.rounds not in (None, 1):
            raise ConfigError(
                f"--carry-over none answers in one pass; drop --rounds {args.rounds} "
                "(its budget is --max-new-tokens) or use --carry-over summary"
            )
        return 1

    @classmethod
    def _why_one(cls) -> str:
        return " (--carry-over none)"

    @classmethod
    def heading(cls, index: int, new_tokens: int, carried_tokens: int, flag: str = "") -> str:
        return f"One pass ({new_tokens} tokens{flag})"

    @classmethod
    def label(cls, rounds: int, chunk: int | None = None) -> str:
        return "one pass"

    @classmethod
    def check_cell(cls, rounds: int, budget: int, text: str) -> None:
        if rounds != 1:
            raise ConfigError(
                f"--grid cell {text}: none is one pass; write none:1x{rounds * budget} "
                "(B is the whole budget)"
            )

    @classmethod
    def suggest_cell(cls, budget: int, total: int, head: int, keep: int | None) -> str:
        return f"use none:1x{total}"

    @classmethod
    def from_args(cls, args: Any) -> CarryOver:
        return cls()

    @classmethod
    def make(cls, rounds: int, summary_rule: str, window: TailWindow | None) -> CarryOver:
        cls._no_window(window)
        if rounds != 1:
            raise ValueError(f"carry_over='none' is one pass; got rounds={rounds}")
        return cls()
