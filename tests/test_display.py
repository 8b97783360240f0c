"""motif.display: the one number format of every table (reports, grids, comparisons, studies)."""

from __future__ import annotations

from motif.display import MISSING, num, pct


def test_pct_and_num():
    assert pct(0.5) == "50.0" and pct(0.12345, 2) == "12.35" and pct(None) == MISSING == "–"
    assert pct(0.25, signed=True) == "+25.0" and pct(-0.25, signed=True) == "-25.0"
    assert pct(None, missing="n/a") == "n/a" and pct(0.0, signed=True) == "+0.0"
    assert num(12.6) == "13" and num(1.25, 1) == "1.2" and num(None, missing="—") == "—"
