"""Reports: a text view of one evaluation, and a Markdown report with plots over many runs.

``motif report DIR...`` reads *eval directories* (holding ``summary.json``, written by
``motif eval``) and *training directories* (holding ``metrics.jsonl``: one JSON object per
logged step with ``step`` and reward keys such as ``reward`` and ``future_accuracy``), and
*equal-budget grids* (holding ``grid.json``, written by ``motif eval --grid``; their cells are
eval directories). A directory holding none of them is searched one level down. The report has
each grid's table and plot (accuracy against total budget; :mod:`motif.eval.grid_output`), the
paper's Table 1 layout (rows: runs, columns: benchmarks, pass@1 in %), a details table, and PNG
plots next to the Markdown file: accuracy by round, and reward / future accuracy against step
(the training curves: :mod:`motif.report_training`).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from motif.errors import MotifError

logger = logging.getLogger(__name__)

SUMMARY_FILE = "summary.json"
TRAIN_METRICS_FILE = "metrics.jsonl"
TRAINING_KEYS = ("reward", "future_accuracy")
MISSING = "–"
# TensorBoard's smoothing (default 0.6 there); 0.8 = a 5-step time constant, the 5-step mean
# scripts/replicate_summary.py uses: a step here averages 16 samples, so per-step values are noisy.
DEFAULT_SMOOTHING = 0.8


def _pct(value: float | None, digits: int = 1) -> str:
    return MISSING if value is None else f"{100 * value:.{digits}f}"


def _num(value: float | None, digits: int = 0) -> str:
    return MISSING if value is None else f"{value:.{digits}f}"


def summary_text(summary: dict) -> str:
    """A human-readable view of one ``summary.json``: headline, outcomes (each trajectory in one
    of correct / wrong / no answer / ungraded, cut ones among the ungraded), per-round table,
    transitions, and the generation time measured over every run of the directory."""
    m, cfg = summary["metrics"], summary["config"]
    sampling = cfg["sampling"]
    how = "greedy" if sampling["temperature"] == 0 else f"temperature {sampling['temperature']}"
    ks = ", ".join(f"pass@{k} {_pct(v)}%" for k, v in m["pass@k"].items())
    lines = [
        f"{summary['benchmark']}: {summary['label']} ({how}, {m['problems']} problems)",
        f"  pass@1 {_pct(m['pass@1'])}%" + (f" ({ks})" if sampling["samples"] > 1 else ""),
        f"  no answer {m['no_answer']}   ungraded {m['ungraded']}{_cut_note(m)}   "
        f"truncated (any round) {_pct(m['tokens']['truncated_any_rate'])}%",
        "  round  accuracy%  answered%  tokens  truncated%",
    ]
    r = m["rounds"]
    for i, acc in enumerate(r["accuracy"]):
        lines.append(
            f"  {i + 1:>5}  {_pct(acc):>9}  {_pct(r['answered'][i]):>9}  "
            f"{_num(r['completion_tokens_mean'][i]):>6}  {_pct(r['truncation_rate'][i]):>10}"
        )
    for t in r["transitions"]:
        lines.append(f"  round {t['from']}->{t['to']}: fixed {t['fixed']}, broken {t['broken']}")
    tok = m["tokens"]
    lines.append(
        f"  largest round context {tok['largest_round_context']} tokens; generated per answer "
        f"{_num(tok['generated_mean'])} tokens (max {tok['generated_max']})"
    )
    from motif.eval.metrics import work_lines

    lines.extend(work_lines(m))  # step and state checks of tasks with checkers (motif.tasks)
    lines.extend(_measured_lines(summary.get("measured"), m["problems"]))
    return "\n".join(lines)


def _cut_note(metrics: dict) -> str:
    cut = (metrics.get("context_overflow") or {}).get("cut", 0)
    return f" (of them {cut} cut: context overflow)" if cut else ""


def _measured_lines(measured: dict | None, problems: int) -> list[str]:
    """The generation time summed over the directory's runs, and the finished problems it
    holds beyond those summarised (``--limit`` lower than before)."""
    if not measured:
        return []
    lines = []
    if measured["generated_problems"]:
        lines.append(
            f"  generation {measured['generation_seconds']:.1f} s for "
            f"{measured['generated_problems']} problems (summed over the runs of this directory)"
        )
    stored = measured.get("stored_problems", problems)
    if stored > problems:
        lines.append(
            f"  the directory holds {stored} finished problems; this summary covers the first "
            f"{problems} (--limit)"
        )
    return lines


# --------------------------------------------------------------------------- loading


@dataclass
class EvalRun:
    """One eval directory's summary."""

    path: Path
    summary: dict
    label: str = ""

    def __post_init__(self) -> None:
        self.label = self.label or self.summary.get("label") or self.path.name

    @property
    def benchmark(self) -> str:
        """The column this run belongs to."""
        return self.summary.get("benchmark") or self.path.name


