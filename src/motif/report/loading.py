"""The runs a report covers: eval folders, training folders and grids found in its arguments.

Each argument is a run folder, or a folder whose direct subfolders are: an *eval folder*
holds ``summary.json``, a *training folder* ``metrics.jsonl``, an *equal-budget grid*
``grid.json`` (its cells are eval folders). Read through :mod:`motif.runs`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from motif.errors import MotifError
from motif.runs.eval import grid_cells, read_summary
from motif.runs.layout import GRID_FILE, METRICS_FILE, SUMMARY_FILE
from motif.runs.training import TrainRun, load_training_run


@dataclass
class EvalRun:
    """One eval directory's summary (``label``: the summary's, else the directory name)."""

    path: Path
    summary: dict
    label: str = ""

    def __post_init__(self) -> None:
        self.label = self.label or self.summary.get("label") or self.path.name

    @property
    def benchmark(self) -> str:
        """The column this run belongs to."""
        return self.summary.get("benchmark") or self.path.name


def load_runs(dirs: Sequence[str | Path]) -> tuple[list[EvalRun], list[TrainRun]]:
    """Eval and training runs found in ``dirs`` (each, or its direct subdirectories).

    Raises:
        MotifError: an argument is not a directory or holds no run, or a ``summary.json`` is
            not a motif eval summary.
    """
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
                f"{raw} holds no {SUMMARY_FILE} (an eval run) or {METRICS_FILE} "
                "(a training run), nor do its subdirectories"
            )
    _disambiguate(evals)
    return evals, trains


def _load_dir(path: Path, evals: list[EvalRun], trains: list[TrainRun]) -> bool:
    found = False
    if (path / GRID_FILE).is_file():  # an equal-budget grid: its cells are eval runs
        for cell in grid_cells(path):
            if _load_dir(cell, evals, trains) and evals[-1].path == cell:
                evals[-1].label = f"{evals[-1].label} [{cell.name}]"
        found = True
    summary = read_summary(path)
    if summary is not None:
        if "metrics" not in summary:
            raise MotifError(f"{path / SUMMARY_FILE} is not a motif eval summary")
        evals.append(EvalRun(path, summary))
        found = True
    if (path / METRICS_FILE).is_file():
        trains.append(load_training_run(path))
        found = True
    return found


def _disambiguate(evals: list[EvalRun]) -> None:
    """Two runs with the same label on the same benchmark get their directory names added."""
    seen: dict[tuple[str, str], int] = {}
    for run in evals:
        seen[(run.label, run.benchmark)] = seen.get((run.label, run.benchmark), 0) + 1
    for run in evals:
        if seen[(run.label, run.benchmark)] > 1:
            run.label = f"{run.label} [{run.path.name}]"
