"""Reading the user's text files one way everywhere (questions, JSONL/JSON data, YAML configs).

* UTF-8, with a leading byte-order mark removed (editors on Windows write one);
* lines split on ``\\n`` only (``\\r\\n`` ends a line too): ``str.splitlines`` also breaks on
  U+2028, U+0085, form feeds and other separators that belong inside a question;
* a byte that is not UTF-8 is a :class:`MotifError` naming the file, the line and the column.
"""

from __future__ import annotations

import codecs
from collections.abc import Iterator
from pathlib import Path

from motif.errors import MotifError


def decode_line(raw: bytes, path: str | Path, number: int) -> str:
    """One line's bytes as text; a bad byte names ``path``, ``number`` and the column."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        bad = raw[exc.start : exc.start + 1].hex()
        raise MotifError(
            f"{path} line {number} is not UTF-8 (byte 0x{bad} at column {exc.start + 1}); "
            "save the file as UTF-8"
        ) from exc


def iter_lines(path: str | Path) -> Iterator[tuple[int, str]]:
    """(line number from 1, text without its line ending) of a UTF-8 text file."""
    data = Path(path).read_bytes()
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()  # the file ends with a newline
    for number, raw in enumerate(lines, start=1):
        yield number, decode_line(raw.removesuffix(b"\r"), path, number)


def read_text(path: str | Path) -> str:
    """The whole file as text (BOM removed, ``\\r\\n`` as ``\\n``; bad bytes reported by line)."""
    return "\n".join(text for _, text in iter_lines(path))


def plural(count: int, word: str, words: str | None = None) -> str:
    """``count`` with the noun in the number it takes: ``1 problem``, ``2 problems``.

    ``words`` is the plural where it is not ``word + "s"`` (``plural(2, "entry", "entries")``).
    """
    return f"{count} {word if count == 1 else (words or word + 's')}"


def clip(text: str, graphemes: int, marker: str = "…") -> str:
    """The first ``graphemes`` user-perceived characters of ``text`` (extended grapheme
    clusters, Unicode UAX #29: an emoji with its modifiers, a letter with its combining marks,
    a flag), then ``marker`` when there is more; never half a character in any encoding."""
    import regex

    head = regex.match(rf"\X{{0,{graphemes}}}", text).group()  # regex caches the pattern
    return head if len(head) == len(text) else head + marker


def clip_middle(text: str, graphemes: int, marker: str = "...") -> str:
    """``text`` when it has at most ``2 * graphemes`` characters; else its first and last
    ``graphemes`` characters (grapheme clusters, as :func:`clip`) around ``marker``."""
    import regex

    clusters = regex.findall(r"\X", text)
    if len(clusters) <= 2 * graphemes:
        return text
    return "".join(clusters[:graphemes]) + marker + "".join(clusters[-graphemes:])
