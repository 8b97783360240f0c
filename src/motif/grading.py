"""The correctness oracle: is a predicted answer mathematically equal to the gold answer?

Built on ``math-verify``. Each side is reduced to one expression first (the last box when
there is a box, see :func:`motif.protocol.boxed_answers`; a GSM8K gold's text after
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
(:mod:`motif._timebound`): on the main thread with a one-shot timer; on any other thread
by handing the call to a long-lived worker process that grades on its own main thread with
the same timer and is killed if even that fails to return.
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

from motif._timebound import CallTimeout, WorkerDied, WorkerProcess, on_main_thread, with_time_limit
from motif.protocol import boxed_answers, final_answer_boxes, matching_braces, parse_boxed

logger = logging.getLogger(__name__)

Fallback = Literal["none", "response"]
GoldLike = str | int | float

DEFAULT_TIMEOUT_S = 5.0
"""Wall-clock bound for one grading call (extraction, parsing and comparison together)."""
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

REL_TOL = 1e-4
"""Relative tolerance of numeric comparison: Qwen2.5-Math's evaluator (``numeric_equal``,
``math.isclose(reference, prediction, rel_tol=1e-4)``, QwenLM/Qwen2.5-Math
``evaluation/grader.py``). It only ever narrows math-verify's verdict, which stays exact for
exact values and rounds written decimals to 6 places; see ``docs/grading.md``."""

_BOX = re.compile(r"\\(?:boxed|fbox)(?![A-Za-z])")
_DELIMITED = re.compile(r"\$\$.*\$\$|\$[^$].*\$|\\\(.*\\\)|\\\[.*\\\]", re.DOTALL)
_BARE_DOLLAR = re.compile(r"(?<!\\)\$")
_INTEGER = re.compile(r"[+-]?\d+")
_WHOLE_DECIMAL = re.compile(r"([+-]?\d+)\.0+")
_GROUPED_INTEGER = re.compile(r"[+-]?\d{1,3}(?:,\d{3})+")
# A number followed by plain words ("18.90 dollars", "5 cm."): the words are a unit.
_NUMBER_AND_WORDS = re.compile(
    r"(\\?\$?\s*[+-]?(?:\d[\d,]*)?\.?\d+)\s+[A-Za-z]{2,}(?:[\s-]+[A-Za-z]+)*\.?"
)
# Digit-group separators: \, \; \: \  \thinspace ~ {,} a space, NBSP, thin and narrow spaces.
_SEP = r"(?:(?<!\\)\\(?:[,;: ]|thinspace(?![A-Za-z]) ?)|~|\{,\}|[ \u00a0\u2009\u202f])"
_INT_GROUPS = re.compile(rf"(?<![\d.])\d{{1,3}}(?:{_SEP}\d{{3}})+(?!\d)")
_FRACTION_GROUPS = re.compile(rf"(?<=\d\.)\d{{3}}(?:{_SEP}\d{{3}})*{_SEP}\d{{1,3}}(?!\d)")
_SPACED_DIGITS = re.compile(rf"\d{_SEP}+\d")
_SEP_RE = re.compile(_SEP)
# Spellings of the imaginary unit; the letter i itself becomes sympy's I after parsing.
_IMAGINARY = re.compile(
    r"\\(?:mathrm|text|textrm|textit|mathit|operatorname|rm)\s*\{\s*i\s*\}|\\(?:imath|i)(?![A-Za-z])"
)
# Commands whose brace-less arguments we read as TeX does (one token each).
_ARG_COMMAND = re.compile(r"\\(?:[dtc]?frac|sqrt)(?![A-Za-z])|\\log_")
_OPEN_INDEX = re.compile(r"\s*\[")
_BACKSLASH_OR_CLOSE = re.compile(r"[\\}]")
_ARG_TOKEN = re.compile(r"\s*(\{|\\[A-Za-z]+|[A-Za-z0-9])")
_PAREN_POWER = re.compile(r"\^\s*\(|(?<![\\A-Za-z])sqrt\s*\(")


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
    (:func:`motif.protocol.final_answer_boxes`: tags read as a structure; an empty or
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
    return boxed_answers(prediction) if _BOX.search(prediction) else [prediction]


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
    """The parsed gold (cached: a data set repeats each gold over many completions)."""
    core = _answer_core(gold)
    if core is None or not core.strip() or len(core) > MAX_ANSWER_CHARS:
        return ()
    return tuple(_read(core))


def _answer_core(text: str) -> str | None:
    """The last box's content when ``text`` has a box (None if there is no usable box).

    A number followed by plain words keeps only the number: LaTeX would read the words as
    a product of single-letter symbols (math-verify already drops ``\\text{}`` units).
    """
    core = parse_boxed(text) if _BOX.search(text) else text
    if core is None:
        return None
    core = _ungroup_digits(core.strip())
    unit = _NUMBER_AND_WORDS.fullmatch(core)
    return unit.group(1) if unit else core


# --------------------------------------------------------------------------- reading


def _read(core: str) -> list[Any]:
    """``core`` parsed by math-verify as one whole expression; [] when it cannot be read
    faithfully (see :func:`faithful_latex`), so the caller says "cannot grade"."""
    latex = faithful_latex(core)
    if latex is None:
        logger.debug("cannot read %.80r faithfully", core)
        return []
    parsed = _parse_latex(_as_latex(latex))
    if not any(_is_math(p) for p in parsed):
        # Plain text such as "18.90" outside LaTeX, when it is the whole answer.
        parsed = _parse_plain(core) or parsed
    return [_imaginary_unit(p) for p in parsed]


def faithful_latex(core: str) -> str | None:
    """``core`` rewritten so that math-verify reads what a reader of the TeX would, or None.

    * digit groups (``1\\,000``, ``1\\ 000``, ``1~000``, ``1{,}000``, ``1 000``, thin or
      no-break spaces; also after the decimal point) lose their separators; digits still
      separated by spacing afterwards (``12\\,34``) are ambiguous: None;
    * spellings of the imaginary unit (``\\mathrm{i}``, ``\\text{i}``, ``\\imath``...) become ``i``;
    * brace-less arguments of ``\\frac``, ``\\dfrac``, ``\\tfrac``, ``\\cfrac``, ``\\sqrt`` and
      ``\\log_`` are one token each, as in TeX (``\\frac 1234`` is ``\\frac{1}{2}34``); an
      argument that is missing or a parenthesis (``4\\sqrt(2)``) is malformed: None;
    * ``x^(...)`` and plain ``sqrt(...)`` take the whole balanced parenthesis.

    Linear in ``len(core)`` apart from the parenthesis matching of the last rule.
    """
    text = _ungroup_digits(core)
    if _SPACED_DIGITS.search(text):
        return None
    text = _IMAGINARY.sub("{i}", text)
    text = _brace_arguments(text)
    return None if text is None else _brace_parentheses(text)


def _ungroup_digits(text: str) -> str:
    """Digit groups without their separators (``1\\,000.000\\,5`` -> ``1000.0005``)."""
    return _FRACTION_GROUPS.sub(_drop_separators, _INT_GROUPS.sub(_drop_separators, text))


def _drop_separators(match: re.Match[str]) -> str:
    return _SEP_RE.sub("", match.group())


def _brace_arguments(text: str) -> str | None:
    """Braces around every brace-less argument of :data:`_ARG_COMMAND`; None if malformed."""
    pairs = matching_braces(text)
    out: list[str] = []
    after: dict[int, int] = {}  # closing brace of a first argument -> arguments still due
    i = 0
    while i < len(text):
        command = _ARG_COMMAND.match(text, i) if text[i] == "\\" else None
        if command:
            out.append(command.group())
            i = command.end()
            if "sqrt" in command.group():
                i = _optional_index(text, i, out)
            due = 2 if "frac" in command.group() else 1
            i = _arguments(text, i, due, pairs, out, after) if i >= 0 else i
        elif text[i] == "}" and i in after:
            out.append("}")
            i = _arguments(text, i + 1, after.pop(i), pairs, out, after)
        else:  # copy up to the next backslash or closing brace
            stop = _BACKSLASH_OR_CLOSE.search(text, i + 2 if text[i] == "\\" else i + 1)
            out.append(text[i : stop.start() if stop else len(text)])
            i = stop.start() if stop else len(text)
        if i < 0:
            return None
    return "".join(out)


def _optional_index(text: str, i: int, out: list[str]) -> int:
    """Copy ``\\sqrt``'s ``[n]``, if any; the position after it (-1 if never closed)."""
    opening = _OPEN_INDEX.match(text, i)
    if opening is None:
        return i
    close = text.find("]", opening.end())
    if close < 0:
        return -1
    out.append(text[i : close + 1])
    return close + 1


