"""The one home of every run-folder file name: what ``motif eval`` and ``motif train`` write.

An *eval folder* (``motif eval --output-dir``)::

    .motif-run          the marker: this folder was made by motif (:mod:`motif.outdir`)
    eval_config.json    the run's identity: model, adapter, protocol, sampling, data
    samples.jsonl       one JSON object per (problem, sample): :data:`SAMPLE_KEYS` and more
    summary.json        the metrics (:func:`motif.eval.runner.run_eval`)

An *equal-budget grid* (``motif eval --grid``) holds ``grid.json``, ``grid.md``, ``grid.png``
and one eval folder per cell under ``cells/<label>/``.

A *training folder* (``motif train``/``motif sft --output-dir``)::

    .motif-run            the marker
    motif_config.yaml     the resolved configuration
    run_identity.json     what must match for ``--resume`` (settings, weights, data)
    metrics.jsonl         one JSON object per logged step (``step`` and the logged keys)
    checkpoint-N/         the Trainer's checkpoints; complete once trainer_state.json exists
                          (``motif sft --save-steps``: the last one, while the run lasts)
    sft_metrics.json      ``motif sft``: its training numbers, written last
    adapter_model.safetensors, adapter_config.json   the final LoRA adapter

Writers (:mod:`motif.eval.store`, :mod:`motif.eval.grid_output`, :mod:`motif.training.rundir`)
and readers (:mod:`motif.runs.eval`, :mod:`motif.runs.training`) take the names from here.
"""

from __future__ import annotations

import re
from pathlib import Path

MARKER = ".motif-run"
"""The file that says a folder was created by motif (so ``--overwrite`` may delete it)."""

# --------------------------------------------------------------------------- eval folders

EVAL_CONFIG_FILE = "eval_config.json"
SAMPLES_FILE = "samples.jsonl"
SUMMARY_FILE = "summary.json"
SAMPLE_KEYS = ("id", "sample", "rounds", "correct")
"""The keys every ``samples.jsonl`` row has (:func:`motif.eval.runner.sample_record`)."""
ROUND_BUDGET_KEYS = (
    "prompt_tokens",
    "completion_tokens",
    "context_tokens",
    "carried_tokens",
    "truncated",
)
"""A round's token accounting, in this order at the end of each round of a ``samples.jsonl``
row and of a ``motif infer --json`` record (from :meth:`motif.engine.Trajectory.to_dict`)."""

GRID_FILE = "grid.json"
GRID_TABLE = "grid.md"
GRID_PLOT = "grid.png"
CELLS_DIR = "cells"
"""A grid's cells: one eval folder each, ``cells/<label>``."""

# --------------------------------------------------------------------------- training folders

TRAIN_CONFIG_FILE = "motif_config.yaml"
IDENTITY_FILE = "run_identity.json"
METRICS_FILE = "metrics.jsonl"
SFT_METRICS_FILE = "sft_metrics.json"
TRAINER_STATE_FILE = "trainer_state.json"
"""Written last into a checkpoint: a checkpoint without it was cut off while saving."""
CHECKPOINT_GLOB = "checkpoint-*"
CHECKPOINT_NAME = re.compile(r"^checkpoint-(\d+)$")
"""A checkpoint folder's name; group 1 is its optimiser step."""
ADAPTER_WEIGHTS = "adapter_model.safetensors"
ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_FILES = (ADAPTER_WEIGHTS, ADAPTER_CONFIG)
"""The two files of a saved LoRA adapter (a run's root holds the final one)."""


def checkpoint_name(step: int) -> str:
    """The folder name of the checkpoint saved at optimiser ``step``: ``checkpoint-<step>``."""
    return f"checkpoint-{step}"


def checkpoint_step(checkpoint: Path) -> int:
    """The optimiser step of a checkpoint folder (the inverse of :func:`checkpoint_name`)."""
    return int(Path(checkpoint).name.rsplit("-", 1)[1])


HELDOUT_PREFIX = "heldout/"
"""The prefix of the held-out check's metrics in ``metrics.jsonl`` (``heldout/accuracy``,
``heldout/handover_smuggled``, ...; :mod:`motif.training.watch` logs them)."""
HELDOUT_COLUMNS = ("accuracy", "format_rate", "state_right", "skipped_steps")
"""The held-out check's rates a report shows, before the hand-over watch's."""
