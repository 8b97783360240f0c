"""Time bounds that hold whatever the bounded code does (motif._timebound)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from conftest import TESTS
from motif._timebound import CallTimeout, WorkerProcess, with_time_limit

SRC = TESTS.parent / "src"
CLOCKS = ("wall", "cpu")
SIGNALS = {
    "wall": (signal.SIGALRM, signal.ITIMER_REAL),
    "cpu": (signal.SIGPROF, signal.ITIMER_PROF),
}


def _spin() -> None:
    while True:
        pass


@pytest.mark.parametrize("clock", CLOCKS)
def test_a_quick_call_returns_and_leaves_no_timer(clock: str) -> None:
    signum, which = SIGNALS[clock]
    before = signal.getsignal(signum)
    assert with_time_limit(lambda: 7, 5.0, clock=clock) == 7
    assert signal.getsignal(signum) is before
    assert signal.getitimer(which) == (0.0, 0.0)


@pytest.mark.parametrize("clock", CLOCKS)
def test_a_spinning_call_times_out_and_restores_state(clock: str) -> None:
    signum, which = SIGNALS[clock]
    before = signal.getsignal(signum)
    with pytest.raises(CallTimeout):
        with_time_limit(_spin, 0.2, clock=clock)
    assert signal.getsignal(signum) is before
    assert signal.getitimer(which) == (0.0, 0.0)


def test_a_swallowed_timeout_is_raised_again_and_a_late_result_refused() -> None:
    caught = []

    def swallow_twice_then_return() -> int:
        while len(caught) < 2:
            try:
                _spin()
            except CallTimeout:
                caught.append(1)
        return 42  # computed after the time ran out: not a result

    with pytest.raises(CallTimeout, match="returned after"):
        with_time_limit(swallow_twice_then_return, 0.2, clock="cpu")
    assert len(caught) == 2


def test_another_error_after_the_timeout_is_a_timeout() -> None:
    def wrap_it() -> None:
        try:
            _spin()
        except CallTimeout as exc:
            raise ValueError("wrapped by the library") from exc

    with pytest.raises(CallTimeout, match="ValueError"):
        with_time_limit(wrap_it, 0.2)


def test_an_error_before_the_deadline_is_the_callers() -> None:
    with pytest.raises(KeyError):
        with_time_limit(lambda: {}["missing"], 5.0)


def test_someone_elses_pending_timer_gets_the_rest_back() -> None:
    handler = signal.getsignal(signal.SIGALRM)
    signal.setitimer(signal.ITIMER_REAL, 30.0)
    try:
        with pytest.raises(CallTimeout):
            with_time_limit(_spin, 0.2)
        assert signal.getsignal(signal.SIGALRM) is handler
        remaining, _ = signal.getitimer(signal.ITIMER_REAL)
        assert 25.0 < remaining <= 30.0
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)


def test_bad_arguments_fail_loud() -> None:
    with pytest.raises(ValueError, match="positive"):
        with_time_limit(lambda: 1, 0)
    box: dict = {}

    def off_main() -> None:
        try:
            with_time_limit(lambda: 1, 1.0)
        except ValueError as exc:
            box["error"] = exc

    thread = threading.Thread(target=off_main)
    thread.start()
    thread.join(timeout=30)
    assert "error" in box  # signal only works on the main thread


GC_DROP = textwrap.dedent(
    """
    import gc, time
    from motif._timebound import CallTimeout, with_time_limit

    SECONDS = 0.3
    start = time.monotonic()
    calls = []

    def slow_callback(phase, info):  # like hypothesis's: the first tick lands in here
        if not calls:
            calls.append(phase)
            while time.monotonic() < start + SECONDS + 0.03:
                pass

    gc.callbacks.append(slow_callback)

    def work():
        gc.collect()
        while True:
            pass

    try:
        with_time_limit(work, SECONDS)
    except CallTimeout:
        print("timeout")
    """
)


def test_a_timeout_dropped_inside_a_gc_callback_fires_again() -> None:
    # The first CallTimeout is raised inside a gc callback, where Python drops it
    # ("Exception ignored in ..."); a one-shot timer would then never fire again (a hang).
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    done = subprocess.run(
        [sys.executable, "-c", GC_DROP], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "Exception ignored" in done.stderr  # the first timeout was indeed dropped
    assert done.stdout.split() == ["timeout"]


def _worker(handler: str, monkeypatch: pytest.MonkeyPatch) -> WorkerProcess:
    path = os.pathsep.join(filter(None, (str(TESTS), os.environ.get("PYTHONPATH"))))
    monkeypatch.setenv("PYTHONPATH", path)
    return WorkerProcess(f"timebound_handlers:{handler}", grace_s=1.0, startup_s=60)


def test_a_hang_in_c_code_is_killed_by_the_worker_bound(monkeypatch) -> None:
    worker = _worker("c_loop", monkeypatch)
    try:
        worker._ensure_started()  # the child's start is not part of the call's bound
        start = time.monotonic()
        assert worker.call({"seconds": 0.2}, 0.5) is None  # no signal reaches sum()'s C loop
        waited = time.monotonic() - start
        assert worker._proc is None  # killed
        # The bound the caller was promised (timeout + grace), with room for a busy machine.
        assert waited < 0.5 + 1.0 + 10.0
    finally:
        worker.close()


def test_python_code_that_swallows_timeouts_still_ends_in_the_worker(monkeypatch) -> None:
    worker = _worker("swallowing", monkeypatch)
    try:
        assert worker.call({"seconds": 0.2}, 60.0) == {"timeout": True}
        assert worker._proc is not None  # ended by its own timer: the worker lives on
    finally:
        worker.close()


def test_an_interrupted_call_never_hands_its_reply_to_the_next(monkeypatch):
    # Ctrl-C between a request and its reply: the late reply must not answer the next request.
    worker = _worker("slow_echo", monkeypatch)

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGALRM, interrupt)
    try:
        worker._ensure_started()
        signal.setitimer(signal.ITIMER_REAL, 0.3)
        with pytest.raises(KeyboardInterrupt):
            worker.call({"seconds": 1.0, "id": 1}, 30.0)
        assert worker.call({"seconds": 0.0, "id": 2}, 30.0) == {"seconds": 0.0, "id": 2}
        assert worker.call({"seconds": 0.0, "id": 3}, 30.0) == {"seconds": 0.0, "id": 3}
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
        worker.close()


def test_a_worker_that_cannot_start_is_a_one_line_user_error(monkeypatch):
    from motif._timebound import WorkerStartError
    from motif.errors import MotifError

    worker = WorkerProcess("no_such_module_anywhere:serve", startup_s=60)
    try:
        with pytest.raises(WorkerStartError, match="did not start") as error:
            worker.call({}, 5.0)
        assert isinstance(error.value, MotifError) and "\n" not in str(error.value)
    finally:
        worker.close()


def test_a_pending_cpu_timer_gets_back_its_cpu_time():
    handler = signal.getsignal(signal.SIGPROF)
    signal.signal(signal.SIGPROF, lambda *_: None)
    signal.setitimer(signal.ITIMER_PROF, 30.0)
    try:
        with pytest.raises(CallTimeout):
            with_time_limit(_spin, 0.2, clock="cpu")
        remaining, _ = signal.getitimer(signal.ITIMER_PROF)
        assert 29.0 < remaining <= 29.9  # ~0.2 CPU s were spent, whatever the wall-clock
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.signal(signal.SIGPROF, handler)
