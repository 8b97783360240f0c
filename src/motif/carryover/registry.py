"""Carry-over names to strategies: the one place a new strategy is registered."""

from __future__ import annotations

from motif.carryover.base import CarryOver, check_carry_over
from motif.carryover.one_pass import OnePass
from motif.carryover.summary import SummaryCarryOver
from motif.carryover.tail import TailCarryOver
from motif.carryover.window import TailWindow

_CLASSES: dict[str, type[CarryOver]] = {
    c.name: c for c in (SummaryCarryOver, TailCarryOver, OnePass)
}


def carry_over_class(name: str, option: str = "--carry-over") -> type[CarryOver]:
    """The strategy class of a carry-over ``name`` (as options and stored files spell it).

    Raises:
        ConfigError: an unknown name (the message names ``option``).
    """
    check_carry_over(name, option)
    return _CLASSES[name]


def make_carry_over(
    name: str, rounds: int = 3, summary_rule: str = "paper", window: TailWindow | None = None
) -> CarryOver:
    """The strategy ``name`` with its parameters (``rounds``, ``summary_rule`` for
    ``summary``; ``window`` for ``tail``, with ``rounds == window.max_chunks``; ``none``: one
    round).

    Raises:
        ValueError: parameters that do not belong together (a window without ``tail``,
            ``tail`` without one or with other rounds, ``none`` with more than one round).
    """
    check_carry_over(name, "carry_over")
    if name == "tail":
        if window is None or window.max_chunks != rounds:
            raise ValueError("carry_over='tail' needs a TailWindow with max_chunks == rounds")
        return TailCarryOver(window)
    if window is not None:
        raise ValueError(f"a TailWindow only applies to carry_over='tail', not {name!r}")
    if name == "none":
        if rounds != 1:
            raise ValueError(f"carry_over='none' is one pass; got rounds={rounds}")
        return OnePass()
    return SummaryCarryOver(rounds, summary_rule)  # type: ignore[arg-type]
