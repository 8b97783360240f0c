"""How the studies' tables write a number (studies.replicate_summary, studies.study2_summary):
motif.display's one format, with the studies' marks for what has no value.

Imports no study.
"""

from __future__ import annotations

from motif.display import pct as display_pct
from motif.eval.compare import NOT_ESTIMABLE

MISSING = "—"
"""A cell whose evaluation or run has not finished (or has nothing to count): an em dash."""


def pct(value: float | None) -> str:
    """A fraction in percent with one decimal (0.1234 -> ``12.3``); :data:`MISSING` for None."""
    return display_pct(value, missing=MISSING)


def points(value: float | None) -> str:
    """A standard error (a fraction) in points with one decimal; ``n/a`` (motif.eval.compare's
    NOT_ESTIMABLE) where it cannot be estimated (None)."""
    return display_pct(value, missing=NOT_ESTIMABLE)
