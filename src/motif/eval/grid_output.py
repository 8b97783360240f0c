"""How an equal-budget grid is written: ``grid.json``, ``grid.md``, ``grid.png``.

:mod:`motif.eval.grid` runs the cells; this module builds the ``grid.json`` content
(:func:`cell_entry`, :func:`grid_document`; a later run keeps the cells of earlier runs it does
not list, with what they measured: :func:`kept_entries`, :func:`merge_cells`) and renders it
(:func:`grid_table`, :func:`grid_caption`, :func:`plot_grid`, :func:`grid_markdown`;
:func:`write_grid_outputs` writes all three files; ``motif report`` shows the same table and
plot). The grid directory's file names are :mod:`motif.runs.layout`'s, read back by
:func:`motif.runs.eval.read_grid`. matplotlib is imported only when a plot is drawn
(:mod:`motif.plotting`).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path

from motif.carryover import GridCell, carry_over_class
from motif.config import ProtocolArgs
from motif.display import num, pct
from motif.errors import MotifError
from motif.eval.args import EvalArgs
from motif.eval.store import write_json_atomic
from motif.plotting import pyplot, save_figure
from motif.runs.eval import entry_dir, read_grid
from motif.runs.layout import CELLS_DIR, GRID_FILE, GRID_PLOT, GRID_TABLE, SUMMARY_FILE

logger = logging.getLogger(__name__)

__all__ = ["CELLS_DIR", "GRID_FILE", "GRID_PLOT", "GRID_TABLE", "entry_dir", "read_grid"]


def cell_spec(cell: GridCell) -> str:
    """A cell as written in ``--grid`` and in ``grid.json``'s ``cell``: ``summary:3x64``
    (read by :func:`motif.eval.grid.parse_cell`)."""
    return f"{cell.carry_over}:{cell.rounds}x{cell.budget}"


# --------------------------------------------------------------------------- grid.json


def cell_entry(
    cell: GridCell, total: int, proto: ProtocolArgs, summary: dict, previous: dict | None = None
) -> dict:
    """One cell of ``grid.json`` from its eval ``summary.json`` (``total``: the new-token budget
    the cell's group claims; ``proto``: the cell's protocol, whose tail window is recorded).

    ``answered``: share of trajectories with a final answer (cut ones have none);
    ``budget_exhausted_rate``: share of trajectories whose last allowed round (or chunk) was
    cut at its budget, i.e. that ran out of the total; ``generation_seconds``: wall-clock of
    generation (s) summed over the runs that generated the cell (the summary's ``measured``,
    :meth:`motif.eval.store.ResultStore.write_summary`; a run that generated nothing keeps
    the earlier figure, never 0.0; a run interrupted inside the cell loses that part).
    ``previous``: the cell's entry of an earlier ``grid.json``, used when it counts more
    generated problems than the summary (directories written before ``measured`` existed).
    """
    m = summary["metrics"]
    tok, rounds = m["tokens"], m["rounds"]
    seconds, generated = _timing(summary, previous)
    unanswered = m["no_answer"] + (m.get("context_overflow") or {}).get("cut", 0)
    window = proto.window()
    trajectories = m["trajectories"]
    ran_last, cut_last = rounds["ran"][-1], rounds["truncation_rate"][-1]
    return {
        "label": cell.label,
        "cell": cell_spec(cell),
        "strategy": cell.carry_over,
        "rounds": cell.rounds,
        "budget": cell.budget,
        "total": total,
        "window": {"head": window.head, "keep": window.keep_tail} if window else None,
        "problems": m["problems"],
        "trajectories": trajectories,
        "accuracy": m["pass@1"],
        "answered": 1 - unanswered / trajectories if trajectories else None,
        "step_accuracy": m.get("step_accuracy"),
        "generated_mean": tok["generated_mean"],
        "generated_max": tok["generated_max"],
        "largest_context": tok["largest_round_context"],
        "largest_context_mean": tok.get("round_context_max_mean"),
        "truncated_any_rate": tok["truncated_any_rate"],
        "budget_exhausted_rate": (cut_last or 0.0) * ran_last / trajectories
        if trajectories
        else None,
        "generation_seconds": seconds,
        "generated_problems": generated,
        "seconds_per_problem": round(seconds / generated, 3) if generated else None,
        "dir": f"{CELLS_DIR}/{cell.label}",
    }


def _timing(summary: dict, previous: dict | None) -> tuple[float, int]:
    """(generation seconds, problems generated) measured for a cell, never less than an
    earlier ``grid.json`` entry recorded."""
    measured = summary.get("measured") or summary["run"]
    seconds, generated = measured["generation_seconds"], measured["generated_problems"]
    old = previous.get("generated_problems") if previous else None
    if isinstance(old, int) and old > generated:
        return previous["generation_seconds"], old  # type: ignore[index]
    return seconds, generated


def kept_entries(out_dir: Path, listed: Sequence[str]) -> list[dict]:
    """The ``grid.json`` entries of earlier runs' cells whose labels are not in ``listed`` (the
    cells of this run) and whose directory still holds a ``summary.json``, in their order: a
    later run keeps them, with what they measured (a cell whose directory was removed is
    dropped, with a warning).

    Raises:
        MotifError: ``grid.json`` is not a grid, or an entry has no label or cell.
    """
    kept = []
    for entry in read_grid(out_dir).get("cells", []):
        if not isinstance(entry, dict) or not {"label", "cell"} <= entry.keys():
            raise MotifError(f"{out_dir / GRID_FILE} has an entry without label or cell; remove it")
        if entry["label"] in listed:
            continue
        if (out_dir / entry_dir(entry) / SUMMARY_FILE).is_file():
            kept.append(entry)
        else:
            logger.warning("%s: cell %s has no results left; dropped", out_dir, entry["label"])
    return kept


def merge_cells(ran: Sequence[dict], kept: Sequence[dict]) -> list[dict]:
    """The entries of this run's cells (grid order) and, marked ``"kept": true``, the kept
    ones of earlier runs; with kept ones, all ordered by total budget (stable: this run's
    first within a total)."""
    if not kept:
        return list(ran)
    cells = [*ran, *({**entry, "kept": True} for entry in kept)]
    return sorted(cells, key=lambda c: c["total"])


def grid_document(
    args: EvalArgs, proto: ProtocolArgs, out_dir: Path, summary: dict, cells: list[dict]
) -> dict:
    """The ``grid.json`` content: what was compared and one entry per cell (``cells``: from
    :func:`merge_cells`)."""
    cfg = summary["config"]
    name = Path(cfg["model"].removeprefix("default:")).name
    if cfg.get("adapter"):
        name += f" + {Path(cfg['adapter']).name}"
    sampling = {k: v for k, v in cfg["sampling"].items() if "max_new_tokens" not in k}
    return {
        "kind": "equal-budget grid",
        "benchmark": summary["benchmark"],
        "source": args.benchmark,
        "model": name,
        "output_dir": str(out_dir),
        "limit": args.limit,
        "sampling": sampling,
        "tail_head": proto.tail_head,
        "tail_keep": proto.tail_keep,
        "cells": cells,
        "updated": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def write_json(path: Path, data: dict) -> None:
    """Write ``data`` atomically (:func:`motif.eval.store.write_json_atomic`)."""
    write_json_atomic(path, data)


# --------------------------------------------------------------------------- grid.md and grid.png

_GRID_HEADER = (
    "| total | cell | pass@1 % | answered % | generated mean / max | largest context max / mean "
    "| truncated % (any round) | out of budget % | wall-clock s | s / problem |"
)


def grid_table(doc: dict) -> str:
    """The grid as a Markdown table, one row per cell (grid order); a cell kept from an earlier
    run is marked ``*``, and one over another number of problems than the caption's gets
    ``(n=K)`` after its pass@1."""
    lines = [_GRID_HEADER, "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    usual = _usual_problems(doc["cells"])
    for c in doc["cells"]:
        window = c.get("window")
        shape = c["cell"] + (f" (h {window['head']}, m {window['keep']})" if window else "")
        n = f" (n={c['problems']})" if c["problems"] != usual else ""
        cells = [
            str(c["total"]),
            shape + (" *" if c.get("kept") else ""),
            pct(c["accuracy"]) + n,
            pct(c["answered"]),
            f"{num(c['generated_mean'])} / {num(c['generated_max'])}",
            f"{num(c['largest_context'])} / {num(c['largest_context_mean'])}",
            pct(c["truncated_any_rate"]),
            pct(c["budget_exhausted_rate"]),
            num(c["generation_seconds"], 1),
            num(c["seconds_per_problem"], 2),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def grid_caption(doc: dict) -> str:
    """One line: model, benchmark, problems, sampling."""
    sampling = doc.get("sampling", {})
    temperature = sampling.get("temperature", 0)
    how = "greedy" if not temperature else f"temperature {temperature}"
    samples = sampling.get("samples", 1)
    how += f", avg@{samples}" if samples > 1 else ""
    return f"{doc['model']} on {doc['benchmark']}, {_usual_problems(doc['cells'])} problems, {how}"


def _usual_problems(cells: Sequence[dict]) -> int:
    """The number of problems most cells were summarised over (0 without cells)."""
    counts = Counter(c["problems"] for c in cells)
    return counts.most_common(1)[0][0] if counts else 0


def _series(cells: Sequence[dict]) -> dict[str, list[dict]]:
    """Cells by line of the plot: one per strategy; per strategy and rounds when a strategy has
    several cells at one total."""
    totals: dict[tuple[str, int], int] = {}
    for c in cells:
        totals[(c["strategy"], c["total"])] = totals.get((c["strategy"], c["total"]), 0) + 1
    split = {s for (s, _), n in totals.items() if n > 1}
    series: dict[str, list[dict]] = {}
    for c in cells:
        unit = carry_over_class(c["strategy"]).unit + "s"
        key = f"{c['strategy']}, {c['rounds']} {unit}" if c["strategy"] in split else c["strategy"]
        series.setdefault(key, []).append(c)
    return series


_GRID_STYLES = (("o", "-"), ("s", "--"), ("^", ":"), ("D", "-."))


def plot_grid(doc: dict, path: Path) -> Path:
    """Accuracy (%) against total new-token budget, one line per strategy (marker and dash
    differ, so lines on top of each other stay visible); right of each point the largest
    context (prompt + new tokens of one round, measured) in tokens, one row per line."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    series = _series(doc["cells"])
    for i, (name, cells) in enumerate(series.items()):
        cells = sorted(cells, key=lambda c: (c["total"], c["budget"]))
        xs = [c["total"] for c in cells]
        ys = [100 * c["accuracy"] if c["accuracy"] is not None else float("nan") for c in cells]
        marker, dash = _GRID_STYLES[i % len(_GRID_STYLES)]
        color = f"C{i % 10}"
        ax.plot(xs, ys, marker=marker, linestyle=dash, color=color, label=name, alpha=0.85)
        for c, x, y in zip(cells, xs, ys, strict=True):
            offset = 9 * ((len(series) - 1) / 2 - i)  # rows stacked around the point
            ax.annotate(
                str(c["largest_context"]),
                (x, y),
                xytext=(7, offset - 3),
                textcoords="offset points",
                fontsize="x-small",
                color=color,
            )
    ax.set_xticks(sorted({c["total"] for c in doc["cells"]}))
    ax.margins(x=0.15)
    ax.set_ylim(-5, 105)
    ax.set_xlabel("total thinking budget (new tokens per answer)")
    ax.set_ylabel("accuracy, pass@1 (%)")
    ax.set_title(grid_caption(doc), fontsize="small")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small", title="numbers: largest context (tokens)", title_fontsize="x-small")
    return save_figure(fig, path)


