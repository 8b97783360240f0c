"""The answer format: ``<reasoning>``/``<answer>`` tags and ``\\boxed{}`` answers, read,
written and scored.

Pure functions, no torch; the one home of what a reply in the format looks like.

* Read: one rule reads answers everywhere outside the ``paper`` summary rule:
  :func:`answer_span` finds the final ``<answer>`` block, :func:`boxed_answers` its boxes;
  :func:`final_answer_boxes` and :func:`extract_final_answer` combine them for final answers,
  rewards, evaluation and early stop. :func:`parse_reasoning`, :func:`parse_answer`.
* Write: :func:`format_reply` (the demonstrations' replies).
* Check and score the layout: :func:`format_ok`, :func:`paper_strict_ok`, and the scores
  behind the format rewards of :mod:`motif.rewards` (``xmlcount``, ``soft``, ``strict``, each
  fixed and ``paper``, the reference's exact behaviour).
"""

from __future__ import annotations

import bisect
import re
from typing import Literal


def parse_reasoning(text: str) -> str | None:
    """Content of the first complete ``<reasoning>...</reasoning>`` pair, stripped; else None."""
    start = text.find("<reasoning>")
    if start < 0:
        return None
    end = text.find("</reasoning>", start)
    if end < 0:
        return None
    return text[start + len("<reasoning>") : end].strip()


def parse_answer(text: str) -> str | None:
    """Content of the final ``<answer>`` block, stripped (:func:`answer_span`); else None."""
    span = answer_span(text)
    return None if span is None else text[span[0] : span[1]].strip()


# --------------------------------------------------------------------------- tags

_TAG = re.compile(r"<(/?)(reasoning|answer)>")
_FENCE = re.compile(r"^[ \t]{0,3}(`{3,}|~{3,})", re.MULTILINE)
_TICKS = re.compile(r"`+")


def answer_span(text: str) -> tuple[int, int] | None:
    """Where the final answer's content lies in ``text``: ``(start, end)`` offsets, or None.

    The tags are read as a structure, in one linear pass (source: issue 13):

    * tags inside a code span (a Markdown fenced block, or inline code between equal runs
      of backticks) are text, never tags;
    * ``<reasoning>`` runs to the first ``</reasoning>`` (to the end when never closed) and
      any ``<answer>`` pair inside it is text; when the first reasoning block is never
      closed there is no answer, whatever pairs it holds;
    * ``<answer>`` blocks nest: the block ends at the ``</answer>`` that closes the outer
      one, so a quoted pair inside an answer stays part of it;
    * the answer is the last top-level ``<answer>`` block after the (first) reasoning
      block, or after the start when there is no ``<reasoning>``; if that block is never
      closed there is no answer (an earlier, closed block is not used instead).
    """
    if "<answer>" not in text:
        return None
    blocks: list[tuple[int, int]] = []  # closed top-level blocks that count
    reasoning = None  # None: none seen yet; "open": inside one; "done": after the first
    depth, start = 0, 0
    for match in _structural_tags(text):
        closing, name = match.group(1) == "/", match.group(2)
        if reasoning in ("open", "later"):
            if name == "reasoning" and closing:
                reasoning = "done"
        elif depth:
            if name == "answer":
                depth += -1 if closing else 1
                if depth == 0:
                    blocks.append((start, match.start()))
        elif name == "reasoning" and not closing:
            if reasoning is None:
                blocks = []  # only blocks after the reasoning count
            reasoning = "open" if reasoning is None else "later"
        elif name == "answer" and not closing:
            depth, start = 1, match.end()
    if reasoning == "open" or depth or not blocks:
        return None
    return blocks[-1]


def _structural_tags(text: str):
    """The ``<reasoning>``/``<answer>`` tags of ``text`` that lie outside code spans."""
    spans = _code_spans(text)
    k = 0
    for match in _TAG.finditer(text):
        while k < len(spans) and spans[k][1] <= match.start():
            k += 1
        if k < len(spans) and spans[k][0] <= match.start():
            continue
        yield match


