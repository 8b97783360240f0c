"""Problem sets: named benchmarks, local JSONL/JSON/Parquet files and reasoning-gym tasks.

Every source becomes a list of :class:`Problem` with a stable id, the question text and the
gold answer normalised by :func:`motif.grading.normalize_gold`.

* A known benchmark (:data:`KNOWN_BENCHMARKS`) loads from a local directory when one is given
  (``data_dir``, else ``$MOTIF_DATA_DIR`` when it holds the file), else from the hub by its
  public name. Offline with no local copy is a clear error saying which file to put where.
* A path to a ``.jsonl``/``.json``/``.parquet`` file loads its rows; ``question_field`` and
  ``answer_field`` map the columns (defaults: ``question`` or ``problem``, and ``answer``).
* ``reasoning_gym:<task>`` generates ``size`` (default 500) problems with
  ``reasoning_gym.create_dataset(task, seed=seed, size=size, **task_config)``.

``limit`` keeps the first ``limit`` problems of the full set, in order.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from motif import models  # called through the module: tests replace its functions
from motif.errors import ConfigError, MotifError
from motif.grading import normalize_gold
from motif.tasks import check_task_config
from motif.textio import clip, iter_lines, read_text

logger = logging.getLogger(__name__)

DATA_DIR_ENV = "MOTIF_DATA_DIR"
REASONING_GYM_PREFIX = "reasoning_gym:"
REASONING_GYM_DEFAULT_SIZE = 500
DEFAULT_QUESTION_FIELDS = ("question", "problem")
DEFAULT_ANSWER_FIELDS = ("answer",)
DEFAULT_ID_FIELDS = ("id", "unique_id")
FILE_SUFFIXES = (".jsonl", ".json", ".parquet")


@dataclass
class Problem:
    """One question with its gold answer.

    Attributes:
        id: stable id (the set's own id field, else the row index), unique within the set.
        question: the question text, as given to the model.
        gold: the gold answer, normalised by :func:`motif.grading.normalize_gold`.
        meta: everything else the row held (subject, level, solution, ...).
    """

    id: str
    question: str
    gold: str
    meta: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Benchmark:
    """Where a named benchmark lives and how its rows read.

    Attributes:
        name: the short name (``math500``).
        hub_id, hub_config, hub_split: the public hub data set.
        split: the split name used in the local file name ``<name>_<split>.jsonl``.
        question_fields, answer_field, id_field: row fields (first present question field wins).
        gold_source: the :func:`normalize_gold` source (``gsm8k``, ``math``, ``aime``, ``amc``).
        display: the column title in reports (``MATH500``).
    """

    name: str
    hub_id: str
    hub_split: str
    split: str
    gold_source: str
    display: str
    hub_config: str | None = None
    question_fields: tuple[str, ...] = ("problem", "question")
    answer_field: str = "answer"
    id_field: str | None = None

    def local_file(self, split: str | None = None) -> str:
        """The file name this benchmark has in a local data directory."""
        base = self.name.removesuffix("_train")
        return f"{base}_{split or self.split}.jsonl"


KNOWN_BENCHMARKS: dict[str, Benchmark] = {
    spec.name: spec
    for spec in (
        Benchmark(
            name="gsm8k",
            hub_id="openai/gsm8k",
            hub_config="main",
            hub_split="test",
            split="test",
            gold_source="gsm8k",
            display="GSM8K",
            question_fields=("question",),
        ),
        Benchmark(
            name="gsm8k_train",
            hub_id="openai/gsm8k",
            hub_config="main",
            hub_split="train",
            split="train",
            gold_source="gsm8k",
            display="GSM8K-train",
            question_fields=("question",),
        ),
        Benchmark(
            name="math500",
            hub_id="HuggingFaceH4/MATH-500",
            hub_split="test",
            split="test",
            gold_source="math",
            display="MATH500",
            id_field="unique_id",
        ),
        Benchmark(
            name="aime24",
            hub_id="HuggingFaceH4/aime_2024",
            hub_split="train",
            split="test",
            gold_source="aime",
            display="AIME2024",
            id_field="id",
        ),
        Benchmark(
            name="amc23",
            hub_id="math-ai/amc23",
            hub_split="test",
            split="test",
            gold_source="amc",
            display="AMC23",
            id_field="id",
        ),
    )
}
"""The named benchmarks: the paper's MATH500 and AIME 2024, plus GSM8K (test; train for
training) and AMC 2023 (hub copy ``math-ai/amc23``)."""


def load_problems(
    source: str,
    *,
    split: str | None = None,
    data_dir: str | None = None,
    question_field: str | None = None,
    answer_field: str | None = None,
    limit: int | None = None,
    skip_bad_rows: bool = False,
    task_config: dict | None = None,
    seed: int = 0,
) -> list[Problem]:
    """Load a problem set (see the module docstring for what ``source`` may be).

    Args:
        source: a name from :data:`KNOWN_BENCHMARKS`, a file path, or ``reasoning_gym:<task>``.
        split: another split of a named benchmark (``gsm8k`` + ``train``).
        data_dir: local directory holding ``<name>_<split>.jsonl`` files.
        question_field, answer_field: field mapping for files (and overrides for benchmarks).
        limit: keep the first ``limit`` problems.
        skip_bad_rows: skip rows without a question or gold (logged) instead of failing.
        task_config: reasoning-gym task options (``size`` sets the set size).
        seed: reasoning-gym generation seed.

    Raises:
        MotifError: unknown source, unreadable or malformed data, offline without a local copy.
    """
    if limit is not None and limit < 1:
        raise ConfigError(f"--limit must be >= 1; got {limit}")
    if source.startswith(REASONING_GYM_PREFIX):
        problems = _load_reasoning_gym(source[len(REASONING_GYM_PREFIX) :], task_config, seed)
    else:
        rows, where, spec = _rows_for(source, split, data_dir)
        reader = _RowReader(where, spec, question_field, answer_field, skip_bad_rows)
        problems = reader.read(rows)
    if not problems:
        raise MotifError(f"{source} holds no problem")
    return problems[:limit] if limit is not None else problems


def fingerprint(problems: list[Problem]) -> str:
    """sha256 over the ids, questions and golds, in order: the identity of a problem set."""
    digest = hashlib.sha256()
    for p in problems:
        digest.update(json.dumps([p.id, p.question, p.gold], ensure_ascii=False).encode())
        digest.update(b"\n")
    return digest.hexdigest()


def display_name(source: str) -> str:
    """A short column title for a source: ``MATH500``, a file's stem, ``chain_sum``."""
    if source in KNOWN_BENCHMARKS:
        return KNOWN_BENCHMARKS[source].display
    if source.startswith(REASONING_GYM_PREFIX):
        return source[len(REASONING_GYM_PREFIX) :]
    return Path(source).stem if _looks_like_path(source) else source


