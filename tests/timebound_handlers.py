"""Worker handlers for tests/test_timebound.py, imported by the worker child (tests/ on its path)."""

from __future__ import annotations

from typing import Any

from motif._timebound import CallTimeout, with_time_limit


def c_loop(message: dict[str, Any]) -> dict[str, Any]:
    """A call stuck in C code that never checks for signals: only a kill ends it."""
    try:
        return {"sum": with_time_limit(lambda: sum(range(10**15)), message["seconds"])}
    except CallTimeout:
        return {"timeout": True}


def swallowing(message: dict[str, Any]) -> dict[str, Any]:
    """Python code that swallows the timeout: the repeating timer still ends it."""
    try:
        return {"value": with_time_limit(_swallow_forever, message["seconds"], clock="cpu")}
    except CallTimeout:
        return {"timeout": True}


def _swallow_forever() -> int:
    caught = 0
    while caught < 3:
        try:
            while True:
                pass
        except CallTimeout:
            caught += 1
    return caught


def slow_echo(message: dict[str, Any]) -> dict[str, Any]:
    """The request back, after ``message["seconds"]`` of sleep."""
    import time

    time.sleep(message["seconds"])
    return message
