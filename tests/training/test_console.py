"""Training shows its steps and a few numbers, not transformers' raw dicts (motif.training.console)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from motif.training.console import console_callback, status_text


def test_status_shows_the_watched_numbers_and_skips_non_finite():
    logs = {"loss": 0.01234, "reward": 1.6083, "future_accuracy": 0.078125, "grad_norm": 0.25}
    assert status_text(logs) == "loss 0.0123, reward 1.608, future acc 7.8%"
    assert status_text({"loss": float("nan"), "reward": float("inf")}) == ""
    assert status_text({"mean_token_accuracy": 0.5, "step_seconds": 12.34}) == (
        "token acc 50.0%, s/step 12.3"
    )


def test_the_callback_counts_steps_and_prints_no_dict(monkeypatch, capsys):
    monkeypatch.setenv("MOTIF_PROGRESS", "1")
    for name in ("MOTIF_DEBUG", "MOTIF_VERBOSE"):
        monkeypatch.delenv(name, raising=False)
    callback = console_callback("motif train")
    state = SimpleNamespace(max_steps=3, global_step=1, log_history=[])  # resumed at step 1
    callback.on_train_begin(None, state, None)
    for step in (2, 3):
        state.global_step = step
        callback.on_step_end(None, state, None)
        callback.on_log(None, state, None, logs={"loss": 0.5, "grad_norm": 1.0})
    callback.on_train_end(None, state, None)
    captured = capsys.readouterr()
    assert captured.out == ""
    last = captured.err.splitlines()[-1]
    assert last.startswith("motif train: 3/3 steps, ") and last.endswith("(loss 0.5000)")
    assert "grad_norm" not in captured.err
    monkeypatch.setenv("MOTIF_DEBUG", "1")
    callback.on_log(None, state, None, logs={"loss": 0.5, "grad_norm": 1.0})
    assert "'grad_norm': 1.0" in capsys.readouterr().err


def test_status_reaches_a_terminal_bar_and_an_error_ends_it_quietly(monkeypatch):
    import io

    from motif.training.console import train_with_console

    class Tty(io.StringIO):
        def isatty(self):
            return True

        def fileno(self):
            raise io.UnsupportedOperation  # no real terminal: assume a width

    tty = Tty()
    monkeypatch.delenv("MOTIF_PROGRESS", raising=False)
    monkeypatch.setattr("sys.stderr", tty)
    callback = console_callback("motif train")
    state = SimpleNamespace(max_steps=2, global_step=0, log_history=[])

    class Trainer:
        callback_handler = SimpleNamespace(callbacks=[callback])

        def train(self):
            callback.on_train_begin(None, state, None)
            state.global_step = 1
            callback.on_step_end(None, state, None)
            callback.on_log(None, state, None, logs={"loss": 0.25})
            raise RuntimeError("out of memory")

    with pytest.raises(RuntimeError, match="out of memory"):  # the error itself goes on
        train_with_console(Trainer())
    shown = tty.getvalue()
    assert "loss 0.2500" in shown and "1/2" in shown
    assert callback.progress is None  # ended before the error reaches the terminal


def test_notes_written_while_a_bar_is_up_go_above_it(monkeypatch):
    import io
    import sys

    from motif.progress import Progress

    class Tty(io.StringIO):
        def isatty(self):
            return True

        def fileno(self):
            raise io.UnsupportedOperation

    tty = Tty()
    monkeypatch.delenv("MOTIF_PROGRESS", raising=False)
    monkeypatch.setattr("sys.stderr", tty)
    with Progress("motif infer", 3, "round") as bar:
        print("note: --tail-chunk 64: not used", file=sys.stderr)
        bar.advance()
    assert sys.stderr is tty  # given back
    lines = tty.getvalue().replace("\r", "\n").splitlines()
    assert "note: --tail-chunk 64: not used" in lines  # a line of its own
