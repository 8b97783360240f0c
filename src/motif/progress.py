"""Progress of long jobs (rounds, problems, training steps) on stderr, and what is internal.

On a terminal a :mod:`tqdm` bar; otherwise (a log file, CI, a pipe) one plain line every
:data:`LINE_EVERY_S` seconds and one at the end, so a log shows the job moving without a
carriage-return smear. A background thread keeps both alive while one unit takes long (a
model loading, a round generating on a busy machine): the bar's clock ticks, and a line is
written every :data:`LINE_EVERY_S` seconds even when nothing was counted. Nothing goes to stdout, which belongs to the command's results
(``--json``). ``MOTIF_PROGRESS=0`` turns progress off; ``MOTIF_PROGRESS=1`` forces the plain
lines (a terminal too). Internal diagnostics (the decode plan, raw trainer dicts) are shown
only with :func:`verbose`: ``MOTIF_DEBUG`` or ``MOTIF_VERBOSE`` set to anything but 0.

No heavy imports: ``tqdm`` is imported when a bar is first drawn.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import Any, TextIO

from motif.textio import plural

LINE_EVERY_S = 10.0
"""Seconds between two plain progress lines when stderr is not a terminal."""


def _on(name: str) -> bool:
    return os.environ.get(name, "0") not in ("", "0")


def debug() -> bool:
    """Whether tracebacks should be shown (``MOTIF_DEBUG`` set to anything but 0)."""
    return _on("MOTIF_DEBUG")


def verbose() -> bool:
    """Whether internal diagnostics should be shown (``MOTIF_DEBUG`` or ``MOTIF_VERBOSE``)."""
    return debug() or _on("MOTIF_VERBOSE")


def _mode(stream: TextIO) -> str:
    """``off``, ``bar`` or ``lines``, from ``MOTIF_PROGRESS`` and whether ``stream`` is a tty."""
    setting = os.environ.get("MOTIF_PROGRESS", "")
    if setting == "0":
        return "off"
    if setting == "1":
        return "lines"
    isatty = getattr(stream, "isatty", None)
    if isatty is None or not isatty():
        return "lines"
    try:  # a terminal 0 columns wide (some CI ptys) would show an empty bar
        return "bar" if os.get_terminal_size(stream.fileno()).columns > 0 else "lines"
    except (AttributeError, OSError, ValueError):
        return "bar"


class Progress:
    """A count of ``total`` units of work (``unit``: "round", "problem", "step") under a label.

    Use as a context manager, or call :meth:`close`. :meth:`advance` adds done units and may
    set a short status (``"loss 0.12"``); :meth:`restart` begins a new phase (round 2 of 3)
    on the same line or bar.

    Args:
        label: what is counted, e.g. ``"motif eval"``.
        total: units in all (None: unknown).
        unit: the unit's name, singular.
        stream: where to write (default stderr).
        every_s: seconds between plain lines (default :data:`LINE_EVERY_S`).
    """

    def __init__(
        self,
        label: str,
        total: int | None,
        unit: str,
        stream: TextIO | None = None,
        every_s: float = LINE_EVERY_S,
        done: int = 0,
    ) -> None:
        self.label, self.total, self.unit = label, total, unit
        self.stream = stream if stream is not None else sys.stderr
        self.every_s = every_s
        self.done, self.status = done, ""
        self.mode = _mode(self.stream)
        self._started = self._last_line = time.monotonic()
        self._bar: Any = None
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._stderr: Any = None
        if self.mode == "bar":
            from tqdm.auto import tqdm

            self._bar = tqdm(
                total=total, initial=done, desc=label, unit=unit, file=self.stream, leave=True
            )
            if self.stream is sys.stderr:  # notes and warnings go above the bar, not into it
                self._stderr, sys.stderr = sys.stderr, _AboveBar(self._bar, sys.stderr)
        if self.mode != "off":
            threading.Thread(target=self._tick, name="motif-progress", daemon=True).start()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, kind: object, *exc: object) -> None:
        self.close(quiet=kind is not None)  # an error: its one line alone, no last count

    def advance(self, count: int = 1, status: str | None = None) -> None:
        """Add ``count`` done units; ``status`` replaces the short text after the count."""
        with self._lock:
            self.done += count
            if status is not None:
                self.status = status
            if self._bar is not None:
                if status is not None:
                    self._bar.set_postfix_str(status, refresh=False)
                self._bar.update(count)
            elif self.mode == "lines" and time.monotonic() - self._last_line >= self.every_s:
                self._line()

    def note(self, status: str) -> None:
        """Replace the short status (``"round 2/3"``) without counting a unit."""
        with self._lock:
            self.status = status
            if self._bar is not None:
                self._bar.set_postfix_str(status, refresh=True)
            elif self.mode == "lines" and time.monotonic() - self._last_line >= self.every_s:
                self._line()

    def restart(self, label: str, total: int | None) -> None:
        """Start counting a new phase from 0 (e.g. the next round) under ``label``."""
        self.label, self.total, self.done = label, total, 0
        if self._bar is not None:
            self._bar.reset(total=total)
            self._bar.set_description_str(label, refresh=True)

    def close(self, quiet: bool = False) -> None:
        """Finish: close the bar, or write the last plain line (not with ``quiet``: the job
        failed, and its error is what the user must see)."""
        self._stop.set()
        with self._lock:
            if self._stderr is not None:
                proxy, sys.stderr, self._stderr = sys.stderr, self._stderr, None
                if getattr(proxy, "_pending", ""):
                    sys.stderr.write(proxy._pending)
            if self._bar is not None:
                if quiet:
                    self._bar.leave = False
                self._bar.close()
                self._bar = None
            elif self.mode == "lines" and not quiet:
                self._line()
            self.mode = "off"

    def _tick(self) -> None:
        """Background: refresh the bar each second, or write a due plain line."""
        wait = 1.0 if self.mode == "bar" else max(0.05, self.every_s / 4)
        while not self._stop.wait(wait):
            with self._lock:
                if self._bar is not None:
                    self._bar.refresh()
                elif self.mode == "lines" and time.monotonic() - self._last_line >= self.every_s:
                    self._line()

    def line_text(self) -> str:
        """The plain line: ``motif eval: 12/50 problems, 41 s (loss 0.1)``."""

        units = plural(self.total if self.total is not None else self.done, self.unit)
        count = f"{self.done}/{units}" if self.total is not None else units
        seconds = time.monotonic() - self._started
        status = f" ({self.status})" if self.status else ""
        return f"{self.label}: {count}, {seconds:.0f} s{status}"

    def _line(self) -> None:
        print(self.line_text(), file=self.stream, flush=True)
        self._last_line = time.monotonic()


class _AboveBar:
    """``sys.stderr`` while a bar is drawn: each whole line written goes above the bar
    (``tqdm.write``), so a note or a warning does not run into it."""

    def __init__(self, bar: Any, stream: TextIO) -> None:
        self._bar, self._stream, self._pending = bar, stream, ""

    def write(self, text: str) -> int:
        *lines, self._pending = (self._pending + text).split("\n")
        for line in lines:
            self._bar.write(line, file=self._stream)
        return len(text)

    def flush(self) -> None:
        self._stream.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)