def slug(source: str) -> str:
    """A file-name-safe name for a source (used in default output directories)."""
    if source.startswith(REASONING_GYM_PREFIX):
        text = "rg-" + source[len(REASONING_GYM_PREFIX) :]
    else:
        text = Path(source).stem if _looks_like_path(source) else source
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text) or "data"


# --------------------------------------------------------------------------- sources


def _looks_like_path(source: str) -> bool:
    return source.endswith(FILE_SUFFIXES) or os.sep in source or Path(source).exists()


def _rows_for(
    source: str, split: str | None, data_dir: str | None
) -> tuple[Iterator[tuple[int, Any]], str, Benchmark | None]:
    """(numbered rows, where they come from, the benchmark spec or None for a file)."""
    if source in KNOWN_BENCHMARKS:
        spec = KNOWN_BENCHMARKS[source]
        local = _local_benchmark_file(spec, split, data_dir)
        if local is not None:
            return read_rows(local), str(local), spec
        return _hub_rows(spec, split), f"{spec.hub_id} (hub)", spec
    if _looks_like_path(source):
        path = Path(source).expanduser()
        if not path.is_file():
            raise MotifError(f"data file {source} does not exist or is not a file")
        return read_rows(path), str(path), None
    known = ", ".join(sorted(KNOWN_BENCHMARKS))
    raise ConfigError(
        f"unknown benchmark {source!r}; known: {known}; or pass a .jsonl/.json/.parquet path "
        f"or {REASONING_GYM_PREFIX}<task>"
    )


