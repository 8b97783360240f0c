"""The one reader of an eval folder (``motif eval --output-dir``) and of an equal-budget grid.

What ``motif report``, ``motif compare``, ``motif view`` and the studies read: the identity
(:func:`read_config`), the metrics (:func:`read_summary`), the per-sample rows
(:func:`read_samples`: never rewrites the file; a line that is not JSON, such as the torn last
line of a run cut off mid-write, or not a sample row is skipped and named, and a duplicate
(problem, sample) keeps its first copy), and a grid's cells (:func:`read_grid`,
:func:`grid_cells`). :class:`motif.eval.store.ResultStore` is the writer (it repairs the file
when it resumes a run). File names: :mod:`motif.runs.layout`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from motif.errors import ConfigError, MotifError
from motif.runs.layout import (
    CELLS_DIR,
    EVAL_CONFIG_FILE,
    GRID_FILE,
    SAMPLE_KEYS,
    SAMPLES_FILE,
    SUMMARY_FILE,
)

logger = logging.getLogger(__name__)

RowCheck = Callable[[dict], str]
"""A test of one parsed row: ``""`` when it is kept, else why it is skipped."""


def read_json(path: Path) -> dict | None:
    """The JSON object in ``path``; None when the file does not exist.

    Raises:
        ConfigError: the file is not valid JSON (UTF-8) or holds no JSON object.
    """
    if not path.is_file():
        return None
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"{path} is not valid JSON ({exc.msg}); re-run `motif eval` or remove it"
        ) from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path} is not UTF-8; re-run `motif eval` or remove it") from exc
    if not isinstance(value, dict):
        raise ConfigError(f"{path} is not a JSON object; re-run `motif eval` or remove it")
    return value


def read_summary(directory: str | Path) -> dict | None:
    """``summary.json`` of an eval folder (None when it has none yet). Raises as
    :func:`read_json`."""
    return read_json(Path(directory) / SUMMARY_FILE)


def read_config(directory: str | Path, summary: dict | None = None) -> dict | None:
    """The run's identity: ``eval_config.json``, else (missing or empty) the ``config`` block
    of its summary (``summary``, read when not given; folders written before the identity file
    existed), else None. Raises as :func:`read_json`."""
    config = read_json(Path(directory) / EVAL_CONFIG_FILE)
    if config:
        return config
    summary = read_summary(directory) if summary is None else summary
    found = (summary or {}).get("config")
    return found if isinstance(found, dict) else None


# --------------------------------------------------------------------------- samples.jsonl


@dataclass(frozen=True)
class SampleRows:
    """The rows of a ``samples.jsonl`` as read.

    ``rows``: kept rows in file order (the first copy of each (id, sample));
    ``skipped``: ``(line number from 1, reason)`` of every non-blank line left out.
    """

    rows: list[dict]
    skipped: list[tuple[int, str]]


def sample_row_problem(row: dict) -> str:
    """``""`` for a sample row (a JSON object with :data:`~motif.runs.layout.SAMPLE_KEYS`),
    else why it is not one."""
    if not isinstance(row, dict) or not all(k in row for k in SAMPLE_KEYS):
        return "not a sample row (needs " + ", ".join(SAMPLE_KEYS) + ")"
    return ""


def read_samples(directory: str | Path, check: RowCheck = sample_row_problem) -> SampleRows:
    """Every readable row of an eval folder's ``samples.jsonl``; the file is never rewritten.

    A line that is not JSON (``"not JSON (cut off)"`` when it is the unterminated last line
    of a run killed mid-write), a row ``check`` refuses, and a second copy of an
    ``(str(id), sample)`` already kept are skipped with their reason. Raises
    :class:`FileNotFoundError` when the folder has no ``samples.jsonl``.
    """
    rows: list[dict] = []
    skipped: list[tuple[int, str]] = []
    seen: set[tuple[str, object]] = set()
    with (Path(directory) / SAMPLES_FILE).open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            reason, row = _parse(raw, check)
            if row is not None and (str(row["id"]), row["sample"]) in seen:
                reason, row = "duplicate (problem, sample)", None
            if row is None:
                skipped.append((number, reason))
                continue
            seen.add((str(row["id"]), row["sample"]))
            rows.append(row)
    return SampleRows(rows, skipped)


def _parse(raw: bytes, check: RowCheck) -> tuple[str, dict | None]:
    try:
        row = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return "not JSON" + ("" if raw.endswith(b"\n") else " (cut off)"), None
    reason = sample_row_problem(row) or check(row)
    return (reason, None) if reason else ("", row)


# --------------------------------------------------------------------------- one folder


@dataclass(frozen=True)
class EvalFolder:
    """An eval folder that holds samples: its identity and summary as found.

    ``config``: :func:`read_config` (None: neither ``eval_config.json`` nor a summary with
    one); ``summary``: ``summary.json`` (None: none written yet).
    """

    path: Path
    config: dict | None
    summary: dict | None


def open_eval_folder(directory: str | Path) -> EvalFolder:
    """The eval folder ``directory``, once it is one.

    Raises:
        ConfigError: one line: not a directory; an equal-budget grid (naming its cells);
            no ``samples.jsonl``; or, as :func:`read_json`, a broken JSON file.
    """
    path = Path(directory)
    if not path.is_dir():
        raise ConfigError(f"{directory} is not a directory; pass an eval run of `motif eval`")
    if not (path / SAMPLES_FILE).is_file():
        if (path / CELLS_DIR).is_dir():
            raise ConfigError(_grid_hint(directory, path))
        raise ConfigError(
            f"{directory} is not an eval run (no {SAMPLES_FILE}); pass a `motif eval` --output-dir"
        )
    summary = read_summary(path)
    return EvalFolder(path, read_config(path, summary), summary)


def _grid_hint(directory: str | Path, path: Path) -> str:
    cells = sorted(c.name for c in (path / CELLS_DIR).iterdir() if (c / SAMPLES_FILE).is_file())
    example = f", e.g. {path / CELLS_DIR / cells[0]} (cells: {', '.join(cells)})" if cells else ""
    return (
        f"{directory} is an equal-budget grid, not an eval run: pass one of its "
        f"{CELLS_DIR}/<cell> directories{example}"
    )


# --------------------------------------------------------------------------- grids


def read_grid(directory: str | Path) -> dict:
    """A grid directory's ``grid.json`` ({} when there is none yet).

    Raises:
        MotifError: the file is not a grid document.
    """
    path = Path(directory) / GRID_FILE
    if not path.is_file():
        return {}
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise MotifError(f"{path} is not valid JSON ({exc.msg}); remove it") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("cells"), list):
        raise MotifError(f"{path} is not a motif grid (no cells); remove it")
    return doc


def entry_dir(entry: dict) -> str:
    """A ``grid.json`` entry's cell directory, relative to the grid directory."""
    return entry.get("dir") or f"{CELLS_DIR}/{entry.get('label')}"


