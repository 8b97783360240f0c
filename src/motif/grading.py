"""The correctness oracle: is a predicted answer mathematically equal to the gold answer?

Built on ``math-verify``. Each side is reduced to one expression first (the last box when
there is a box, see :func:`motif.answer_format.boxed_answers`; a GSM8K gold's text after
``####``), rewritten so that it reads as its TeX does (:func:`faithful_latex`: digit groups,
brace-less arguments, the imaginary unit; None when it cannot be read faithfully), wrapped in
``$...$`` (math-verify misreads bare ``[1,3)`` or ``(x+1)^2``), parsed as one whole LaTeX
expression, then compared with ``verify(gold, prediction, allow_set_relation_comp=True)``:
gold first, since the comparison is asymmetric; the set/relation option makes a
one-variable inequality equal its interval on either side. Numbers must also be relatively
close (:data:`REL_TOL`). A gold holding several values (``1,-2``) answered with one box per
value is graded against all the boxes. Rules and sources: ``docs/grading.md``.

Outcomes (see :class:`Grade`): ``True``/``False``, or ``None`` for "cannot grade": the gold
or the prediction does not parse, an input is too long, or the time bound ran out. A
response without any final answer is ``False`` (reason ``no_answer``), not ``None``: the
model failed, the oracle did not.

Time bound. math-verify's own timeout uses ``signal.alarm``: it only works on the main
thread, and its ``TimeoutException`` derives from ``BaseException``. We switch it off
(``parsing_timeout=None``, ``timeout_seconds=None``) and bound each whole call ourselves
(:mod:`motif._timebound`): every call, from any thread, is graded by one long-lived worker
process on its own main thread, under a timer on the worker's *CPU time* (``timeout_s``),
which keeps firing until the call ends (a timeout that sympy swallows, or that Python drops
inside a gc callback, is raised again); the caller kills the worker when even
``WALL_FACTOR * timeout_s + grace`` seconds of wall-clock pass without a reply (a hang in C
code) and starts a fresh one on the next call. CPU time, not wall-clock, decides the verdict,
so a busy machine does not turn right answers into timeouts; the wall-clock kill bounds the
caller's wait whatever the graded code does.
"""

from __future__ import annotations

import atexit
import logging
import math
import os
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal

from motif._reading import (  # REL_TOL and faithful_latex are part of this module's API
    REL_TOL,  # noqa: F401
    _is_math,
    _read,
    _ungroup_digits,
    faithful_latex,  # noqa: F401
)
from motif._timebound import CallTimeout, WorkerDied, WorkerProcess, with_time_limit
from motif.answer_format import boxed_answers, final_answer_boxes, has_box, parse_boxed

logger = logging.getLogger(__name__)

Fallback = Literal["none", "response"]
GoldLike = str | int | float

DEFAULT_TIMEOUT_S = 5.0
"""CPU seconds one grading call may spend (extraction, parsing and comparison together)."""
WALL_FACTOR = 4.0
"""The caller waits at most ``WALL_FACTOR * timeout_s`` (plus the worker's grace) of
wall-clock for a verdict before killing the worker: room for a worker that gets a quarter of
a core on a busy machine."""
MAX_INPUT_CHARS = 200_000
"""Longer responses or predictions are not graded (None, reason ``too_long``)."""
MAX_ANSWER_CHARS = 1_000
"""Longer extracted answers are not parsed: real answers are short, sympy on huge ones is slow."""
GOLD_SOURCES = ("gsm8k", "math", "aime", "amc")

CORRECT = "correct"
INCORRECT = "incorrect"
NO_ANSWER = "no_answer"
GOLD_UNPARSEABLE = "gold_unparseable"
PREDICTION_UNPARSEABLE = "prediction_unparseable"
TOO_LONG = "too_long"
TIMEOUT = "timeout"
WORKER_DIED = "worker_died"

_INTEGER = re.compile(r"[+-]?\d+")
_WHOLE_DECIMAL = re.compile(r"([+-]?\d+)\.0+")
_GROUPED_INTEGER = re.compile(r"[+-]?\d{1,3}(?:,\d{3})+")
# A number followed by plain words ("18.90 dollars", "5 cm."): the words are a unit.
_NUMBER_AND_WORDS = re.compile(
    r"(\\?\$?\s*[+-]?(?:\d[\d,]*)?\.?\d+)\s+[A-Za-z]{2,}(?:[\s-]+[A-Za-z]+)*\.?"
)