def grid_markdown(doc: dict, plot_name: str | None = GRID_PLOT) -> str:
    """``grid.md``: caption, table, the plot and how each column is counted."""
    parts = [f"# Equal-budget grid: {doc['benchmark']}", "", grid_caption(doc), "", grid_table(doc)]
    if plot_name:
        parts += ["", f"![accuracy against total budget]({plot_name})"]
    parts += [
        "",
        "total = the most new tokens one answer may generate (summary N x B; tail "
        "C + (I-1)(C-h-m); none T); largest context = the most prompt + new tokens of one round "
        "(measured); out of budget = the last allowed round was cut at its budget; wall-clock "
        "= generation time summed over the runs that generated the cell."
        + (f" *{KEPT_NOTE}" if any_kept(doc) else "")
        + " docs/bounded-context.md explains the strategies.",
        "",
    ]
    return "\n".join(parts)


KEPT_NOTE = " = kept from an earlier run of this grid directory (not in the last --grid)."


def any_kept(doc: dict) -> bool:
    """Whether the grid holds a cell kept from an earlier run (marked ``*``: :data:`KEPT_NOTE`)."""
    return any(c.get("kept") for c in doc["cells"])


def write_grid_outputs(out_dir: Path, doc: dict) -> dict[str, Path]:
    """Write ``grid.json``, ``grid.md`` and ``grid.png`` into ``out_dir``; returns their paths."""
    paths = {
        "json": out_dir / GRID_FILE,
        "table": out_dir / GRID_TABLE,
        "plot": out_dir / GRID_PLOT,
    }
    write_json(paths["json"], doc)
    plot_grid(doc, paths["plot"])
    paths["table"].write_text(grid_markdown(doc, GRID_PLOT), encoding="utf-8")
    return paths