def _code_spans(text: str) -> list[tuple[int, int]]:
    """Sorted, disjoint ``(start, end)`` spans of Markdown code in ``text``, in linear time.

    A fence (three or more backticks or tildes opening a line) runs to the next line
    opening with the same character at least as many times, or to the end (CommonMark).
    Inline code runs from a run of ``n`` backticks to the next run of exactly ``n``;
    a run without a partner is plain text.
    """
    if "`" not in text and "~~~" not in text:
        return []
    runs = [(m.start(), m.end()) for m in _TICKS.finditer(text)]
    by_length: dict[int, list[int]] = {}
    for i, (a, b) in enumerate(runs):
        by_length.setdefault(b - a, []).append(i)
    spans: list[tuple[int, int]] = []
    pos, i = 0, 0
    fence = _FENCE.search(text)
    while True:
        if fence is not None and fence.start() < pos:
            fence = _FENCE.search(text, pos)  # searched again only once passed: linear
        while i < len(runs) and runs[i][0] < pos:
            i += 1
        if i == len(runs) and fence is None:
            return spans
        if fence is not None and (i == len(runs) or fence.start(1) <= runs[i][0]):
            spans.append((fence.start(), _fence_end(text, fence)))
        else:
            end = _inline_end(runs, by_length, i)
            if end is None:
                pos = runs[i][1]
                continue
            spans.append((runs[i][0], end))
        pos = spans[-1][1]


def _fence_end(text: str, fence: re.Match[str]) -> int:
    marker = fence.group(1)
    closing = re.compile(rf"^[ \t]{{0,3}}{re.escape(marker[0])}{{{len(marker)},}}[ \t]*$", re.M)
    line_end = text.find("\n", fence.end())
    if line_end < 0:
        return len(text)
    found = closing.search(text, line_end + 1)
    return found.end() if found else len(text)


def _inline_end(runs: list[tuple[int, int]], by_length: dict[int, list[int]], i: int) -> int | None:
    """End of the inline code span opened by run ``i``, or None when no run closes it."""
    same = by_length[runs[i][1] - runs[i][0]]
    j = bisect.bisect_right(same, i)
    return runs[same[j]][1] if j < len(same) else None


# --------------------------------------------------------------------------- boxes

_BOXED = re.compile(r"\\(?:boxed|fbox)(?![A-Za-z])\s*")
# A brace-less box (\boxed 5) holds what follows up to the end of the math or the line,
# as in the usual last_boxed_only_string (which stops at "$").
_BARE_BOX_END = re.compile(r"\$|\\\]|\\\)|\n|<")


def matching_braces(text: str) -> dict[int, int]:
    """Map the index of every balanced ``{`` to its ``}`` in one linear pass.

    Escaped characters (``\\{``, ``\\}``) never count, so ``\\boxed{\\{1\\}}`` is one box.
    """
    pairs: dict[int, int] = {}
    stack: list[int] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\":
            i += 2
            continue
        if ch == "{":
            stack.append(i)
        elif ch == "}" and stack:
            pairs[stack.pop()] = i
        i += 1
    return pairs


def _boxes(text: str) -> list[tuple[int, int, int | None]]:
    """Every box of ``text``: ``(opening, content start, content end or None if unclosed)``."""
    if not text or "box" not in text:
        return []
    pairs = matching_braces(text) if "{" in text else {}
    found: list[tuple[int, int, int | None]] = []
    stop = -1  # the next end of a brace-less box, searched again only once passed: linear
    for match in _BOXED.finditer(text):
        begin = match.end()
        if text.startswith("{", begin):
            found.append((match.start(), begin + 1, pairs.get(begin)))
            continue
        if stop < begin:
            end = _BARE_BOX_END.search(text, begin)
            stop = end.start() if end else len(text)
        found.append((match.start(), begin, stop))
    return found


def has_box(text: str) -> bool:
    """Whether ``text`` opens a ``\\boxed``/``\\fbox`` (closed or not; :func:`boxed_answers`
    reads what it holds)."""
    return _BOXED.search(text) is not None