def _arguments(
    text: str, i: int, due: int, pairs: dict[int, int], out: list[str], after: dict[int, int]
) -> int:
    """Read ``due`` arguments from ``i``; the position to go on from, -1 if malformed.

    A braced argument is left for the main loop to copy (its content may hold commands);
    the arguments after it are read when its closing brace comes by (``after``).
    """
    while due and i >= 0:
        token = _ARG_TOKEN.match(text, i)
        if token is None:
            return -1
        if token.group(1) == "{":
            if pairs.get(token.start(1)) is None:
                return -1
            if due > 1:
                after[pairs[token.start(1)]] = due - 1
            return token.start(1)
        out.append("{" + token.group(1) + "}")
        i, due = token.end(), due - 1
    return i


def _brace_parentheses(text: str) -> str:
    """``2^(n+1)`` -> ``2^{(n+1)}``, ``sqrt(2)`` -> ``\\sqrt{(2)}`` (balanced parentheses)."""
    if "(" not in text:
        return text
    pairs, stack = {}, []
    for j, ch in enumerate(text):
        if ch == "(":
            stack.append(j)
        elif ch == ")" and stack:
            pairs[stack.pop()] = j
    pos, out = 0, []
    for match in _PAREN_POWER.finditer(text):
        close = pairs.get(match.end() - 1)
        if match.start() < pos or close is None:
            continue  # inside one already braced, or unbalanced: left for math-verify to refuse
        head = "^" if match.group().startswith("^") else "\\sqrt"
        out.append(text[pos : match.start()] + head + "{" + text[match.end() - 1 : close + 1] + "}")
        pos = close + 1
    return "".join(out) + text[pos:]