@dataclass
class TrainRun:
    """One training directory's logged steps."""

    path: Path
    rows: list[dict] = field(default_factory=list)

    @property
    def label(self) -> str:
        """The directory name."""
        return self.path.name


def load_runs(dirs: Sequence[str | Path]) -> tuple[list[EvalRun], list[TrainRun]]:
    """Eval and training runs found in ``dirs`` (each, or its direct subdirectories)."""
    evals: list[EvalRun] = []
    trains: list[TrainRun] = []
    for raw in dirs:
        path = Path(raw)
        if not path.is_dir():
            raise MotifError(f"{raw} is not a directory")
        found = _load_dir(path, evals, trains)
        for child in sorted(p for p in path.iterdir() if p.is_dir()) if not found else ():
            found |= _load_dir(child, evals, trains)
        if not found:
            raise MotifError(
                f"{raw} holds no {SUMMARY_FILE} (an eval run) or {TRAIN_METRICS_FILE} "
                "(a training run), nor do its subdirectories"
            )
    _disambiguate(evals)
    return evals, trains


def _load_dir(path: Path, evals: list[EvalRun], trains: list[TrainRun]) -> bool:
    from motif.eval.grid_output import GRID_FILE

    found = False
    if (path / GRID_FILE).is_file():  # an equal-budget grid: its cells are eval runs
        for cell in _grid_cells(path):
            if _load_dir(cell, evals, trains) and evals[-1].path == cell:
                evals[-1].label = f"{evals[-1].label} [{cell.name}]"
        found = True
    if (path / SUMMARY_FILE).is_file():
        try:
            summary = json.loads((path / SUMMARY_FILE).read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise MotifError(f"{path / SUMMARY_FILE} is not valid JSON: {exc.msg}") from exc
        if not isinstance(summary, dict) or "metrics" not in summary:
            raise MotifError(f"{path / SUMMARY_FILE} is not a motif eval summary")
        evals.append(EvalRun(path, summary))
        found = True
    if (path / TRAIN_METRICS_FILE).is_file():
        trains.append(TrainRun(path, read_training_metrics(path / TRAIN_METRICS_FILE)))
        found = True
    return found


def _grid_cells(path: Path) -> list[Path]:
    """The cell directories a grid's ``grid.json`` lists, in grid order (every cell any run of
    the grid finished: a later run keeps earlier cells). A cell directory it does not list (a
    run stopped inside that cell, or still running) is skipped, with a warning."""
    from motif.eval.grid_output import CELLS_DIR, read_grid

    entries = [c for c in read_grid(path).get("cells", []) if isinstance(c, dict)]
    listed = [path / (c.get("dir") or f"{CELLS_DIR}/{c.get('label')}") for c in entries]
    cells = path / CELLS_DIR
    others = sorted(set(cells.iterdir() if cells.is_dir() else ()) - set(listed))
    for cell in (c for c in others if c.is_dir()):
        logger.warning(
            "%s: not in %s (its run did not finish it, or is still running); skipped",
            cell,
            path / "grid.json",
        )
    return listed


def read_training_metrics(path: Path) -> list[dict]:
    """Rows of a ``metrics.jsonl`` with a finite numeric ``step``; bad lines are skipped
    (logged). A non-finite value (NaN, inf) of another key stays in its row: every reader
    skips it (:func:`is_finite`) and the report says how many (:func:`nonfinite_note`)."""
    rows, bad = [], 0
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            bad += 1
            continue
        if isinstance(row, dict) and is_finite(row.get("step")):
            rows.append(row)
        else:
            bad += 1
    if bad:
        logger.warning("%s: skipped %d line(s) without JSON or a step", path, bad)
    return sorted(rows, key=lambda r: r["step"])


def _disambiguate(evals: list[EvalRun]) -> None:
    """Two runs with the same label on the same benchmark get their directory names added."""
    seen: dict[tuple[str, str], int] = {}
    for run in evals:
        seen[(run.label, run.benchmark)] = seen.get((run.label, run.benchmark), 0) + 1
    for run in evals:
        if seen[(run.label, run.benchmark)] > 1:
            run.label = f"{run.label} [{run.path.name}]"


def metric_key(rows: Sequence[dict], name: str) -> str | None:
    """The logged numeric key for ``name``, else None.

    Exact (``future_accuracy``); else a ``/``-segment equal to it (``rewards/future_accuracy``
    or ``.../mean``); else a segment that starts with ``name_``
    (``rewards/future_accuracy_reward/mean``). Keys holding ``std`` never match.
    """
    keys = sorted({k for row in rows for k, v in row.items() if is_finite(v) and "std" not in k})
    if name in keys:
        return name
    for match in (
        lambda seg: seg == name,
        lambda seg: seg.startswith(f"{name}_"),
    ):
        hits = [k for k in keys if any(match(seg) for seg in k.split("/"))]
        if hits:
            return hits[0]
    return None


def _is_num(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def is_finite(value: object) -> bool:
    """A logged number that can be plotted or averaged: int or float, not bool, NaN or inf."""
    return _is_num(value) and math.isfinite(value)  # type: ignore[arg-type]


def nonfinite_steps(rows: Sequence[dict], key: str | None) -> list[int]:
    """The steps whose ``key`` is a non-finite number (NaN, inf): skipped by every reader."""
    if key is None:
        return []
    return [int(r["step"]) for r in rows if _is_num(r.get(key)) and not is_finite(r[key])]


def nonfinite_note(trains: Sequence[TrainRun], keys: Sequence[str] = ()) -> list[str]:
    """One line per run and tracked key (default :data:`TRAINING_KEYS`) that logged non-finite
    values: how many were skipped and at which steps (the first five)."""
    lines = []
    for run in trains:
        for name in keys or TRAINING_KEYS:
            key = metric_key(run.rows, name) or name  # a key logged only as NaN has no match
            steps = nonfinite_steps(run.rows, key)
            if steps:
                shown = ", ".join(map(str, steps[:5])) + (", ..." if len(steps) > 5 else "")
                lines.append(
                    f"- {run.label}: {len(steps)} non-finite {key} value(s) skipped "
                    f"(NaN or inf; step {shown})"
                )
    return lines


# --------------------------------------------------------------------------- markdown


def main_table(evals: Sequence[EvalRun]) -> str:
    """Rows: runs; columns: benchmarks; cells: pass@1 in % (with n when --limit cut the set)."""
    labels = list(dict.fromkeys(run.label for run in evals))
    benches = list(dict.fromkeys(run.benchmark for run in evals))
    cells = {(run.label, run.benchmark): _cell(run) for run in evals}
    lines = [
        "| run | " + " | ".join(benches) + " |",
        "|---|" + "---:|" * len(benches),
    ]
    for label in labels:
        row = [cells.get((label, b), MISSING) for b in benches]
        lines.append(f"| {label} | " + " | ".join(row) + " |")
    return "\n".join(lines)


def _cell(run: EvalRun) -> str:
    m = run.summary["metrics"]
    size = run.summary.get("config", {}).get("data", {}).get("size")
    text = _pct(m.get("pass@1"))
    return text if size is None or m["problems"] >= size else f"{text} (n={m['problems']})"


def details_table(evals: Sequence[EvalRun]) -> str:
    """One row per eval directory: per-round accuracy, fixes/breaks, tokens, truncation."""
    lines = [
        "| run | benchmark | problems | pass@k % | accuracy by round % | fixed / broken "
        "| tokens by round | truncated % | largest round context | generated / answer | dir |",
        "|---|---|---:|---|---|---|---|---:|---:|---:|---|",
    ]
    for run in evals:
        m = run.summary["metrics"]
        r, tok = m["rounds"], m["tokens"]
        lines.append(
            "| "
            + " | ".join(
                [
                    run.label,
                    run.benchmark,
                    str(m["problems"]),
                    ", ".join(f"@{k} {_pct(v)}" for k, v in m["pass@k"].items()),
                    " → ".join(_pct(a) for a in r["accuracy"]),
                    ", ".join(f"{t['fixed']}/{t['broken']}" for t in r["transitions"]) or MISSING,
                    " / ".join(_num(x) for x in r["completion_tokens_mean"]),
                    _pct(tok["truncated_any_rate"]),
                    str(tok["largest_round_context"]),
                    _num(tok["generated_mean"]),
                    f"`{run.path}`",
                ]
            )
            + " |"
        )
    return "\n".join(lines)


def training_table(trains: Sequence[TrainRun]) -> str:
    """One row per training run: steps logged and the last value of each tracked key."""
    lines = ["| run | steps | last step | " + " | ".join(TRAINING_KEYS) + " |"]
    lines.append("|---|---:|---:|" + "---:|" * len(TRAINING_KEYS))
    for run in trains:
        last = [_last(run.rows, metric_key(run.rows, key)) for key in TRAINING_KEYS]
        step = run.rows[-1]["step"] if run.rows else MISSING
        lines.append(f"| {run.label} | {len(run.rows)} | {step} | " + " | ".join(last) + " |")
    return "\n".join(lines)


def _last(rows: Sequence[dict], key: str | None) -> str:
    """The last finite value of ``key`` (a NaN or inf logged last is skipped)."""
    values = [row[key] for row in rows if key and is_finite(row.get(key))]
    return f"{values[-1]:.3f}" if values else MISSING


# --------------------------------------------------------------------------- plots


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save_figure(fig, path: Path) -> Path:
    """Lay ``fig`` out, write it to ``path`` (PNG, 110 dpi) and close it; returns ``path``."""
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    _pyplot().close(fig)
    return path


def plot_round_accuracy(evals: Sequence[EvalRun], path: Path) -> Path:
    """Accuracy (%) if the answer were read after each round, one line per eval run."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for run in evals:
        acc = run.summary["metrics"]["rounds"]["accuracy"]
        xs = list(range(1, len(acc) + 1))
        ys = [100 * a if a is not None else float("nan") for a in acc]
        ax.plot(xs, ys, marker="o", label=f"{run.label} · {run.benchmark}")
    ax.set_xlabel("answer read after round")
    ax.set_ylabel("accuracy (%)")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return _save_figure(fig, path)


# --------------------------------------------------------------------------- report


def write_report(
    dirs: Sequence[str | Path],
    output: str | Path,
    *,
    x_axis: str = "step",
    smoothing: float = DEFAULT_SMOOTHING,
) -> Path:
    """Write the Markdown report and its plots (next to ``output``); returns its path.

    ``x_axis`` (``step``, ``samples``, ``wall-clock``) and ``smoothing`` (EMA weight in
    [0, 1)) shape the training curves (:func:`motif.report_training.plot_training`).
    """
    from motif.eval.grid_output import grid_sections
    from motif.report_training import X_AXES, ema, plot_training

    if x_axis not in X_AXES:
        raise MotifError(f"--x-axis must be one of {', '.join(X_AXES)}; got {x_axis!r}")
    ema([], smoothing)  # validates the weight before anything is read or written
    evals, trains = load_runs(dirs)
    out = Path(output)
    if out.suffix.lower() != ".md":
        raise MotifError(f"--output {output} must be a .md file")
    out.parent.mkdir(parents=True, exist_ok=True)
    parts = ["# MOTIF evaluation report", "", *grid_sections(dirs, out)]
    if evals:
        plot = plot_round_accuracy(evals, out.with_name(f"{out.stem}_accuracy_by_round.png"))
        parts += ["## pass@1 (%)", "", main_table(evals), "", "## Details", ""]
        parts += [details_table(evals), "", f"![accuracy by round]({plot.name})", ""]
    if trains:
        plot = plot_training(trains, out.with_name(f"{out.stem}_training.png"), x_axis, smoothing)
        parts += ["## Training", "", training_table(trains), ""]
        clock = ("step_seconds", "step_time") if x_axis == "wall-clock" else ()
        skipped = nonfinite_note(trains, (*TRAINING_KEYS, *clock))
        if skipped:
            parts += ["Skipped in the table and the curves:", "", *skipped, ""]
        parts += [f"![training]({plot.name})", ""]
    out.write_text("\n".join(parts), encoding="utf-8")
    return out