def boxed_answers(text: str) -> list[str]:
    """The contents of the boxes of ``text`` that make its boxed answer, in order.

    The last box is the right-most ``\\boxed``/``\\fbox`` opening, with braces
    (``\\boxed{\\frac{1}{2}}``, braces balanced, escaped braces ignored) or without
    (``\\boxed 5``: up to the next ``$``, ``\\]``, ``\\)``, newline or ``<``). When the
    last box is never closed, or holds nothing but blanks, there is no boxed answer
    (``[]``): an earlier box is an answer the model went past. Otherwise the list holds
    every closed, non-empty box that is not inside another one, ending with the last box's
    content. Linear time.
    """
    boxes = _boxes(text)
    if not boxes:
        return []
    _, last_start, last_end = boxes[-1]
    if last_end is None or not text[last_start:last_end].strip():
        return []
    contents, covered = [], -1
    for opening, start, end in boxes[:-1]:
        if end is None or opening < covered or not text[start:end].strip():
            continue
        contents.append(text[start:end].strip())
        covered = end
    if boxes[-1][0] < covered:  # the last box sits inside an earlier one: keep the inner
        contents.pop()
    contents.append(text[last_start:last_end].strip())
    return contents


def parse_boxed(text: str) -> str | None:
    """Content of the last box (see :func:`boxed_answers`), stripped; None when there is no
    boxed answer (no box, the last box unclosed, or empty)."""
    boxes = boxed_answers(text)
    return boxes[-1] if boxes else None


def final_answer_text(text: str, fallback: Literal["none", "response"] = "none") -> str | None:
    """The part of a response whose boxes make its final answer, or None.

    The final ``<answer>`` block's content (:func:`answer_span`) when it holds a boxed
    answer (:func:`boxed_answers`); with ``fallback="response"``, else the whole response
    when it holds one. Grading this text (``motif.grading.is_correct``) applies the same
    box rules as grading the response (``motif.grading.grade_text``).
    """
    if fallback not in ("none", "response"):
        raise ValueError(f"unknown fallback {fallback!r}; use 'none' or 'response'")
    answer = parse_answer(text)
    if answer is not None and boxed_answers(answer):
        return answer
    if fallback == "response" and boxed_answers(text):
        return text
    return None


def final_answer_boxes(text: str, fallback: Literal["none", "response"] = "none") -> list[str]:
    """The boxes of a response's final answer: the one rule for answers.

    :func:`boxed_answers` of :func:`final_answer_text`; ``[]`` when there is no final answer.
    Summaries (``strict``), final answers, rewards, evaluation and early stop all read
    answers through this rule (:func:`answer_span` for the tags, :func:`boxed_answers` for
    the boxes).
    """
    region = final_answer_text(text, fallback)
    return boxed_answers(region) if region is not None else []


def extract_final_answer(text: str, fallback: Literal["none", "response"] = "none") -> str | None:
    """The final answer of a response: the last box of :func:`final_answer_boxes`, or None.

    The last box inside the final ``<answer>`` block; with ``fallback="response"``, when
    that gives nothing, the last box anywhere in the response.
    """
    boxes = final_answer_boxes(text, fallback)
    return boxes[-1] if boxes else None


# --------------------------------------------------------------------------- the layout

# The layout, written once: a reasoning block then an answer block, each tag on its own line.
# The checks below differ only in what a block may hold and how the reply may end.
_OPEN, _MIDDLE, _CLOSE = "<reasoning>\n", "\n</reasoning>\n<answer>\n", "\n</answer>"
# No tag inside a block: with DOTALL, a bare ".*?" could swallow a second block whole.
_NO_TAG = r"(?:(?!</?reasoning>|</?answer>).)*?"


def _layout(content: str, end: str, flags: int = 0, start: str = "") -> re.Pattern[str]:
    """The layout as a regex: each block holds ``content``, the reply ends with ``end``."""
    tag = [t.replace("\n", r"\n") for t in (_OPEN, _MIDDLE, _CLOSE)]  # no other metacharacter
    return re.compile(f"{start}{tag[0]}{content}{tag[1]}{content}{tag[2]}{end}", flags)


