"""The viewer page: the runs' rows as compact JSON inside one self-contained HTML file.

The page is rendered by Jinja2 with autoescaping on. The data travels in a
``<script type="application/json">`` block: ``json.dumps`` output with ``<``, ``>``, ``&``,
U+2028, U+2029 and lone surrogates written as ``\\uXXXX`` escapes, so no row text can close
the block or be read as markup, and the file is valid UTF-8; the page's script
(``templates/view.js``, no dependencies) parses it and puts every row text into the page with
``textContent``, never as HTML.

No text position crosses from Python to the script: Python strings count code points,
JavaScript strings UTF-16 units (an emoji is one and two), so an offset computed here would
land elsewhere there. Python splits each text into the pieces the page shows (the round's
output around the state it hands over; the question's list excerpt, cut at a grapheme
boundary) and the script only joins them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path

from motif.carryover import SUMMARY_RULES, CarryOver
from motif.errors import ConfigError
from motif.handover import FLAG_TITLES, FLAGS, HandOver, row_states, run_strategy, watch_row
from motif.prompts import user_message
from motif.textio import clip
from motif.view.load import ViewRun, load_view_run

# json.dumps output -> text that is inert inside <script> (and valid JSON: the same string);
# a lone surrogate (a code point no UTF-8 file can hold) becomes the JSON escape of that
# UTF-16 unit, which JSON.parse turns back into the same JavaScript string.
_JSON_ESCAPED = re.compile("[<>&\u2028\u2029\ud800-\udfff]")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
MAX_SKIPPED_LISTED = 20
EXCERPT_GRAPHEMES = 110
_SENTINEL = "\x00motif-state\x00"
FLAG_CODES = {"smuggled": "sm", "degenerate": "dg", "copied": "cp", "boxed": "bx"}
"""The hand-over watch's flags (:data:`motif.handover.FLAGS`) as the page's data names them."""


def check_comparable(runs: Sequence[ViewRun]) -> None:
    """Two runs must be of the same benchmark and problem set; raises :class:`ConfigError`."""
    first = runs[0]
    for other in runs[1:]:
        a, b = first.config.get("data", {}), other.config.get("data", {})
        if a.get("benchmark") != b.get("benchmark") or a.get("split") != b.get("split"):
            raise ConfigError(
                f"{first.path} ({first.benchmark}) and {other.path} ({other.benchmark}) are runs "
                "of different benchmarks; compare runs of one benchmark"
            )
        if a.get("fingerprint") and b.get("fingerprint") and a["fingerprint"] != b["fingerprint"]:
            raise ConfigError(
                f"{first.path} and {other.path} ran different problem sets of {first.benchmark} "
                "(data.fingerprint differs); compare runs of one problem set"
            )


def _labels(runs: Sequence[ViewRun]) -> list[str]:
    labels = [run.label for run in runs]
    if len(set(labels)) < len(labels):
        labels = [f"{run.label} [{run.path.name}]" for run in runs]
    if len(set(labels)) < len(labels):
        labels = [f"{label} ({'AB'[i]})" for i, label in enumerate(labels)]
    return labels


def build_data(runs: Sequence[ViewRun], title: str | None = None) -> dict:
    """The page's data: ``runs`` (label, counts, skipped lines) and ``problems``.

    A problem is ``{id, q, qs, gold, s: [samples per run or null], f: [flags per run or
    null]}`` with ``qs`` the question's list line (:func:`excerpt`); a sample ``{s, v, a, stop,
    r: [rounds]}`` with ``v`` = correct (true / false / null = ungraded); a round ``{o, a, v,
    pt, ct, cut, hs, pre, post}``: the output as pieces (:func:`output_pieces`: the whole text,
    or the text before the state it hands over, that state, the text after), answer, grade,
    prompt and completion tokens, cut by the budget, the state it hands over (``hs``), and for
    rounds after the first the prompt around the previous round's state (``pre``/``post``; the
    question precedes ``pre``). No value is a position in a text (see the module docstring).
    The hand-over watch (:mod:`motif.handover`), for runs whose strategy hands a state on (run
    ``handover`` true): a round that handed its state on has ``hw``, the codes of its raised
    flags (:data:`FLAG_CODES`), and ``hd``, why its state is degenerate (or null); a problem's
    flags ``f`` have ``ho``: per code, the rounds where some sample raised it. ``flags`` lists
    ``[code, title]`` of each flag.
    Raises :class:`ConfigError` for runs that cannot be compared (:func:`check_comparable`).
    """
    check_comparable(runs)
    problems: dict[str, dict] = {}
    for index, run in enumerate(runs):
        carry = _strategy(run)
        for row in run.rows:
            key, question = str(row["id"]), str(row.get("question") or "")
            entry = problems.setdefault(
                key,
                {
                    "id": key,
                    "q": question,
                    "qs": excerpt(question),
                    "gold": _text(row.get("gold")),
                    "s": [None] * len(runs),
                    "f": [None] * len(runs),
                },
            )
            entry["s"][index] = (entry["s"][index] or []) + [_sample(row, run, carry)]
    for entry in problems.values():
        for index, samples in enumerate(entry["s"]):
            if samples:
                samples.sort(key=lambda s: (str(type(s["s"])), s["s"]))
                entry["f"][index] = _flags(samples, runs[index].carry_over.hands_state)
    return {
        "title": title or " vs ".join(_labels(runs)),
        "runs": [_run_info(run, label) for run, label in zip(runs, _labels(runs), strict=True)],
        "problems": list(problems.values()),
        "flags": [[FLAG_CODES[flag], FLAG_TITLES[flag]] for flag in FLAGS],
    }


def _strategy(run: ViewRun) -> CarryOver | None:
    """The strategy that carried the run's states (None: it hands none)."""
    if not run.carry_over.hands_state:
        return None
    rule = run.summary_rule if run.summary_rule in SUMMARY_RULES else "paper"  # as ever: lenient
    protocol = {**run.config.get("protocol", {}), "summary_rule": rule}
    return run_strategy(protocol, run.carry_over.name)


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def _run_info(run: ViewRun, label: str) -> dict:
    graded = [row["correct"] for row in run.rows]
    return {
        "label": label,
        "dir": str(run.path),
        "benchmark": run.benchmark,
        "rounds": run.rounds,
        "rows": len(run.rows),
        "correct": sum(v is True for v in graded),
        "ungraded": sum(v is None for v in graded),
        "skipped": len(run.skipped),
        "skipped_lines": [f"line {n}: {why}" for n, why in run.skipped[:MAX_SKIPPED_LISTED]],
        "handover": run.carry_over.hands_state,
    }


