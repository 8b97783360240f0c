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