def grid_cells(directory: str | Path) -> list[Path]:
    """The cell directories a grid's ``grid.json`` lists, in grid order (every cell any run of
    the grid finished: a later run keeps earlier cells). A cell directory it does not list (a
    run stopped inside that cell, or still running) is skipped, with a warning. Raises as
    :func:`read_grid`."""
    path = Path(directory)
    entries = [c for c in read_grid(path).get("cells", []) if isinstance(c, dict)]
    listed = [path / entry_dir(c) for c in entries]
    cells = path / CELLS_DIR
    others = sorted(set(cells.iterdir() if cells.is_dir() else ()) - set(listed))
    for cell in (c for c in others if c.is_dir()):
        logger.warning(
            "%s: not in %s (its run did not finish it, or is still running); skipped",
            cell,
            path / GRID_FILE,
        )
    return listed


def find_grids(dirs: Sequence[str | Path]) -> list[Path]:
    """The equal-budget grid directories (holding ``grid.json``) among ``dirs`` and their
    direct subdirectories, each once, in that order."""
    found = []
    for raw in dirs:
        path = Path(raw)
        children = sorted(p for p in path.iterdir() if p.is_dir()) if path.is_dir() else []
        found += [p for p in (path, *children) if (p / GRID_FILE).is_file()]
    return list(dict.fromkeys(found))