@dataclass(frozen=True)
class Grade:
    """The outcome of one grading.

    Attributes:
        correct: True, False, or None when the pair cannot be graded.
        reason: one of ``correct``, ``incorrect``, ``no_answer``, ``gold_unparseable``,
            ``prediction_unparseable``, ``too_long``, ``timeout``, ``worker_died``.
        answer: the extracted final answer, when the grading started from a response.
    """

    correct: bool | None
    reason: str
    answer: str | None = None

    def __bool__(self) -> bool:
        # A Grade is always truthy as an object; refuse, so `if grade:` cannot hide a None.
        raise TypeError("use Grade.correct (True, False or None), not the Grade itself")


@dataclass
class GradeStats:
    """Counts gradings by reason, so a caller can log how many could not be graded.

    Not thread-safe: make one per batch (or guard it yourself).
    """

    counts: Counter[str] = field(default_factory=Counter)

    def add(self, grade: Grade) -> Grade:
        """Count ``grade`` and return it unchanged."""
        self.counts[grade.reason] += 1
        return grade

    def update(self, other: GradeStats) -> None:
        """Add another tally into this one."""
        self.counts.update(other.counts)

    @property
    def total(self) -> int:
        """Gradings counted."""
        return sum(self.counts.values())

    @property
    def ungraded(self) -> int:
        """Gradings that returned None."""
        return sum(n for reason, n in self.counts.items() if reason not in _DEFINITE)

    def summary(self) -> str:
        """One line, e.g. ``32 graded: correct 10, incorrect 20, timeout 2 (2 None)``."""
        parts = ", ".join(f"{reason} {n}" for reason, n in sorted(self.counts.items()))
        return f"{self.total} graded: {parts or 'nothing'} ({self.ungraded} None)"

    def log(self, name: str, log: logging.Logger | None = None) -> None:
        """Log the tally: WARNING when some gradings returned None, else DEBUG."""
        level = logging.WARNING if self.ungraded else logging.DEBUG
        (log or logger).log(level, "%s: %s", name, self.summary())


_DEFINITE = frozenset({CORRECT, INCORRECT, NO_ANSWER})


# --------------------------------------------------------------------------- golds


def normalize_gold(raw: GoldLike, source: str | None = None) -> str:
    """The gold answer as the oracle compares it.

    GSM8K (``source="gsm8k"``, or any text holding ``####``): the text after the last
    ``####``, thousands separators dropped (``"... #### 1,234"`` -> ``"1234"``). Every source:
    stripped; integers lose leading zeros (AIME ``"025"`` -> ``"25"``); whole decimals lose
    their fraction (AMC ``"27.0"`` or the float ``27.0`` -> ``"27"``). Other text (MATH's
    LaTeX) is kept as it is. A non-finite float gives ``""``, which does not grade.

    Raises:
        TypeError: ``raw`` is not a str, int or float.
        ValueError: ``source`` is not one of :data:`GOLD_SOURCES` or None.
    """
    if source is not None and source not in GOLD_SOURCES:
        raise ValueError(f"unknown gold source {source!r}; use one of {GOLD_SOURCES} or None")
    text = _gold_text(raw)
    if source == "gsm8k" or "####" in text:
        text = text.rsplit("####", 1)[-1].strip()
        if _GROUPED_INTEGER.fullmatch(text):
            text = text.replace(",", "")
    return _canonical_number(text)


def paper_gold(raw: GoldLike) -> str:
    """The gold string the reference implementation matches: after ``####``, stripped.

    Unlike :func:`normalize_gold` nothing else changes (``"1,234"`` stays), because the
    reference compares strings.
    """
    text = _gold_text(raw)
    return text.split("####")[-1].strip() if "####" in text else text


def _gold_text(raw: GoldLike) -> str:
    if isinstance(raw, bool) or not isinstance(raw, (str, int, float)):
        raise TypeError(f"a gold answer must be a str, int or float, got {type(raw).__name__}")
    if isinstance(raw, float):
        if not math.isfinite(raw):
            return ""
        return str(int(raw)) if raw.is_integer() else repr(raw)
    return str(raw).strip()


def _canonical_number(text: str) -> str:
    whole = _WHOLE_DECIMAL.fullmatch(text)
    if whole:
        text = whole.group(1)
    if _INTEGER.fullmatch(text):
        return str(int(text))
    return text


# --------------------------------------------------------------------------- public API