def _as_latex(core: str) -> str:
    """``core`` in math delimiters; a bare ``$`` inside is a currency sign, so escape it."""
    text = core.strip()
    if _DELIMITED.fullmatch(text):
        return text
    return "$" + _BARE_DOLLAR.sub(r"\\$", text) + "$"


@lru_cache(maxsize=1)
def _latex_config() -> list[Any]:
    """math-verify's LaTeX extraction without its malformed-operator repair (which drops
    parts: ``4\\sqrt(2)`` -> ``4``; :func:`faithful_latex` does the faithful part) and
    without plain-expression extraction (which grades a fragment: ``3)`` -> ``3``)."""
    from latex2sympy2_extended.latex2sympy2 import NormalizationConfig
    from math_verify import LatexExtractionConfig

    normalization = NormalizationConfig(
        basic_latex=True, units=True, malformed_operators=False, nits=True, boxed="all"
    )
    return [LatexExtractionConfig(normalization_config=normalization)]


def _parse_latex(text: str) -> list[Any]:
    from math_verify import parse

    _install_relative_tolerance()
    return parse(text, _latex_config(), parsing_timeout=None)


def _parse_plain(core: str) -> list[Any]:
    """math-verify's plain-expression reading of ``core``, only when it reads all of it."""
    from math_verify import ExprExtractionConfig, parse

    parsed = parse(core, [ExprExtractionConfig()], parsing_timeout=None)
    read = [p for p in parsed if isinstance(p, str)]
    whole = re.sub(r"\s+", "", core).rstrip(".")
    if read and re.sub(r"\s+", "", read[0]) == whole and any(_is_math(p) for p in parsed):
        return parsed
    return []


