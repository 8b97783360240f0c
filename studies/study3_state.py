"""The third study's resume state between sittings, by the rule of the second
(studies.study2_state): what a later sitting needs from finished stages, copied after each
stage to a committed folder (``--kept``, default :data:`STATE_DIR`) and copied back into the
study's ``out`` at the start of a sitting; removed once the study is published.

Reads the layout (studies.study3_layout); imports neither the stages nor the tables.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from motif.runs.layout import IDENTITY_FILE, METRICS_FILE
from studies.keeping import copy_kept
from studies.study3_layout import Study

STATE_DIR = "studies/state/study3"
"""``--kept``'s default: the third study's resume state (committed while it runs)."""

KEPT = (
    "sft/*",  # the cold start: adapter, config, chat template, README, metrics
    "heldout.json",
    "eval/*/*",  # each finished evaluation's eval_config.json, samples.jsonl, summary.json
    "scaling/*/*",
    "watch/*/*",
)
"""What a later sitting needs (relative to the study's ``out``), plus :data:`KEPT_RUN_FILES`
of every trained run and the bf16 adapters still needed (:func:`keep`). A folder being
written (``*.partial``) is never kept."""

KEPT_RUN_FILES = (METRICS_FILE, IDENTITY_FILE)
"""What is kept of a run that logged all its steps: its per-step metrics (step times for the
wall-clock match and the cost table, the training-time held-out curve, the marker that it is
trained) and its identity. A run cut off before its last step is not kept: it starts over."""


def keep(study: Study, kept: Path, needed: set[str]) -> list[Path]:
    """Copy :data:`KEPT`, the trained runs' :data:`KEPT_RUN_FILES` and the bf16 adapters of
    the models in ``needed`` (those with an evaluation still to run, and those to publish)
    from ``study.out`` to ``kept`` (new or changed files); the copies. A kept adapter no longer
    needed is removed from ``kept``: about 10 MB each, up to 42 of them, the state stays small."""
    trained = [
        f"{study.run(arm, seed).name}/{name}"
        for arm in study.arms
        for seed in _seeds(study, arm)
        if study.trained(arm, seed)
        for name in KEPT_RUN_FILES
    ]
    adapters = [f"published/{model}/*" for model in sorted(needed)]
    for folder in sorted((kept / "published").glob("*")):
        if folder.name not in needed:
            shutil.rmtree(folder)
    return copy_kept(study.out, kept, replace_changed=True, patterns=(*KEPT, *trained, *adapters))


def restore(out: Path, kept: Path) -> list[Path]:
    """Copy kept files that ``out`` lacks back into it (a new machine); the copies."""
    runs = tuple(f"*-s*/{name}" for name in KEPT_RUN_FILES)
    return copy_kept(kept, out, replace_changed=False, patterns=(*KEPT, *runs, "published/*/*"))


def _seeds(study: Study, arm: str) -> list[int]:
    """The seeds of ``arm`` with a run folder under ``out``."""
    found = (run.name.rsplit("-s", 1)[1] for run in study.out.glob(f"{arm}-s*"))
    return sorted(int(s) for s in found if s.isdigit())
