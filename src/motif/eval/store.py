"""The output directory of one evaluation: its identity, the streamed samples, the summary.

Layout::

    eval_config.json   what produced these results (model, adapter, protocol, sampling, data)
    samples.jsonl      one JSON object per (problem, sample), appended batch by batch
    summary.json       the metrics, rewritten at the end of every run; its ``measured``
                       block (generation wall-clock and problems generated) sums every run
                       that generated rows here, so a later run never loses what an earlier
                       one measured (:meth:`ResultStore.write_summary`)

Appends are flushed and fsynced after every batch, so a crash loses at most the batch in
flight. On opening, a torn last line is dropped, duplicate (problem, sample) rows keep their
first copy and a problem with fewer than K samples is dropped (it is generated again), so a
re-run never writes a row twice. A directory whose ``eval_config.json`` differs from the
current configuration is refused: results of different configurations never mix. Nothing is
written until the first batch of results is stored: the directory, its marker and
``eval_config.json`` are created then, so a run that fails to start leaves nothing behind.

File names: :mod:`motif.runs.layout`. Readers that never rewrite the folder (``motif report``,
``compare``, ``view``, the studies) read it through :mod:`motif.runs.eval`.
"""

from __future__ import annotations

import json
import logging
import math
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from motif.errors import ConfigError, MotifError
from motif.identity import differences, mismatch_error
from motif.outdir import OutputDir
from motif.runs.layout import EVAL_CONFIG_FILE, MARKER, SAMPLE_KEYS, SAMPLES_FILE, SUMMARY_FILE

logger = logging.getLogger(__name__)

__all__ = ["SAMPLES_FILE", "SUMMARY_FILE", "ResultStore"]  # file names: motif.runs.layout


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON to ``path`` through a temporary file and a rename (never half-written)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=2, ensure_ascii=False, sort_keys=False)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def config_differences(old: dict, new: dict) -> list[str]:
    """``key: old -> new`` for every leaf that differs between two configurations."""
    return differences(old, new)


def check_identity(directory: Path, config: dict) -> None:
    """Refuse an eval directory that holds results of another configuration than ``config``
    (or samples of an unknown one); a new or empty directory passes. Reads no samples.

    Raises:
        ConfigError: naming the directory and the differing fields.
        MotifError: its ``eval_config.json`` is not valid JSON.
    """
    path = directory / EVAL_CONFIG_FILE
    if path.exists():
        try:
            stored = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise MotifError(f"{path} is not valid JSON ({exc.msg}); remove it") from exc
        diffs = config_differences(stored, config)
        if diffs:
            raise mismatch_error(
                f"output directory {directory} holds results of a different configuration",
                diffs,
                "refusing to mix them: pass another --output-dir or remove it",
            )
        return
    if (directory / SAMPLES_FILE).exists():
        raise ConfigError(
            f"output directory {directory} has {SAMPLES_FILE} but no {EVAL_CONFIG_FILE}, "
            "so its configuration is unknown; pass another --output-dir or remove it"
        )


