"""The one way motif draws a PNG (report plots, grid plots): matplotlib's Agg backend.

matplotlib is imported when the first figure is drawn, not with this module: it takes about a
second and ``motif --help``, ``motif eval`` without plots, and ``import motif`` do not need it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the Agg backend (files only, no display needed)."""
    import matplotlib  # heavy (about 1 s): only when a figure is drawn

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Any, path: Path) -> Path:
    """Lay ``fig`` out, write it to ``path`` (PNG, 110 dpi) and close it; returns ``path``."""
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    pyplot().close(fig)
    return path
