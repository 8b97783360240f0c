"""``motif view``: one self-contained HTML page of eval runs' trajectories, rounds side by side.

* :mod:`motif.view.load`: :func:`load_view_run` reads an eval directory (``eval_config.json``
  or ``summary.json``, and ``samples.jsonl``), skipping and counting unreadable rows.
* :mod:`motif.view.page`: :func:`build_data` (the page's JSON: texts already split into the
  pieces shown, never positions, which Python counts in code points and JavaScript in UTF-16
  units), :func:`render_page` and :func:`write_page` (Jinja2, autoescaped; the rows travel as
  escaped JSON, shown with ``textContent`` by the page's own small script).

See ``docs/view.md``.
"""

from __future__ import annotations

from motif.view.load import ViewRun, load_view_run
from motif.view.page import build_data, render_page, write_page

__all__ = ["ViewRun", "build_data", "load_view_run", "render_page", "write_page"]
