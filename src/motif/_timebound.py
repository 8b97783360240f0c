"""Bounded-time calls on any thread (used by :mod:`motif.grading`).

* Main thread: :func:`with_time_limit`, a one-shot ``ITIMER_REAL`` timer that raises
  :class:`CallTimeout` inside the running Python code.
* Any other thread: signals cannot be used there, and a thread cannot be killed, so the call
  goes to a :class:`WorkerProcess`: a plain ``python -c`` child (it never re-runs the
  caller's ``__main__``, unlike multiprocessing's spawn) that serves JSON requests one line
  at a time on its own main thread, where it can use the timer. The parent waits for the
  reply with ``select`` and kills the child when even the grace period runs out (a hang
  inside C code), starting a fresh one on the next call.
"""

from __future__ import annotations

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
from typing import Any, TypeVar

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


class WorkerDied(RuntimeError):
    """The worker process exited, broke its pipe or garbled a reply while serving a request."""


class WorkerError(RuntimeError):
    """The handler raised inside the worker process (a bug: re-raised in the caller)."""


def on_main_thread() -> bool:
    """Whether signals (and so :func:`with_time_limit`) can be used here."""
    return threading.current_thread() is threading.main_thread()


def with_time_limit(fn: Callable[[], T], seconds: float) -> T:
    """Run ``fn`` on the main thread; raise :class:`CallTimeout` after ``seconds``.

    The timer is one-shot and the handler restore sits in an outer ``finally``: a signal
    landing between ``fn`` returning and the disarm raises at most once and never leaves
    our handler installed. A timer someone else had pending gets back what is left of it.
    """

    def _raise(signum: int, frame: object) -> None:
        raise CallTimeout(f"call took longer than {seconds} s")

    old_handler = signal.signal(signal.SIGALRM, _raise)
    old_delay, old_interval, started = 0.0, 0.0, time.monotonic()
    try:
        old_delay, old_interval = signal.setitimer(signal.ITIMER_REAL, seconds)
        try:
            return fn()
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
    finally:
        # None: the old handler was not set from Python; the default is the best we can do.
        signal.signal(signal.SIGALRM, signal.SIG_DFL if old_handler is None else old_handler)
        if old_delay > 0:
            left = max(old_delay - (time.monotonic() - started), 1e-3)
            signal.setitimer(signal.ITIMER_REAL, left, old_interval)


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
            RuntimeError: the child could not start at all.
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
            if reply is None:
                logger.warning("worker gave no reply in %.1f s; killed it", timeout_s)
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
            raise RuntimeError(f"the worker process for {self.handler} failed to start")

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
