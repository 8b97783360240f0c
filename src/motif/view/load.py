"""Reading an eval directory for the viewer: its configuration and its per-sample rows.

Rows are those of :func:`motif.eval.runner.sample_record` (``id``, ``sample``, ``gold``,
``answer``, ``correct``, ``question``, ``stopped_early``, ``rounds[{round, text, answer,
correct, prompt_tokens, completion_tokens, truncated}]``); extra keys are ignored. Unlike
:class:`motif.eval.store.ResultStore` this never rewrites the file: a line that is not JSON
(a run cut off mid-line) or not a sample row is skipped and counted, a duplicate
(problem, sample) keeps its first copy, and the page shows the count.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from motif.errors import ConfigError

CONFIG_FILE = "eval_config.json"
SAMPLES_FILE = "samples.jsonl"
SUMMARY_FILE = "summary.json"
REQUIRED = ("id", "sample", "rounds", "correct")


@dataclass
class ViewRun:
    """One eval directory as the viewer reads it.

    ``rows``: valid rows in file order (first copy of each (id, sample));
    ``skipped``: ``(line number, reason)`` of every line left out.
    """

    path: Path
    config: dict
    label: str
    rows: list[dict] = field(default_factory=list)
    skipped: list[tuple[int, str]] = field(default_factory=list)

    @property
    def benchmark(self) -> str:
        """The benchmark's display name from the run's identity."""
        return str(self.config.get("data", {}).get("benchmark") or "?")

    @property
    def rounds(self) -> int:
        """Rounds of the run's protocol (the longest row when the config lacks it)."""
        rounds = self.config.get("protocol", {}).get("rounds")
        return int(rounds or max((len(r["rounds"]) for r in self.rows), default=1))

    @property
    def summary_rule(self) -> str:
        """The rule that picked the state carried between rounds (``paper`` by default)."""
        return self.config.get("protocol", {}).get("summary_rule") or "paper"

    @property
    def carry_over(self) -> str:
        """How state crossed rounds: ``summary`` (default, and runs from before), ``tail``, ``none``."""
        return self.config.get("protocol", {}).get("carry_over") or "summary"


def load_view_run(directory: str | Path) -> ViewRun:
    """Read ``directory``; raises :class:`ConfigError` (one line) when it is not an eval run."""
    path = Path(directory)
    if not path.is_dir():
        raise ConfigError(
            f"{directory} is not a directory; pass an eval run written by `motif eval`"
        )
    samples = path / SAMPLES_FILE
    cells = sorted(c.name for c in (path / "cells").glob("*") if (c / SAMPLES_FILE).is_file())
    if not samples.is_file() and cells:
        raise ConfigError(
            f"{directory} is an equal-budget grid; view its cells, e.g. "
            f"motif view {path / 'cells' / cells[0]} (cells: {', '.join(cells)})"
        )
    if not samples.is_file():
        raise ConfigError(
            f"{directory} is not an eval run (no {SAMPLES_FILE}); pass a `motif eval` --output-dir"
        )
    config, summary = _read_json(path / CONFIG_FILE), _read_json(path / SUMMARY_FILE)
    config = config or (summary or {}).get("config")
    if not isinstance(config, dict):
        raise ConfigError(
            f"{directory} has {SAMPLES_FILE} but neither {CONFIG_FILE} nor {SUMMARY_FILE}; "
            "its configuration is unknown"
        )
    label = (summary or {}).get("label") or _label(config, path)
    run = ViewRun(path, config, label)
    run.rows, run.skipped = read_rows(samples)
    if not run.rows:
        raise ConfigError(f"{samples} holds no readable sample row ({len(run.skipped)} skipped)")
    return run


def _read_json(path: Path) -> dict | None:
    if not path.is_file():
        return None
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path} is not valid JSON; re-run `motif eval` or remove it") from exc
    if not isinstance(value, dict):
        raise ConfigError(f"{path} is not a JSON object")
    return value


def _label(config: dict, path: Path) -> str:
    try:
        from motif.eval.runner import run_label

        return run_label(config)
    except (KeyError, TypeError):
        return path.name


def read_rows(path: Path) -> tuple[list[dict], list[tuple[int, str]]]:
    """Valid rows of a ``samples.jsonl`` and ``(line, reason)`` for every skipped line."""
    rows: list[dict] = []
    skipped: list[tuple[int, str]] = []
    seen: set[tuple[str, object]] = set()
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            reason, row = _parse(raw)
            if row is not None and (str(row["id"]), row["sample"]) in seen:
                reason, row = "duplicate (problem, sample)", None
            if row is None:
                skipped.append((number, reason))
                continue
            seen.add((str(row["id"]), row["sample"]))
            rows.append(row)
    return rows, skipped


def _parse(raw: bytes) -> tuple[str, dict | None]:
    try:
        row = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        cut = "" if raw.endswith(b"\n") else " (cut off)"
        return f"not JSON{cut}", None
    if not isinstance(row, dict) or not all(k in row for k in REQUIRED):
        return "not a sample row (needs " + ", ".join(REQUIRED) + ")", None
    rounds = row["rounds"]
    if not isinstance(rounds, list) or not rounds or not all(isinstance(r, dict) for r in rounds):
        return "rounds is not a non-empty list of objects", None
    if not all(isinstance(r.get("text"), str) for r in rounds):
        return "a round has no text", None
    return "", row