def grade(prediction: str | None, gold: GoldLike, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> Grade:
    """Grade a predicted answer against a gold answer, within ``timeout_s`` seconds.

    ``prediction`` may be a bare answer (``"1,234"``, ``"$18.90"``, ``"\\frac{1}{2}"``) or
    text holding boxes, in which case its last box is graded (all its boxes for a
    multi-value gold); an empty or unclosed last box is no answer. None means the caller
    found no answer (``False``, reason ``no_answer``).
    """
    _check_str("prediction", prediction, optional=True)
    _check_timeout(timeout_s)
    if prediction is None:
        return Grade(False, NO_ANSWER)
    if len(prediction) > MAX_INPUT_CHARS:
        return Grade(None, TOO_LONG)
    return _bounded(("answer", prediction, normalize_gold(gold), "none"), timeout_s)


def is_correct(
    prediction: str | None, gold: GoldLike, *, timeout_s: float = DEFAULT_TIMEOUT_S
) -> bool | None:
    """True/False when ``prediction`` does/does not equal ``gold``; None when it cannot grade.

    See :func:`grade` for the accepted forms. Safe on any thread; bounded by ``timeout_s``.
    """
    return grade(prediction, gold, timeout_s=timeout_s).correct


def grade_text(
    text: str,
    gold: GoldLike,
    *,
    fallback: Fallback = "none",
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> Grade:
    """Grade a whole (last-round) response: extract its final answer, then grade it.

    The final answer is the last box of the final ``<answer>`` block
    (:func:`motif.answer_format.final_answer_boxes`: tags read as a structure; an empty or
    unclosed last box is no answer); all its boxes for a multi-value gold.
    ``fallback="response"`` also accepts the boxes of the whole response. No answer gives
    ``False`` (reason ``no_answer``).
    """
    _check_str("text", text)
    _check_timeout(timeout_s)
    if fallback not in ("none", "response"):
        raise ValueError(f"unknown fallback {fallback!r}; use 'none' or 'response'")
    if len(text) > MAX_INPUT_CHARS:
        return Grade(None, TOO_LONG)
    return _bounded(("text", text, normalize_gold(gold), fallback), timeout_s)


def grade_response(
    text: str,
    gold: GoldLike,
    *,
    fallback: Fallback = "none",
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> bool | None:
    """:func:`grade_text`'s verdict only: True, False, or None when it cannot grade."""
    return grade_text(text, gold, fallback=fallback, timeout_s=timeout_s).correct


def gold_parses(gold: GoldLike, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> bool:
    """Whether the oracle can parse ``gold`` at all (used to audit a data set's golds)."""
    return _bounded(("gold", "", normalize_gold(gold), "none"), timeout_s).correct is not None


def grade_many(
    pairs: Iterable[tuple[str | None, GoldLike]],
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    stats: GradeStats | None = None,
) -> list[bool | None]:
    """:func:`is_correct` over many (prediction, gold) pairs, counting reasons in ``stats``."""
    tally = stats if stats is not None else GradeStats()
    return [tally.add(grade(p, g, timeout_s=timeout_s)).correct for p, g in pairs]


def _check_str(name: str, value: object, optional: bool = False) -> None:
    if value is None and optional:
        return
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, got {type(value).__name__}")


def _check_timeout(timeout_s: float) -> None:
    if isinstance(timeout_s, bool) or not isinstance(timeout_s, (int, float)) or timeout_s <= 0:
        raise ValueError(f"timeout_s must be a positive number of seconds, got {timeout_s!r}")


# --------------------------------------------------------------------------- grading proper

Request = tuple[str, str, str, str]  # (kind, text or prediction, normalised gold, fallback)


def _execute(request: Request) -> Grade:
    """The grading itself, unbounded: callers run it under a time limit."""
    kind, text, gold, fallback = request
    gold_parsed = _parse_gold(gold)
    if not gold_parsed:
        return Grade(None, GOLD_UNPARSEABLE)
    if kind == "gold":
        return Grade(True, CORRECT)
    boxes = final_answer_boxes(text, fallback) if kind == "text" else _prediction_boxes(text)
    if not boxes:
        return Grade(False, NO_ANSWER)
    verdict, answer = _compare(gold_parsed, boxes[-1]), boxes[-1]
    if verdict.correct is not True and len(boxes) > 1 and _many_values(gold_parsed):
        # A multi-value gold answered one box per value: grade all boxes as one list.
        joined = ", ".join(boxes)
        if (every := _compare(gold_parsed, joined)).correct is True:
            verdict, answer = every, joined
    return Grade(verdict.correct, verdict.reason, answer if kind == "text" else None)


def _prediction_boxes(prediction: str) -> list[str]:
    """A bare prediction is its own answer; one holding a box is graded by its boxes."""
    return boxed_answers(prediction) if has_box(prediction) else [prediction]


def _many_values(gold_parsed: tuple[Any, ...]) -> bool:
    """Whether the gold is a list of values (``1,-2``, ``1 \\pm \\sqrt{19}``)."""
    from sympy import FiniteSet

    return any(isinstance(g, FiniteSet) and len(g) > 1 for g in gold_parsed)


def _compare(gold_parsed: tuple[Any, ...], prediction: str) -> Grade:
    from math_verify import verify

    core = _answer_core(prediction)
    if core is None or not core.strip():
        return Grade(None, PREDICTION_UNPARSEABLE)
    if len(core) > MAX_ANSWER_CHARS:
        return Grade(None, TOO_LONG)
    parsed = _read(core)
    if not parsed:
        return Grade(None, PREDICTION_UNPARSEABLE)
    if verify(list(gold_parsed), parsed, timeout_seconds=None, allow_set_relation_comp=True):
        return Grade(True, CORRECT)
    if not any(_is_math(p) for p in parsed):
        # Only a raw-string fallback came out: we could not read the prediction as math.
        return Grade(None, PREDICTION_UNPARSEABLE)
    return Grade(False, INCORRECT)


@lru_cache(maxsize=4096)
def _parse_gold(gold: str) -> tuple[Any, ...]:
    """The parsed gold (cached: a data set repeats each gold over many completions).

    A gold written with one box per value (``\\boxed{1}, \\boxed{-2}``) is all of its boxes,
    a list of values, never its last box alone.
    """
    boxes = boxed_answers(gold) if has_box(gold) else []
    if len(boxes) > 1:
        core: str | None = ", ".join(_ungroup_digits(box.strip()) for box in boxes)
    else:
        core = _answer_core(gold)
    if core is None or not core.strip() or len(core) > MAX_ANSWER_CHARS:
        return ()
    return tuple(_read(core))


def _answer_core(text: str) -> str | None:
    """The last box's content when ``text`` has a box (None if there is no usable box).

    A number followed by plain words keeps only the number: LaTeX would read the words as
    a product of single-letter symbols (math-verify already drops ``\\text{}`` units).
    """
    core = parse_boxed(text) if has_box(text) else text
    if core is None:
        return None
    core = _ungroup_digits(core.strip())
    unit = _NUMBER_AND_WORDS.fullmatch(core)
    return unit.group(1) if unit else core


# --------------------------------------------------------------------------- time bounds


def _bounded(request: Request, timeout_s: float) -> Grade:
    """Grade ``request`` in the worker process (see the module docstring)."""
    message = {"request": request, "timeout_s": timeout_s}
    try:
        reply = _WORKER.call(message, WALL_FACTOR * timeout_s)
    except WorkerDied as exc:
        logger.warning("%s; it restarts on the next call", exc)
        return Grade(None, WORKER_DIED)
    if reply is None:
        return Grade(None, TIMEOUT)
    return Grade(reply["correct"], reply["reason"], reply["answer"])


def _run_inline(request: Request, timeout_s: float) -> Grade:
    """Grade on this (the worker's main) thread within ``timeout_s`` CPU seconds."""
    from math_verify.errors import TimeoutException

    try:
        return with_time_limit(lambda: _execute(request), timeout_s, clock="cpu")
    except (CallTimeout, TimeoutException):
        # math-verify's own timer is off, but its exception is caught too in case it fires.
        logger.debug("grading timed out after %.1f CPU s", timeout_s)
        return Grade(None, TIMEOUT)


def _serve_request(message: dict[str, Any]) -> dict[str, Any]:
    """The worker process's handler: grade one request on its main thread."""
    result = _run_inline(tuple(message["request"]), message["timeout_s"])
    return {"correct": result.correct, "reason": result.reason, "answer": result.answer}


def _warm_up() -> None:
    _parse_gold("1")  # import math-verify and sympy before the worker reports ready


def _quiet_math_verify_notice() -> None:
    """Drop math-verify's one-off "timeout is disabled" warning: we bound time ourselves."""

    def _keep(record: logging.LogRecord) -> bool:
        return "Timeout is disabled" not in record.getMessage()

    for name in ("math_verify.parser", "math_verify.grader"):
        logging.getLogger(name).addFilter(_keep)


_quiet_math_verify_notice()
_WORKER = WorkerProcess("motif.grading:_serve_request", warm_up="motif.grading:_warm_up")
atexit.register(_WORKER.close)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_WORKER.forget)
