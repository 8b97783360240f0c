"""Bounded-time calls (used by :mod:`motif.grading`).

* :func:`with_time_limit` (main thread only): a timer, on wall-clock or on this process's CPU
  time, that raises :class:`CallTimeout` inside the running Python code, and keeps raising it
  until the call ends, so code that swallows or drops the exception cannot outlive it.
* :class:`WorkerProcess` (any thread): a plain ``python -c`` child (it never re-runs the
  caller's ``__main__``, unlike multiprocessing's spawn) that serves JSON requests one line
  at a time on its own main thread, where it can use the timer. The parent waits for the
  reply with ``select`` and kills the child when the wall-clock limit runs out (a hang inside
  C code, which no signal interrupts), starting a fresh one on the next call. This is the
  bound that holds whatever the called code does.
"""

from __future__ import annotations

import functools
import importlib
import json
import logging
import os
import select
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, TypeVar

from motif.errors import MotifError

logger = logging.getLogger(__name__)

T = TypeVar("T")
Handler = Callable[[dict[str, Any]], dict[str, Any]]

_READY = b'{"ready": true}'
_ERROR = "__worker_error__"


class CallTimeout(BaseException):
    """The time limit of a call ran out.

    A ``BaseException`` on purpose (like math-verify's ``TimeoutException``): sympy and
    latex2sympy wrap much of their work in ``except Exception``, which must not swallow it.
    """


class WorkerStartError(MotifError):
    """The worker process could not start (its Python, its imports, or the machine's limits)."""


class WorkerDied(RuntimeError):
    """The worker process exited, broke its pipe or garbled a reply while serving a request."""


class WorkerError(RuntimeError):
    """The handler raised inside the worker process (a bug: re-raised in the caller)."""


Clock = Literal["wall", "cpu"]
_TIMERS = {
    "wall": (signal.ITIMER_REAL, signal.SIGALRM),
    "cpu": (signal.ITIMER_PROF, signal.SIGPROF),
}
RETRY_S = 0.05
"""After the deadline the timer keeps firing every this many seconds until the call ends."""


def with_time_limit(fn: Callable[[], T], seconds: float, clock: Clock = "wall") -> T:
    """Run ``fn`` on the main thread; raise :class:`CallTimeout` once ``seconds`` are spent.

    ``clock="wall"`` counts elapsed time (``ITIMER_REAL``); ``clock="cpu"`` counts this
    process's CPU time (``ITIMER_PROF``, user + system), which other processes on a busy
    machine do not inflate.

    The bound holds whatever ``fn`` does in Python: the timer keeps firing every
    :data:`RETRY_S` after the deadline, so a :class:`CallTimeout` swallowed by ``fn`` (an
    ``except BaseException``) or dropped by the interpreter (raised inside a gc callback or a
    ``__del__``, where Python only prints "Exception ignored in ...") is raised again; and if
    ``fn`` still returns after the deadline, its late result is refused with
    :class:`CallTimeout`, so a value computed after a swallowed timeout never passes as a
    verdict. It cannot interrupt one long call into C code that does not check for signals:
    :class:`WorkerProcess` kills the process for that.

    Our handler never raises in this function's own frames (before ``fn`` starts, or while
    the timer is disarmed and the old handler restored), so the disarm and restore always run.
    A timer someone else had pending on the same clock gets back what is left of it.

    Raises:
        CallTimeout: ``seconds`` ran out (during ``fn``, or ``fn`` returned late).
        ValueError: called off the main thread (``signal`` refuses), or ``seconds <= 0``.
    """
    if not seconds > 0:
        raise ValueError(f"seconds must be positive, got {seconds!r}")
    which, signum = _TIMERS[clock]
    fired = [0]
    elapsed = time.process_time if clock == "cpu" else time.monotonic
    old_handler = signal.signal(signum, functools.partial(_on_timer, fired, seconds, clock))
    old_delay, old_interval, started = 0.0, 0.0, elapsed()
    try:
        old_delay, old_interval = signal.setitimer(which, seconds, RETRY_S)
        return _guarded(fn, which, fired, seconds)
    finally:
        signal.setitimer(which, 0)
        # None: the old handler was not set from Python; the default is the best we can do.
        signal.signal(signum, signal.SIG_DFL if old_handler is None else old_handler)
        if old_delay > 0:
            left = max(old_delay - (elapsed() - started), 1e-3)
            signal.setitimer(which, left, old_interval)


def _on_timer(fired: list[int], seconds: float, clock: str, signum: int, frame: Any) -> None:
    """The timer's handler: count the tick; raise :class:`CallTimeout` unless the interrupted
    frame is the guard's own (``fn`` not started or already ended) or this handler's (a tick
    handled while an earlier one is: its raise would escape the guard's cleanup)."""
    fired[0] += 1
    if frame is not None and frame.f_code in _GUARD_CODES:
        return
    raise CallTimeout(f"call took longer than {seconds} s ({clock} clock)")


def _guarded(fn: Callable[[], T], which: int, fired: list[int], seconds: float) -> T:
    """Call ``fn`` and disarm the timer; the handler never raises in this frame.

    Once the timer has fired, whatever ``fn`` then does (returns, or raises another error
    after catching ours) is a :class:`CallTimeout`.
    """
    try:
        result = fn()
    except Exception as exc:
        if fired[0]:
            raise CallTimeout(f"call ran out of its {seconds} s, then raised {exc!r}") from exc
        raise
    finally:
        signal.setitimer(which, 0)
    if fired[0]:
        raise CallTimeout(f"call returned after its {seconds} s ran out")
    return result


_GUARD_CODES = frozenset({with_time_limit.__code__, _guarded.__code__, _on_timer.__code__})


