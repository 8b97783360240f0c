"""How numbers are printed in every table motif writes (reports, grids, comparisons, studies).

One format: a fraction as percent with one decimal (:func:`pct`), a count or a mean with a
fixed number of decimals (:func:`num`), and :data:`MISSING` where there is no value.
"""

from __future__ import annotations

MISSING = "–"
"""What a table shows where a value is missing (an en dash)."""


def pct(
    value: float | None, digits: int = 1, *, missing: str = MISSING, signed: bool = False
) -> str:
    """``value`` (a fraction) in percent with ``digits`` decimals (``0.5`` -> ``"50.0"``);
    ``signed`` adds ``+`` to a positive value; ``missing`` when ``value`` is None."""
    if value is None:
        return missing
    return f"{100 * value:{'+' if signed else ''}.{digits}f}"


def num(value: float | None, digits: int = 0, *, missing: str = MISSING) -> str:
    """``value`` with ``digits`` decimals; ``missing`` when it is None."""
    return missing if value is None else f"{value:.{digits}f}"
