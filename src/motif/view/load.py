"""Reading an eval directory for the viewer: its configuration and its per-sample rows.

Rows are those of :func:`motif.eval.runner.sample_record` (``id``, ``sample``, ``gold``,
``answer``, ``correct``, ``question``, ``stopped_early``, ``rounds[{round, text, answer,
correct, prompt_tokens, completion_tokens, truncated}]``); extra keys are ignored. Read by
:func:`motif.runs.eval.read_samples`, which never rewrites the file: a line that is not JSON
(a run cut off mid-line), not a sample row, or one without a round to show
(:func:`viewable_problem`) is skipped and counted, a duplicate (problem, sample) keeps its
first copy, and the page shows the count.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from motif.carryover import CarryOver, protocol_carry_over
from motif.errors import ConfigError
from motif.eval.identity import run_label
from motif.runs.eval import open_eval_folder, read_samples
from motif.runs.layout import EVAL_CONFIG_FILE, SAMPLES_FILE, SUMMARY_FILE


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
    def carry_over(self) -> type[CarryOver]:
        """How state crossed rounds: the strategy class the run names (runs from before
        carry-overs existed: the legacy one, ``summary``)."""
        return protocol_carry_over(self.config.get("protocol"))


def load_view_run(directory: str | Path) -> ViewRun:
    """Read ``directory``; raises :class:`ConfigError` (one line) when it is not an eval run."""
    folder = open_eval_folder(directory)
    if folder.config is None:
        raise ConfigError(
            f"{directory} has {SAMPLES_FILE} but neither {EVAL_CONFIG_FILE} nor {SUMMARY_FILE}; "
            "its configuration is unknown"
        )
    label = (folder.summary or {}).get("label") or _label(folder.config, folder.path)
    read = read_samples(folder.path, viewable_problem)
    if not read.rows:
        raise ConfigError(
            f"{folder.path / SAMPLES_FILE} holds no readable sample row "
            f"({len(read.skipped)} skipped)"
        )
    return ViewRun(folder.path, folder.config, label, read.rows, read.skipped)


def _label(config: dict, path: Path) -> str:
    try:
        return run_label(config)
    except (KeyError, TypeError):
        return path.name


def viewable_problem(row: dict) -> str:
    """``""`` for a sample row the page can show (a non-empty list of rounds, each an object
    with a ``text``), else why not (a :data:`motif.runs.eval.RowCheck`)."""
    rounds = row["rounds"]
    if not isinstance(rounds, list) or not rounds or not all(isinstance(r, dict) for r in rounds):
        return "rounds is not a non-empty list of objects"
    if not all(isinstance(r.get("text"), str) for r in rounds):
        return "a round has no text"
    return ""