class WorkerProcess:
    """A child process serving ``handler`` (``"module:function"``) one request at a time.

    Started lazily on the first call; calls from several threads take turns. The handler
    must bound its own time (the child runs it on its main thread); ``grace_s`` on top of
    the caller's timeout covers the pipe and hangs the handler's timer cannot interrupt.

    Args:
        handler: ``"module:function"`` taking and returning a JSON-ready dict.
        warm_up: optional ``"module:function"`` run once before the child reports ready.
        grace_s: extra seconds to wait for a reply before killing the child.
        startup_s: how long the child may take to import and warm up.
        memory_bytes: address-space cap of the child, so a runaway computation fails with
            MemoryError instead of exhausting the machine (None: no cap).
    """

    def __init__(
        self,
        handler: str,
        warm_up: str | None = None,
        grace_s: float = 2.0,
        startup_s: float = 120.0,
        memory_bytes: int | None = 4 * 2**30,
    ) -> None:
        self.handler = handler
        self.warm_up = warm_up
        self.grace_s = grace_s
        self.startup_s = startup_s
        self.memory_bytes = memory_bytes
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._buffer = b""

    def call(self, request: dict[str, Any], timeout_s: float) -> dict[str, Any] | None:
        """The handler's reply, or None when none came within ``timeout_s + grace_s``
        (the child is then killed).

        Raises:
            WorkerDied: the child exited, its pipe broke or it wrote something that is not
                a reply (it restarts on the next call).
            WorkerError: the handler raised; the message holds the child's traceback.
            WorkerStartError: the child could not start at all (a one-line user error).
        """
        with self._lock:
            self._ensure_started()
            try:
                self._send(json.dumps(request).encode("ascii") + b"\n")
                line = self._read_line(timeout_s + self.grace_s)
                reply = None if line is None else json.loads(line)
            except (OSError, EOFError, ValueError) as exc:
                self._stop()
                raise WorkerDied(f"the worker process died: {exc!r}") from exc
            except BaseException:
                # Interrupted (Ctrl-C, a signal handler's exception) between the request and
                # its reply: that reply would answer the next request. Start afresh instead.
                self._stop()
                raise
            if reply is None:
                waited = timeout_s + self.grace_s
                logger.warning("worker gave no reply in %.1f s; killed it", waited)
                self._stop()
                return None
        if _ERROR in reply:
            raise WorkerError(f"{self.handler} raised in the worker process:\n{reply[_ERROR]}")
        return reply

    def close(self) -> None:
        """Stop the child, if any."""
        with self._lock:
            self._stop()

    def forget(self) -> None:
        """In a forked child: the process and the lock belong to the parent; start afresh."""
        self._lock = threading.Lock()
        self._proc, self._buffer = None, b""

    def _ensure_started(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            return
        self._stop()
        code = f"from motif._timebound import serve; serve({self.handler!r}, {self.warm_up!r})"
        self._proc = subprocess.Popen(
            [sys.executable, "-c", code],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=self._env(),
            bufsize=0,
        )
        try:
            ready = self._read_line(self.startup_s)
        except EOFError:
            ready = None
        if ready != _READY:
            self._stop()
            raise WorkerStartError(
                f"the worker process for {self.handler} ({sys.executable} -c ...) did not start "
                f"within {self.startup_s:.0f} s; its error, if any, is above"
            )

    def _env(self) -> dict[str, str]:
        # The child must import this very package, installed or not.
        env = dict(os.environ)
        src = str(Path(__file__).resolve().parents[1])
        env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH")) if p)
        if self.memory_bytes is not None:
            env["MOTIF_WORKER_MEMORY_BYTES"] = str(self.memory_bytes)
        return env

    def _send(self, data: bytes) -> None:
        assert self._proc is not None and self._proc.stdin is not None
        self._proc.stdin.write(data)
        self._proc.stdin.flush()

    def _read_line(self, timeout_s: float) -> bytes | None:
        """One line from the child, or None when none arrives within ``timeout_s``."""
        assert self._proc is not None and self._proc.stdout is not None
        fd = self._proc.stdout.fileno()
        deadline = time.monotonic() + timeout_s
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
                return None
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                raise EOFError("the worker process exited")
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line

    def _stop(self) -> None:
        proc, self._proc, self._buffer = self._proc, None, b""
        if proc is None:
            return
        proc.kill()
        proc.wait()
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                stream.close()


def _resolve(path: str) -> Callable[..., Any]:
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


def serve(handler: str, warm_up: str | None = None) -> None:
    """The child's main loop: one JSON request per stdin line, one JSON reply per line."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's business; EOF ends us
    # Keep the reply pipe for ourselves: a stray print (even from C) would garble a reply.
    out = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    _limit_memory(os.environ.get("MOTIF_WORKER_MEMORY_BYTES"))
    logging.basicConfig(level=logging.WARNING, format="worker: %(name)s: %(message)s")
    serve_one: Handler = _resolve(handler)
    if warm_up:
        _resolve(warm_up)()
    out.write(_READY + b"\n")
    for line in sys.stdin.buffer:
        try:
            reply = serve_one(json.loads(line))
        except Exception:  # a bug in the handler: report it, the caller re-raises it
            reply = {_ERROR: traceback.format_exc()}
        out.write(json.dumps(reply).encode("ascii") + b"\n")


def _limit_memory(limit: str | None) -> None:
    if not limit:
        return
    try:
        import resource

        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        cap = int(limit) if hard == resource.RLIM_INFINITY else min(hard, int(limit))
        resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    except (ImportError, ValueError, OSError) as exc:
        logger.debug("could not cap the worker's memory: %s", exc)