def _local_benchmark_file(spec: Benchmark, split: str | None, data_dir: str | None) -> Path | None:
    """The local copy: required in an explicit ``data_dir``, optional in ``$MOTIF_DATA_DIR``."""
    name = spec.local_file(split)
    if data_dir is not None:
        path = Path(data_dir).expanduser() / name
        if not path.is_file():
            raise MotifError(f"--data-dir {data_dir} has no {name} (expected {path})")
        return path
    env = os.environ.get(DATA_DIR_ENV)
    if env and (Path(env).expanduser() / name).is_file():
        return Path(env).expanduser() / name
    return None


def _hub_rows(spec: Benchmark, split: str | None) -> Iterator[tuple[int, Any]]:

    hub_split = split or spec.hub_split
    if not models.hub_reachable():
        raise MotifError(
            f"benchmark {spec.name} needs the hub ({spec.hub_id}), which is unreachable; "
            f"put {spec.local_file(split)} in a directory and pass --data-dir DIR "
            f"(or set {DATA_DIR_ENV})"
        )
    import datasets

    try:
        ds = datasets.load_dataset(spec.hub_id, spec.hub_config, split=hub_split)
    except Exception as exc:  # noqa: BLE001 - datasets raises many types; report them all alike
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise MotifError(
            f"cannot load {spec.hub_id} split {hub_split}: {clip(first, 300)}"
        ) from exc
    return enumerate(ds, start=1)


def read_rows(path: Path) -> Iterator[tuple[int, Any]]:
    """(line or row number from 1, row) of a JSONL, JSON (list of objects) or Parquet file."""
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        return _parquet_rows(path)
    if suffix == ".json":
        return _json_rows(path)
    return _jsonl_rows(path)


def _jsonl_rows(path: Path) -> Iterator[tuple[int, Any]]:

    for number, line in iter_lines(path):
        if not line.strip():
            continue
        try:
            yield number, json.loads(line)
        except json.JSONDecodeError as exc:
            raise MotifError(f"{path} line {number} is not valid JSON: {exc.msg}") from exc


def _json_rows(path: Path) -> Iterator[tuple[int, Any]]:

    try:
        data = json.loads(read_text(path))
    except json.JSONDecodeError as exc:
        raise MotifError(f"{path} line {exc.lineno} is not valid JSON: {exc.msg}") from exc
    if isinstance(data, dict) and isinstance(data.get("data"), list):
        data = data["data"]
    if not isinstance(data, list):
        raise MotifError(f"{path} must hold a JSON list of objects (or {{'data': [...]}})")
    return enumerate(data, start=1)


def _parquet_rows(path: Path) -> Iterator[tuple[int, Any]]:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as exc:  # noqa: BLE001 - pyarrow's error types vary by version
        raise MotifError(f"cannot read parquet file {path}: {exc}") from exc
    return enumerate(table.to_pylist(), start=1)