def _imaginary_unit(value: Any) -> Any:
    """Every symbol named ``i`` becomes sympy's imaginary unit ``I``."""
    from sympy import I

    symbols = getattr(value, "free_symbols", None)
    units = {s: I for s in symbols or () if getattr(s, "name", None) == "i"}
    if not units:
        return value
    try:
        return value.xreplace(units)
    except Exception:  # sympy refuses the complex form (a non-real interval): keep i a symbol
        return value


def _is_math(value: object) -> bool:
    return not isinstance(value, str)


# --------------------------------------------------------------------------- numbers


def _install_relative_tolerance() -> None:
    """Make math-verify's numeric comparison also require a relative difference of at most
    :data:`REL_TOL` (idempotent).

    math-verify compares numbers in one place, ``math_verify.grader.sympy_numeric_eq``
    (directly and for the elements of tuples, sets, intervals, matrices and solved
    relations), with absolute tolerances only: written decimals rounded to 6 places,
    other values ``evalf(chop=True)``, so ``2^{-98}`` "equals" ``2^{-99}``. We wrap that
    function: its True stands only when the two values are also relatively close.
    """
    import math_verify.grader as grader

    if getattr(grader.sympy_numeric_eq, "motif_relative", False):
        return
    absolute = grader.sympy_numeric_eq

    def sympy_numeric_eq(a: Any, b: Any, float_rounding: int, numeric_precision: int) -> bool:
        return absolute(a, b, float_rounding, numeric_precision) and _relatively_close(a, b)

    sympy_numeric_eq.motif_relative = True  # type: ignore[attr-defined]
    grader.sympy_numeric_eq = sympy_numeric_eq


def _relatively_close(a: Any, b: Any) -> bool:
    """|a - b| <= REL_TOL * max(|a|, |b|) for two numbers (either read as a percentage, as
    math-verify allows); True when either is exactly zero (math-verify's absolute rounding
    is then the only tolerance) or when they are not plain numbers (left to math-verify)."""
    from math_verify.grader import get_pct_val

    return any(_close(x, y) for x in {a, get_pct_val(a, a)} for y in {b, get_pct_val(b, b)})


def _close(a: Any, b: Any) -> bool:
    if not (getattr(a, "is_number", False) and getattr(b, "is_number", False)):
        return True
    try:
        x, y = a.evalf(30), b.evalf(30)
        if x == 0 or y == 0:
            return True
        return bool(abs(x - y) <= REL_TOL * max(abs(x), abs(y)))
    except (TypeError, ValueError, ArithmeticError, AttributeError):
        return True  # not comparable as numbers: math-verify's verdict stands


# --------------------------------------------------------------------------- time bounds


def _bounded(request: Request, timeout_s: float) -> Grade:
    if on_main_thread():
        return _run_inline(request, timeout_s)
    try:
        reply = _WORKER.call({"request": request, "timeout_s": timeout_s}, timeout_s)
    except WorkerDied as exc:
        logger.warning("%s; it restarts on the next call", exc)
        return Grade(None, WORKER_DIED)
    if reply is None:
        return Grade(None, TIMEOUT)
    return Grade(reply["correct"], reply["reason"], reply["answer"])


def _run_inline(request: Request, timeout_s: float) -> Grade:
    from math_verify.errors import TimeoutException

    try:
        return with_time_limit(lambda: _execute(request), timeout_s)
    except (CallTimeout, TimeoutException):
        # math-verify's own timer is off, but its exception is caught too in case it fires.
        logger.debug("grading timed out after %.1f s", timeout_s)
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