_STRICT = _layout(_NO_TAG, r"\s*", re.DOTALL)
_STRICT_PAPER = _layout(".*?", r"\n$", start="^")  # the reference's: no DOTALL
_WELL_FORMED = _layout(".+?", r"\n?", re.DOTALL)
_SOFT = re.compile(r"\s*<reasoning>.*?</reasoning>\s*<answer>.*?</answer>", re.DOTALL)
_SOFT_PAPER = re.compile(r"<reasoning>.*?</reasoning>\s*<answer>.*?</answer>")  # no DOTALL


def format_reply(reasoning: str, answer: str) -> str:
    """A reply in the answer format, ending with a newline::

        <reasoning>\\nREASONING\\n</reasoning>\\n<answer>\\nANSWER\\n</answer>\\n

    One-line ``reasoning`` and ``answer`` give a reply that passes :func:`format_ok` and
    :func:`paper_strict_ok` and earns the full xmlcount and strict scores (fixed and
    ``paper``) and the fixed soft score (the reference's soft regex, without DOTALL, never
    matches tags on their own lines). The texts are put in as given, never escaped.
    """
    return f"{_OPEN}{reasoning}{_MIDDLE}{answer}{_CLOSE}\n"


def format_ok(text: str, final: bool = False) -> bool:
    """Whether ``text`` is the layout of :func:`format_reply` (blocks of one line or more,
    non-empty; at most one newline after ``</answer>``).

    ``final=True`` also requires a box (:func:`parse_boxed`) inside the final ``<answer>``.
    """
    if not _WELL_FORMED.fullmatch(text):
        return False
    if not final:
        return True
    answer = parse_answer(text)
    return answer is not None and parse_boxed(answer) is not None


def paper_strict_ok(text: str) -> bool:
    """The reference's strict format check (no DOTALL: one-line contents, final newline)."""
    return _STRICT_PAPER.match(text) is not None


# --------------------------------------------------------------------------- format scores


def xmlcount_score_paper(text: str) -> float:
    """The reference's ``count_xml`` exactly, in [-len(text)/1000, 0.5].

    Its quirk: a response ending right after ``\\n</answer>`` (no newline) has no
    ``\\n</answer>\\n``, so the whole text counts as "trailing" and is penalised by length.
    """
    count = 0.0
    if text.count("<reasoning>\n") == 1:
        count += 0.125
    if text.count("\n</reasoning>\n") == 1:
        count += 0.125
    if text.count("\n<answer>\n") == 1:
        count += 0.125
        count -= len(text.split("\n</answer>\n")[-1]) * 0.001
    if text.count("\n</answer>") == 1:
        count += 0.125
        count -= (len(text.split("\n</answer>")[-1]) - 1) * 0.001
    return count


def xmlcount_score(text: str) -> float:
    """Fixed ``count_xml`` (max 0.5): 0.125 per layout tag present exactly once, minus 0.001
    per non-blank character after the last ``</answer>``.

    Same tags as the reference (with their newlines), but whitespace at the end is free, so
    a response that stops right after ``</answer>`` scores the full 0.5.
    """
    count = 0.0
    for tag in ("<reasoning>\n", "\n</reasoning>\n", "\n<answer>\n", "\n</answer>"):
        if text.count(tag) == 1:
            count += 0.125
    if "</answer>" in text:
        count -= len(text.rsplit("</answer>", 1)[1].strip()) * 0.001
    return count


def soft_format_score_paper(text: str) -> float:
    """0.5 if the reference's soft regex matches (no DOTALL: one-line blocks only), else 0."""
    return 0.5 if _SOFT_PAPER.match(text) else 0.0


def soft_format_score(text: str) -> float:
    """0.5 for ``<reasoning>...</reasoning>`` then ``<answer>...</answer>``, blocks of any
    number of lines, leading whitespace allowed (trailing text allowed, as in the reference);
    else 0."""
    return 0.5 if _SOFT.match(text) else 0.0


def strict_format_score_paper(text: str) -> float:
    """0.5 if the reference's strict regex matches (:func:`paper_strict_ok`), else 0."""
    return 0.5 if paper_strict_ok(text) else 0.0


def strict_format_score(text: str) -> float:
    """0.5 for exactly one reasoning block then one answer block, laid out on their own
    lines; the blocks may span lines and the response may end right after ``</answer>``;
    else 0."""
    return 0.5 if _STRICT.fullmatch(text) else 0.0
