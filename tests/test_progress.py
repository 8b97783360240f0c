"""Progress on stderr: a bar on a terminal, plain lines otherwise; internals only when asked."""

from __future__ import annotations

import io

import pytest

from motif.progress import Progress, verbose
from motif.textio import plural


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_plain_lines_off_a_terminal(monkeypatch):
    monkeypatch.delenv("MOTIF_PROGRESS", raising=False)
    out = io.StringIO()
    with Progress("motif eval", 3, "problem", stream=out, every_s=0.0) as bar:
        bar.advance(1)
        bar.advance(2, status="pass@1 50.0%")
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("motif eval: 1/3 problems, ")
    assert lines[-1].startswith("motif eval: 3/3 problems, ") and lines[-1].endswith(
        "(pass@1 50.0%)"
    )
    assert "\r" not in out.getvalue()


def test_lines_are_spaced_in_time(monkeypatch):
    monkeypatch.delenv("MOTIF_PROGRESS", raising=False)
    out = io.StringIO()
    with Progress("motif infer", 100, "round", stream=out, every_s=3600.0) as bar:
        for _ in range(100):
            bar.advance()
    assert out.getvalue().splitlines() == [out.getvalue().splitlines()[-1]]  # only the last one


def test_one_unit_is_singular(monkeypatch):
    monkeypatch.delenv("MOTIF_PROGRESS", raising=False)
    bar = Progress("motif infer", 1, "round", stream=io.StringIO())
    bar.advance()
    assert bar.line_text().startswith("motif infer: 1/1 round, ")
    bar.close()
    assert (plural(1, "problem"), plural(0, "problem"), plural(2, "entry", "entries")) == (
        "1 problem",
        "0 problems",
        "2 entries",
    )


def test_a_bar_on_a_terminal_and_nothing_when_off(monkeypatch):
    monkeypatch.delenv("MOTIF_PROGRESS", raising=False)
    tty = Tty()
    with Progress("motif train", 4, "step", stream=tty) as bar:
        assert bar.mode == "bar"
        bar.advance(2, status="loss 0.1")
    assert "2/4" in tty.getvalue() and "loss 0.1" in tty.getvalue()
    monkeypatch.setenv("MOTIF_PROGRESS", "0")
    quiet = Tty()
    with Progress("motif train", 4, "step", stream=quiet) as bar:
        bar.advance(4)
    assert quiet.getvalue() == ""


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, False),
        ({"MOTIF_DEBUG": "1"}, True),
        ({"MOTIF_VERBOSE": "1"}, True),
        ({"MOTIF_DEBUG": "0"}, False),
    ],
)
def test_verbose_follows_the_environment(env, expected, monkeypatch):
    for name in ("MOTIF_DEBUG", "MOTIF_VERBOSE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert verbose() is expected


def test_a_long_unit_still_writes_lines(monkeypatch):
    import threading

    monkeypatch.delenv("MOTIF_PROGRESS", raising=False)
    out = io.StringIO()
    progress = Progress("motif infer", 3, "round", stream=out, every_s=0.2)
    progress.note("loading the model")
    seen = threading.Event()
    for _ in range(200):  # nothing is counted: the background thread writes the lines
        if out.getvalue().count("\n") >= 2:
            seen.set()
            break
        threading.Event().wait(0.05)
    progress.close()
    assert seen.is_set()
    assert out.getvalue().splitlines()[0].startswith("motif infer: 0/3 rounds, ")
    assert "(loading the model)" in out.getvalue()


def test_a_failed_job_leaves_its_error_alone(monkeypatch):
    monkeypatch.delenv("MOTIF_PROGRESS", raising=False)
    out = io.StringIO()
    with pytest.raises(RuntimeError), Progress("motif eval", 3, "problem", stream=out) as bar:
        bar.note("loading the model")
        raise RuntimeError("the model path does not exist")
    assert out.getvalue() == ""
