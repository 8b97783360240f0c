"""Carry-over names to strategies: the one place a new strategy is registered."""

from __future__ import annotations

from typing import Literal

from motif.carryover.base import CarryOver
from motif.carryover.one_pass import OnePass
from motif.carryover.summary import SummaryCarryOver
from motif.carryover.tail import TailCarryOver
from motif.carryover.window import TailWindow
from motif.errors import ConfigError

_CLASSES: dict[str, type[CarryOver]] = {
    c.name: c for c in (SummaryCarryOver, TailCarryOver, OnePass)
}
CARRY_OVERS: tuple[str, ...] = tuple(_CLASSES)
"""The names ``--carry-over`` accepts, in the order help lists them."""
CarryOverName = Literal["summary", "tail", "none"]
"""The names, for type checkers (tests check it lists :data:`CARRY_OVERS`)."""


def check_carry_over(name: str, option: str = "--carry-over") -> None:
    """Raise :class:`ConfigError` unless ``name`` is one of :data:`CARRY_OVERS`."""
    if name not in _CLASSES:
        raise ConfigError(f"{option} must be one of {', '.join(CARRY_OVERS)}; got {name!r}")


def carry_over_class(name: str, option: str = "--carry-over") -> type[CarryOver]:
    """The strategy class of a carry-over ``name`` (as options and stored files spell it).

    Raises:
        ConfigError: an unknown name (the message names ``option``).
    """
    check_carry_over(name, option)
    return _CLASSES[name]


def stored_carry_over(name: str | None) -> type[CarryOver]:
    """The strategy class a stored trajectory, eval config or run names; a file written
    before carry-overs existed names none and is the :attr:`~CarryOver.legacy` strategy's.

    Raises:
        ConfigError: an unknown name.
    """
    if name is None:
        return next(c for c in _CLASSES.values() if c.legacy)
    return carry_over_class(name, "carry_over")


def make_carry_over(
    name: str, rounds: int = 3, summary_rule: str = "paper", window: TailWindow | None = None
) -> CarryOver:
    """The strategy ``name`` built from :class:`motif.protocol.Protocol`'s fields
    (:meth:`CarryOver.make`: ``rounds`` and ``summary_rule`` for ``summary``; ``window``
    for ``tail``, with ``rounds == window.max_chunks``; ``none``: one round).

    Raises:
        ConfigError: an unknown name. ValueError: parameters that do not belong together.
    """
    return carry_over_class(name, "carry_over").make(rounds, summary_rule, window)
