"""What ``motif train`` and ``motif sft`` show while they run: the steps, not raw dicts.

transformers' own ``ProgressCallback`` draws a bar and prints every log as a Python dict
(``{'loss': -4.4e-08, 'grad_norm': 0.25, ...}``); :func:`console_callback` replaces it with a
:class:`motif.progress.Progress` of the optimiser steps (a bar on a terminal, a plain line
every few seconds otherwise) whose status holds the few numbers a user watches
(:data:`SHOWN`). Every logged number still goes to ``metrics.jsonl`` and TensorBoard; the raw
dicts are printed too under ``MOTIF_DEBUG``/``MOTIF_VERBOSE``.
"""

from __future__ import annotations

import math
import sys
from typing import Any

from motif.progress import Progress, verbose

SHOWN = (
    ("loss", "loss", "{:.4f}"),
    ("reward", "reward", "{:.3f}"),
    ("future_accuracy", "future acc", "{:.1%}"),
    ("rewards/accuracy_reward/mean", "accuracy", "{:.3f}"),
    ("heldout/accuracy", "held-out acc", "{:.1%}"),
    ("mean_token_accuracy", "token acc", "{:.1%}"),
    ("step_seconds", "s/step", "{:.1f}"),
)
"""(logged key, shown name, format) of the numbers in the status, in this order."""


def status_text(logs: dict[str, Any]) -> str:
    """The status of one log: the :data:`SHOWN` numbers present and finite, e.g.
    ``loss 0.0123, reward 1.608, future acc 7.8%``."""
    parts = []
    for key, name, fmt in SHOWN:
        value = logs.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            parts.append(f"{name} {fmt.format(value)}")
    return ", ".join(parts)


def console_callback(label: str) -> Any:
    """A ``TrainerCallback`` showing the steps under ``label`` (``"motif train"``)."""
    from transformers import TrainerCallback

    class ConsoleCallback(TrainerCallback):
        def __init__(self) -> None:
            self.progress: Progress | None = None

        def on_train_begin(self, args, state, control, **kwargs):
            total = state.max_steps or None
            self.progress = Progress(label, total, "step", done=state.global_step)

        def on_step_end(self, args, state, control, **kwargs):
            if self.progress is not None:
                self.progress.advance(max(0, state.global_step - self.progress.done))

        def on_log(self, args, state, control, logs=None, **kwargs):
            logs = logs or {}
            status = status_text(logs)
            if self.progress is not None and status:
                self.progress.note(status)
            if verbose():
                print(f"step {state.global_step}: {logs}", file=sys.stderr, flush=True)

        def on_train_end(self, args, state, control, **kwargs):
            self.close()

        def close(self, quiet: bool = False) -> None:
            """End the display (``quiet``: training failed; no last count under its error)."""
            if self.progress is not None:
                self.progress.close(quiet=quiet)
                self.progress = None

    return ConsoleCallback()


def use_console(trainer: Any, label: str) -> Any:
    """Swap transformers' progress bar and dict printer on ``trainer`` for ours; returns it,
    for :func:`train_with_console`."""
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    for kind in (ProgressCallback, PrinterCallback):
        trainer.remove_callback(kind)
    callback = console_callback(label)
    trainer.add_callback(callback)
    return callback


def train_with_console(trainer: Any, **kwargs: Any) -> Any:
    """``trainer.train(**kwargs)``; when it raises, the step display ends first and quietly,
    so the error is not written into a progress bar (transformers calls no callback then)."""
    callbacks = trainer.callback_handler.callbacks
    consoles = [c for c in callbacks if type(c).__name__ == "ConsoleCallback"]
    try:
        return trainer.train(**kwargs)
    except BaseException:
        for console in consoles:
            console.close(quiet=True)
        raise
