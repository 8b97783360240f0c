"""The second study's resume state between sittings: what a later sitting needs from the
finished stages, copied after each stage to a committed folder (``--kept``, default
:data:`STATE_DIR`) and copied back into the study's ``out`` at the start of a sitting.

The rule for a study's resume state: it lives in ``studies/state/<study>/``, never in
``docs/``; it is committed while the study runs (``runs/`` does not outlive a machine) and
removed once the study is published. What the study publishes stays in ``docs/``: the
adapters behind its headline numbers, once each, in ``docs/results/adapters/<model>``
(:func:`studies.study2_layout.adapter_folder`); a later sitting restores them from there
(:func:`restore_published`), and :func:`keep` never stores a second copy of one.

Reads the layout (studies.study2_layout); imports neither the stages nor the tables.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from motif.runs.layout import ADAPTER_FILES, IDENTITY_FILE, METRICS_FILE
from motif.runs.training import complete_adapter
from studies.keeping import copy_kept
from studies.study2_layout import ARMS, Study, adapter_folder, adapter_model

STATE_DIR = "studies/state/study2"
"""``--kept``'s default: the second study's resume state (committed while it runs)."""

KEPT = (
    "sft/*",  # the adapter, its config, chat template, README, motif_config.yaml, metrics
    "choice.json",
    "choose/*/*",  # each evaluation's eval_config.json, samples.jsonl, summary.json
    "heldout.json",
    "eval/*/*",
    "published/*/*",  # the bf16 adapters of the main table's models (see published_copies)
)
"""What a later sitting needs from finished stages (relative to the study's ``out``): the
cold start's adapter, the choice with its measurements, the adapters to evaluate and publish
(until they are published), and finished evaluations (a finished evaluation is skipped, so its
model's checkpoint is no longer needed); plus :data:`KEPT_RUN_FILES` of every trained run.
:func:`keep` copies these to the state folder and :func:`restore` brings them back. A folder
being written (``*.partial``) is never kept."""

KEPT_RUN_FILES = (METRICS_FILE, IDENTITY_FILE)
"""What is kept of a training run that logged all its steps: its per-step metrics (the
training table, the wall-clock match, and the marker that it is trained) and its identity.
A run cut off before its last step is not kept: without its checkpoints it starts over."""


def keep(study: Study, kept: Path, adapters: Path) -> list[Path]:
    """Copy the finished stages' :data:`KEPT` files, and :data:`KEPT_RUN_FILES` of trained
    runs, from ``study.out`` to ``kept`` (new or changed ones), except a bf16 adapter's file
    that ``adapters`` (docs/results/adapters) already publishes unchanged; the copies."""
    trained = [
        f"{run.name}/{name}"
        for run in sorted(study.out.glob("*-s*"))
        if _trained_run(study, run.name)
        for name in KEPT_RUN_FILES
    ]

    def published(relative: Path) -> bool:
        if relative.parts[0] != "published" or len(relative.parts) != 3:
            return False
        copy = adapter_folder(adapters, relative.parts[1]) / relative.name
        return copy.is_file() and copy.read_bytes() == (study.out / relative).read_bytes()

    patterns = (*KEPT, *trained)
    return copy_kept(study.out, kept, replace_changed=True, patterns=patterns, skip=published)


def restore(out: Path, kept: Path) -> list[Path]:
    """Copy kept files that ``out`` lacks back into it (a new machine); the copies."""
    runs = tuple(f"*-s*/{name}" for name in KEPT_RUN_FILES)
    return copy_kept(kept, out, replace_changed=False, patterns=(*KEPT, *runs))


def restore_published(study: Study, adapters: Path) -> list[Path]:
    """Copy each trained model's published adapter (``adapters/<arm>-s<seed>-step<step>``, both
    :data:`~motif.runs.layout.ADAPTER_FILES`) to :meth:`Study.published` where that lacks
    a complete one; the copies. The cold start's published folder holds the adapter only (its
    run's metrics mark it done), so it is restored from the state folder alone."""
    copies = []
    folders = sorted(adapters.iterdir()) if adapters.is_dir() else []
    for folder in folders:
        model = adapter_model(folder)
        if model is None or not complete_adapter(folder):
            continue
        target = study.published(model)
        if complete_adapter(target):
            continue
        target.mkdir(parents=True, exist_ok=True)
        copies += [Path(shutil.copy2(folder / f, target / f)) for f in ADAPTER_FILES]
    return copies


def _trained_run(study: Study, folder: str) -> bool:
    arm, _, seed = folder.rpartition("-s")
    return arm in ARMS and seed.isdigit() and study.trained(arm, int(seed))