class _RowReader:
    """Turns raw rows into problems, with the field mapping and bad-row policy."""

    def __init__(
        self,
        where: str,
        spec: Benchmark | None,
        question_field: str | None,
        answer_field: str | None,
        skip_bad_rows: bool,
    ) -> None:
        self.where = where
        self.spec = spec
        self.question_fields = (
            (question_field,)
            if question_field
            else (spec.question_fields if spec else DEFAULT_QUESTION_FIELDS)
        )
        self.answer_fields = (
            (answer_field,)
            if answer_field
            else ((spec.answer_field,) if spec else DEFAULT_ANSWER_FIELDS)
        )
        self.id_fields = (spec.id_field,) if spec and spec.id_field else DEFAULT_ID_FIELDS
        self.skip_bad_rows = skip_bad_rows
        self.skipped = 0

    def read(self, rows: Iterator[tuple[int, Any]]) -> list[Problem]:
        problems: list[Problem] = []
        fields: tuple[str, str, str | None] | None = None
        for index, (number, row) in enumerate(rows):
            if not isinstance(row, dict):
                self._bad(number, "is not a JSON object")
                continue
            fields = fields or self._fields(row, number)
            problem = self._problem(index, number, row, fields)
            if problem is not None:
                problems.append(problem)
        if self.skipped:
            logger.warning("skipped %d bad row(s) of %s", self.skipped, self.where)
        return _unique_ids(problems, self.where)

    def _fields(self, row: dict, number: int) -> tuple[str, str, str | None]:
        """Resolve the question, answer and id fields from the first row."""
        question = next((f for f in self.question_fields if f in row), None)
        answer = next((f for f in self.answer_fields if f in row), None)
        missing = [
            "/".join(names)
            for names, found in ((self.question_fields, question), (self.answer_fields, answer))
            if found is None
        ]
        if missing:
            raise MotifError(
                f"{self.where} has no field {' and no field '.join(missing)} (row {number} has "
                f"{', '.join(sorted(row)) or 'no fields'}); map them with --question-field / "
                "--answer-field"
            )
        ident = next((f for f in self.id_fields if f in row), None)
        return question, answer, ident  # type: ignore[return-value]

    def _problem(
        self, index: int, number: int, row: dict, fields: tuple[str, str, str | None]
    ) -> Problem | None:

        qf, af, idf = fields
        question, raw = row.get(qf), row.get(af)
        if not isinstance(question, str) or not question.strip():
            return self._bad(number, f"has no question ({qf!r} missing or empty)")
        if isinstance(raw, bool) or not isinstance(raw, (str, int, float)) or not str(raw).strip():
            return self._bad(number, f"has no gold answer ({af!r} missing or empty)")
        gold = normalize_gold(raw, self.spec.gold_source if self.spec else None)
        if not gold:
            return self._bad(number, f"has an unusable gold answer {raw!r}")
        ident = row.get(idf) if idf else None
        meta = {k: v for k, v in row.items() if k not in (qf, af)}
        meta["raw_answer"] = raw
        return Problem(str(ident if ident is not None else index), question.strip(), gold, meta)

    def _bad(self, number: int, why: str) -> None:
        if not self.skip_bad_rows:
            raise MotifError(f"{self.where} row {number} {why} (pass skip_bad_rows to skip it)")
        self.skipped += 1
        return None


def _unique_ids(problems: list[Problem], where: str) -> list[Problem]:
    """Keep the set's own ids when unique; otherwise fall back to the row index."""
    if len({p.id for p in problems}) == len(problems):
        return problems
    logger.warning("%s has duplicate ids; using row numbers as problem ids", where)
    for index, problem in enumerate(problems):
        problem.id = str(index)
    return problems


def _load_reasoning_gym(task: str, task_config: dict | None, seed: int) -> list[Problem]:
    """Generate a reasoning-gym task: gold = the entry's ``answer``.

    The knob of a long-horizon task (:mod:`motif.tasks`: ``min_terms``/``max_terms`` of
    ``chain_sum``, ...) is checked first; the entry's metadata (``source_dataset``,
    ``expression``, ...) becomes the problem's ``meta``, where the task's checkers find it.
    """
    import reasoning_gym

    config = dict(task_config or {})
    size = config.pop("size", REASONING_GYM_DEFAULT_SIZE)
    if not task:
        raise ConfigError(f"name the task: {REASONING_GYM_PREFIX}<task> (e.g. chain_sum)")
    check_task_config(task, config)
    try:
        dataset = reasoning_gym.create_dataset(task, seed=seed, size=size, **config)
    except (ValueError, AssertionError) as exc:
        raise ConfigError(f"reasoning-gym task {task!r}: {exc}") from exc
    except TypeError as exc:
        raise ConfigError(f"reasoning-gym task {task!r} rejects its config: {exc}") from exc

    problems = []
    for index, entry in enumerate(dataset):
        meta = {k: v for k, v in entry.get("metadata", {}).items() if _jsonable(v)}
        gold = normalize_gold(str(entry["answer"]))
        problems.append(Problem(str(index), entry["question"], gold, meta))
    return problems


def _jsonable(value: Any) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True