class ResultStore:
    """Samples of one evaluation configuration, resumable across runs.

    Args:
        directory: the output directory (created when missing).
        config: the identity of the run; compared with the stored ``eval_config.json``.
        samples: samples per problem; a problem is finished when all of them are stored.
    """

    def __init__(self, directory: str | Path, config: dict, samples: int) -> None:
        self.directory = Path(directory)
        self.config = config
        self.samples = samples
        check_identity(self.directory, config)
        self.records: dict[str, list[dict]] = self._load()

    @property
    def samples_path(self) -> Path:
        """Where the per-sample rows are."""
        return self.directory / SAMPLES_FILE

    def finished(self, problem_id: str) -> bool:
        """Whether every sample of ``problem_id`` is stored."""
        return len(self.records.get(problem_id, ())) == self.samples

    def append(self, records: Iterable[dict]) -> None:
        """Append whole problems' rows, then flush and fsync (one batch).

        The first append creates the directory (with the run marker) and ``eval_config.json``.
        """
        rows = list(records)
        self._claim()
        lines = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
        with self.samples_path.open("a", encoding="utf-8") as handle:
            handle.write(lines)
            handle.flush()
            os.fsync(handle.fileno())
        for row in rows:
            self.records.setdefault(row["id"], []).append(row)

    def recheck(self, config: dict) -> None:
        """Replace the identity (e.g. once a downloaded model can be fingerprinted), checked
        against the stored one again; nothing has been written for the old one yet."""
        self.config = config
        check_identity(self.directory, config)

    def groups(self, problem_ids: Iterable[str]) -> list[list[dict]]:
        """The finished problems' rows among ``problem_ids``, in that order."""
        return [self.records[i] for i in problem_ids if self.finished(i)]

    def write_summary(self, summary: dict) -> Path:
        """Write ``summary.json`` atomically; returns its path.

        Sets ``summary["measured"]`` (in place) first: ``generation_seconds`` (wall-clock s)
        and ``generated_problems`` summed over every run that generated rows here and wrote
        a summary (``summary["run"]`` holds this run's: 0.0 s when it resumed a finished
        directory), ``problems_per_minute`` from them, and ``stored_problems``, the finished
        problems the directory holds (more than ``metrics.problems`` when ``--limit``
        summarised fewer). When the earlier total counts more problems than are stored
        (rows removed by hand), the sum restarts from this run.
        """
        self._claim()
        path = self.directory / SUMMARY_FILE
        summary["measured"] = self._measured(summary.get("run") or {}, _earlier_measure(path))
        write_json_atomic(path, summary)
        return path

    def _measured(self, run: dict, earlier: tuple[float, int]) -> dict:
        seconds = float(run.get("generation_seconds") or 0.0)
        generated = int(run.get("generated_problems") or 0)
        if earlier[1] + generated <= len(self.records):
            seconds, generated = earlier[0] + seconds, earlier[1] + generated
        rate = generated / seconds * 60 if seconds > 0 else None
        return {
            "generation_seconds": round(seconds, 3),
            "generated_problems": generated,
            "problems_per_minute": round(rate, 3) if rate else None,
            "stored_problems": len(self.records),
        }

    # ----------------------------------------------------------------------- opening

    def _claim(self) -> None:
        """Create the directory, its marker and ``eval_config.json`` (once)."""
        path = self.directory / EVAL_CONFIG_FILE
        if path.exists():
            return
        if not (self.directory / MARKER).exists():
            OutputDir(self.directory, "new", "eval").claim()
        write_json_atomic(path, self.config)

    def _load(self) -> dict[str, list[dict]]:
        path = self.samples_path
        if not path.exists():
            return {}
        rows, repaired = self._read_rows(path.read_bytes())
        records: dict[str, list[dict]] = {}
        seen: set[tuple[str, int]] = set()
        for row in rows:
            key = (row["id"], row["sample"])
            if key in seen:
                repaired = True
                continue
            seen.add(key)
            records.setdefault(row["id"], []).append(row)
        partial = [i for i, rows in records.items() if len(rows) != self.samples]
        for problem_id in partial:
            del records[problem_id]
        if repaired or partial:
            self._rewrite(records)
            logger.warning(
                "repaired %s: kept %d finished problem(s), dropped %d unfinished",
                path,
                len(records),
                len(partial),
            )
        for rows in records.values():
            rows.sort(key=lambda r: r["sample"])
        return records

    def _read_rows(self, data: bytes) -> tuple[list[dict], bool]:
        """Parse the rows; a torn (unterminated, unparsable) last line is dropped."""
        lines = data.split(b"\n")
        tail = lines.pop()  # after the last newline: b"" when the file ends cleanly
        rows, repaired = [], False
        for number, line in enumerate(lines, start=1):
            if line.strip():
                rows.append(self._parse(line, number))
        if tail.strip():
            repaired = True
            try:
                rows.append(self._parse(tail, len(lines) + 1))
            except MotifError:
                logger.warning("dropping the torn last line of %s", self.samples_path)
        return rows, repaired

    def _parse(self, line: bytes, number: int) -> dict:
        try:
            row = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise MotifError(
                f"{self.samples_path} line {number} is corrupt (not JSON); "
                "remove that line or the output directory"
            ) from exc
        if not isinstance(row, dict) or not set(SAMPLE_KEYS) <= set(row):
            raise MotifError(f"{self.samples_path} line {number} is not a sample row")
        return row

    def _rewrite(self, records: dict[str, list[dict]]) -> None:
        path = self.samples_path
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            for rows in records.values():
                for row in rows:
                    handle.write(json.dumps(row, ensure_ascii=False) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)


def _earlier_measure(path: Path) -> tuple[float, int]:
    """(generation seconds, problems generated) an existing ``summary.json`` recorded: its
    ``measured`` block, else (written before it existed) its run's; (0.0, 0) when none."""
    try:
        old = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    except (json.JSONDecodeError, UnicodeDecodeError):
        logger.warning("%s is not valid JSON; its measured wall-clock is lost", path)
        return 0.0, 0
    block = (old.get("measured") or old.get("run") or {}) if isinstance(old, dict) else {}
    seconds, generated = block.get("generation_seconds"), block.get("generated_problems")
    if not isinstance(seconds, (int, float)) or not math.isfinite(seconds):
        return 0.0, 0
    if not isinstance(generated, int) or isinstance(generated, bool):
        return 0.0, 0
    return float(seconds), generated
