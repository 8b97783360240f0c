"""Carry-over names to strategies: the one place a new strategy is registered."""

from __future__ import annotations

from typing import Literal

from motif.carryover.base import CarryOver
from motif.carryover.model_ended import ModelEndedCarryOver
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
ROUND_ENDS: tuple[str, ...] = ("budget", "model")
"""What ``--round-end`` accepts: ``budget`` (every strategy, the default) or ``model``."""
_ROUND_ENDED: dict[tuple[str, str], type[CarryOver]] = {
    (c.name, c.round_end): c for c in (ModelEndedCarryOver,)
}


def strategy_classes() -> tuple[type[CarryOver], ...]:
    """Every registered strategy class, the round-end variants included (for what depends on
    all of them, e.g. the options some strategy owns)."""
    return (*_CLASSES.values(), *_ROUND_ENDED.values())


def check_round_end(round_end: str, carry_over: str) -> None:
    """Raise :class:`ConfigError` unless ``--round-end round_end`` applies to ``carry_over``."""
    if round_end not in ROUND_ENDS:
        raise ConfigError(f"--round-end must be one of {', '.join(ROUND_ENDS)}; got {round_end!r}")
    if round_end != "budget" and (carry_over, round_end) not in _ROUND_ENDED:
        takes = sorted(name for name, end in _ROUND_ENDED if end == round_end)
        raise ConfigError(
            f"--round-end {round_end} applies to --carry-over {' or '.join(takes)} (the model "
            f"ends a round by closing its summary), not --carry-over {carry_over}: use "
            f"--carry-over {takes[0]} or drop --round-end"
        )


def check_carry_over(name: str, option: str = "--carry-over") -> None:
    """Raise :class:`ConfigError` unless ``name`` is one of :data:`CARRY_OVERS`."""
    if name not in _CLASSES:
        raise ConfigError(f"{option} must be one of {', '.join(CARRY_OVERS)}; got {name!r}")


def carry_over_class(
    name: str, option: str = "--carry-over", round_end: str = "budget"
) -> type[CarryOver]:
    """The strategy class of a carry-over ``name`` (as options and stored files spell it)
    whose rounds end as ``round_end`` says (``model``: :class:`ModelEndedCarryOver`).

    Raises:
        ConfigError: an unknown name (the message names ``option``), or a ``round_end`` that
            does not apply to it.
    """
    check_carry_over(name, option)
    if round_end == "budget":
        return _CLASSES[name]
    check_round_end(round_end, name)
    return _ROUND_ENDED[(name, round_end)]


def stored_carry_over(name: str | None, round_end: str | None = None) -> type[CarryOver]:
    """The strategy class a stored trajectory, eval config or run names; a file written
    before carry-overs existed names none and is the :attr:`~CarryOver.legacy` strategy's.
    ``round_end``: the stored ``round_end`` beside it (files of budget-ended rounds, and those
    from before ``--round-end``, have none).

    Raises:
        ConfigError: an unknown name, or a ``round_end`` that does not apply to it.
    """
    if name is None:
        name = next(c for c in _CLASSES.values() if c.legacy).name
    return carry_over_class(name, "carry_over", round_end or "budget")


def protocol_carry_over(protocol: dict | None) -> type[CarryOver]:
    """The strategy class of a stored protocol block (a run identity's ``protocol``: its
    ``carry_over`` and ``round_end``; None or missing keys: the legacy strategy's)."""
    protocol = protocol or {}
    return stored_carry_over(protocol.get("carry_over"), protocol.get("round_end"))


def make_carry_over(
    name: str,
    rounds: int = 3,
    summary_rule: str = "paper",
    window: TailWindow | None = None,
    round_end: str = "budget",
) -> CarryOver:
    """The strategy ``name`` built from :class:`motif.protocol.Protocol`'s fields
    (:meth:`CarryOver.make`: ``rounds`` and ``summary_rule`` for ``summary``; ``window``
    for ``tail``, with ``rounds == window.max_chunks``; ``none``: one round; ``round_end``
    ``model``: ``summary`` with rounds the model ends itself, ``rounds`` being phi).

    Raises:
        ConfigError: an unknown name or a ``round_end`` that does not apply to it.
        ValueError: parameters that do not belong together.
    """
    return carry_over_class(name, "carry_over", round_end).make(rounds, summary_rule, window)