def _sample(row: dict, run: ViewRun, carry: CarryOver | None) -> dict:
    question = str(row.get("question") or "")
    rounds, previous = [], None
    states = row_states(row, carry) if carry is not None else []
    watched = watch_row(row, carry) or []
    for position, rec in enumerate(row["rounds"], start=1):
        if carry is None:
            rounds.append(_chunk(rec, position))
            continue
        # the last round hands nothing over: its output is shown unmarked
        out = _round(rec, states[position - 1], marked=position < len(row["rounds"]))
        if position <= len(watched):
            out.update(_watch(watched[position - 1]))
        if previous is not None:
            out["pre"], out["post"] = _prompt_around_state(question, position, run.rounds)
        rounds.append(out)
        previous = out
    return {
        "s": row["sample"],
        "v": row["correct"],
        "a": _text(row.get("answer")),
        "stop": bool(row.get("stopped_early")),
        "r": rounds,
    }


def _watch(hand: HandOver) -> dict:
    """A round's hand-over flags as the page's data holds them (``hw``, ``hd``)."""
    return {"hw": [FLAG_CODES[flag] for flag in hand.flags()], "hd": hand.degenerate}


def _round(rec: dict, state: str, marked: bool) -> dict:
    """A round as the page shows it; ``state``: what it handed on (``""``: nothing)."""
    text = rec["text"]
    return {
        "o": output_pieces(text, state) if marked else [text],
        "a": _text(rec.get("answer")),
        "v": rec.get("correct"),
        "pt": rec.get("prompt_tokens"),
        "ct": rec.get("completion_tokens"),
        "cut": bool(rec.get("truncated")),
        "hs": state,
    }


def _chunk(rec: dict, position: int) -> dict:
    """A ``tail`` chunk (or the one ``none`` pass): no summary is carried, so no state is
    marked; a later chunk says how many thought tokens (its first h and last m) it continued
    from, since the prompt is the single-round one with those tokens after it."""
    out = {**_round(rec, "", marked=False), "name": "Chunk"}
    if position > 1:
        carried = rec.get("carried_tokens")
        out["note"] = (
            "prompt: the single-round prompt, then the thought's first h and last m tokens "
            f"({carried if carried is not None else '?'} tokens carried); the answer is read "
            "from the thought so far"
        )
    return out


