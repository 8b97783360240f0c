"""How the studies' tables write a number and a cell (studies.replicate_summary,
studies.study2_summary, studies.study3_summary): motif.display's one format, with the studies'
marks for what has no value, and the cells read from eval directories (accuracy over the
seeds, paired differences) through motif.eval.compare.

Imports no study.
"""

from __future__ import annotations

import statistics
from pathlib import Path

from motif.display import pct as display_pct
from motif.eval.compare import NOT_ESTIMABLE, compare_runs, load_scores, mean_se, over_seeds
from motif.runs.layout import SUMMARY_FILE

MISSING = "—"
"""A cell whose evaluation or run has not finished (or has nothing to count): an em dash."""


def pct(value: float | None) -> str:
    """A fraction in percent with one decimal (0.1234 -> ``12.3``); :data:`MISSING` for None."""
    return display_pct(value, missing=MISSING)


def points(value: float | None) -> str:
    """A standard error (a fraction) in points with one decimal; ``n/a`` (motif.eval.compare's
    NOT_ESTIMABLE) where it cannot be estimated (None)."""
    return display_pct(value, missing=NOT_ESTIMABLE)


def evaluated(path: Path) -> bool:
    """The eval directory ``path`` is finished (its summary.json is written last)."""
    return (path / SUMMARY_FILE).exists()


def accuracy(path: Path) -> float | None:
    """Held-out accuracy of an eval directory (None: not run yet)."""
    if not evaluated(path):
        return None
    return statistics.fmean(load_scores(path).scores.values())


def cell(paths: list[Path]) -> str:
    """One run as ``p ± se`` (items); several seeds as ``mean ± se (min–max)`` with the
    standard error over seeds (motif.eval.compare.over_seeds); none run: ``—``."""
    runs = [load_scores(p) for p in paths if evaluated(p)]
    if len(runs) == 1:
        p, se = mean_se(list(runs[0].scores.values()))
        alone = f" (1 of {len(paths)} seeds)" if len(paths) > 1 else ""
        return f"{pct(p)} ± {points(se)}{alone}"
    if not runs:
        return "—"
    s = over_seeds([statistics.fmean(r.scores.values()) for r in runs])
    return f"{pct(s.mean)} ± {points(s.se)} ({pct(s.low)}–{pct(s.high)})"


def difference(a: Path, b: Path) -> tuple[float, float | None] | None:
    """Paired ``a − b`` and its standard error over the same items (None: not both run)."""
    if not (evaluated(a) and evaluated(b)):
        return None
    c = compare_runs(load_scores(a), load_scores(b))
    return c.difference, c.se


def diff_cell(found: list[tuple[float, float | None] | None]) -> str:
    """One seed: ``+d ± se`` (paired, over the items); several: their mean ± the standard error
    over seeds, the items' part (the same items for every seed: not in the seeds' error; see
    motif.eval.compare.over_seeds) and their range."""
    done = [f for f in found if f is not None]
    if not done:
        return "—"
    s = over_seeds([d for d, _ in done], [e for _, e in done])
    if len(done) == 1:
        alone = f" (1 of {len(found)} seeds)" if len(found) > 1 else ""
        return f"{100 * s.mean:+.1f} ± {points(s.item_se)}{alone}"
    spread = f"{100 * s.low:+.1f} to {100 * s.high:+.1f}"
    return f"{100 * s.mean:+.1f} ± {points(s.se)} (items ± {points(s.item_se)}; {spread})"
