"""How the oracle reads an answer: faithful LaTeX rewriting, math-verify parsing, relative tolerance.

Split out of :mod:`motif.grading` (which calls these under its time bound); rules and sources
are in ``docs/grading.md``. Imports no torch.
"""

from __future__ import annotations

import logging
import re
from functools import lru_cache
from typing import Any

from motif.answer_format import matching_braces

logger = logging.getLogger(__name__)

REL_TOL = 1e-4
"""Relative tolerance of numeric comparison: Qwen2.5-Math's evaluator (``numeric_equal``,
``math.isclose(reference, prediction, rel_tol=1e-4)``, QwenLM/Qwen2.5-Math
``evaluation/grader.py``). It only ever narrows math-verify's verdict, which stays exact for
exact values and rounds written decimals to 6 places; see ``docs/grading.md``."""

_DELIMITED = re.compile(r"\$\$.*\$\$|\$[^$].*\$|\\\(.*\\\)|\\\[.*\\\]", re.DOTALL)
_BARE_DOLLAR = re.compile(r"(?<!\\)\$")
# Digit-group separators: \, \; \: \  \thinspace ~ {,} a space, NBSP, thin and narrow spaces.
_SEP = r"(?:(?<!\\)\\(?:[,;: ]|thinspace(?![A-Za-z]) ?)|~|\{,\}|[ \u00a0\u2009\u202f])"
_INT_GROUPS = re.compile(rf"(?<![\d.])\d{{1,3}}(?:{_SEP}\d{{3}})+(?!\d)")
_FRACTION_GROUPS = re.compile(rf"(?<=\d\.)\d{{3}}(?:{_SEP}\d{{3}})*{_SEP}\d{{1,3}}(?!\d)")
# Digits still apart after ungrouping: separators, or wider TeX spacing (\quad, \enspace...).
_WIDE_SPACE = r"\\(?:q?quad|enspace|hspace\{[^{}]*\})(?![A-Za-z])"
_SPACED_DIGITS = re.compile(rf"\d(?:{_SEP}|{_WIDE_SPACE})+\d")
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
# A number in E notation: digits, e or E, an exponent; no letter or digit around it.
_E_NOTATION = re.compile(r"(?<![A-Za-z\\\d.])(\d+(?:\.\d*)?|\.\d+)[eE]([+-]?\d+)(?![\d.A-Za-z])")
_PAREN_POWER = re.compile(r"\^\s*\(|(?<![\\A-Za-z])sqrt\s*\(")

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
    * ``x^(...)`` and plain ``sqrt(...)`` take the whole balanced parenthesis;
    * a number in E notation (``1e3``, ``2.5E-3``) is that number (``1\\cdot10^{3}``), not a
      product with Euler's number.

    Linear in ``len(core)`` apart from the parenthesis matching of the last rule.
    """
    text = _ungroup_digits(core)
    if _SPACED_DIGITS.search(text):
        return None
    text = _IMAGINARY.sub("{i}", text)
    text = _E_NOTATION.sub(r"\1\\cdot10^{\2}", text)
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