def output_pieces(text: str, state: str) -> list[str]:
    """``text`` as the page shows it: ``[before, state, after]`` around the carried ``state``
    (its first occurrence after the last ``<answer>``, else its last one), or ``[text]`` when
    ``state`` is empty or not in ``text``. The pieces join to ``text``; the middle one is
    marked. Splitting here, not in the page's script, keeps every position in one unit."""
    if not state:
        return [text]
    found = text.find(state, max(text.rfind("<answer>"), 0))
    start = found if found >= 0 else text.rfind(state)
    if start < 0:
        return [text]
    end = start + len(state)
    return [text[:start], text[start:end], text[end:]]


def excerpt(text: str, graphemes: int = EXCERPT_GRAPHEMES) -> str:
    """The first ``graphemes`` user-perceived characters of ``text`` (extended grapheme
    clusters, Unicode UAX #29: an emoji with its modifiers, a letter with its combining marks,
    a flag), then ``…`` when there is more; never half a character in any encoding."""

    return clip(text, graphemes)


def _prompt_around_state(question: str, position: int, rounds: int) -> tuple[str, str]:
    """Round ``position``'s user message around the carried state, question prefix removed."""

    rounds = max(rounds, position)
    pre, _, post = user_message(question, position, rounds, _SENTINEL).partition(_SENTINEL)
    return pre.removeprefix(question), post


def _flags(samples: list[dict], handover: bool = False) -> dict:
    """Per problem and run: counts of correct / wrong / ungraded samples, rounds r where some
    sample was fixed (wrong at r-1, right at r) or broken, whether any round was cut, and with
    ``handover`` (the run's strategy hands a state on) ``ho``: per hand-over flag code, the
    rounds where some sample raised it."""
    fixed, broken = set(), set()
    for sample in samples:
        grades = [r["v"] for r in sample["r"]]
        for r in range(1, len(grades)):
            if grades[r - 1] is not True and grades[r] is True:
                fixed.add(r + 1)
            if grades[r - 1] is True and grades[r] is not True:
                broken.add(r + 1)
    return {
        "n": len(samples),
        "c": sum(s["v"] is True for s in samples),
        "w": sum(s["v"] is False for s in samples),
        "u": sum(s["v"] is None for s in samples),
        "fx": sorted(fixed),
        "br": sorted(broken),
        "cut": any(r["cut"] for s in samples for r in s["r"]),
        **({"ho": _handover_rounds(samples)} if handover else {}),
    }


def _handover_rounds(samples: list[dict]) -> dict[str, list[int]]:
    """Per flag code, the rounds (1-based) where some sample's hand-over raised it."""
    found: dict[str, set[int]] = {code: set() for code in FLAG_CODES.values()}
    for sample in samples:
        for k, rd in enumerate(sample["r"], start=1):
            for code in rd.get("hw", ()):
                found[code].add(k)
    return {code: sorted(rounds) for code, rounds in found.items()}


def embed_json(data: object) -> str:
    """``json.dumps`` with ``< > &`` U+2028 U+2029 and lone surrogates as ``\\uXXXX``: safe
    inside a ``<script>`` block, encodable as UTF-8, and ``JSON.parse`` gives the same strings."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return _JSON_ESCAPED.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def render_page(data: dict) -> str:
    """The HTML page (template ``templates/view.html.j2``; autoescape on) as a string that
    encodes to UTF-8: a lone surrogate in the page's own text (a directory or ``--title``
    holding bytes that are not UTF-8) is shown as U+FFFD; the data block keeps it escaped."""
    from jinja2 import Environment, PackageLoader, StrictUndefined
    from markupsafe import Markup

    env = Environment(
        loader=PackageLoader("motif.view", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        keep_trailing_newline=True,
    )
    template = env.get_template("view.html.j2")
    # embed_json leaves no '<', '>' or '&': the block cannot be closed from inside.
    html = template.render(data=data, data_json=Markup(embed_json(data)))
    return _LONE_SURROGATE.sub("\ufffd", html)


def write_page(
    run_dirs: Sequence[str | Path], output: str | Path, title: str | None = None
) -> tuple[Path, dict]:
    """Read 1-2 eval runs and write the page to ``output`` (``.html``); returns (path, data).

    Raises :class:`ConfigError` before writing anything for a bad directory, two runs of
    different benchmarks, or an output that is not an ``.html`` file.
    """
    if not 1 <= len(run_dirs) <= 2:
        raise ConfigError(f"pass one or two eval run directories; got {len(run_dirs)}")
    out = Path(output)
    if out.suffix.lower() not in (".html", ".htm") or out.is_dir():
        raise ConfigError(f"--output {output} must be an .html file")
    data = build_data([load_view_run(d) for d in run_dirs], title)
    html = render_page(data)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(html, encoding="utf-8")
    return out, data
