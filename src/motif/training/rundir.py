"""The run directory: resolved config, checkpoints, metrics JSONL; and the per-step timers.

The writer of a training folder (file names: :mod:`motif.runs.layout`); its reader is
:mod:`motif.runs.training`.
"""

from __future__ import annotations

import functools
import json
import logging
import time
from pathlib import Path
from typing import Any

import yaml

from motif import (
    identity as weights_identity,  # called through the module: tests replace its functions
)
from motif.errors import MotifError
from motif.identity import adapter_fingerprint, differences, mismatch_error
from motif.outdir import check_output_dir
from motif.runs.layout import IDENTITY_FILE, METRICS_FILE, checkpoint_step
from motif.runs.layout import TRAIN_CONFIG_FILE as CONFIG_FILE
from motif.runs.training import latest_checkpoint, read_identity, read_run_config

logger = logging.getLogger(__name__)

__all__ = ["CONFIG_FILE", "METRICS_FILE", "IDENTITY_FILE", "latest_checkpoint"]

# Settings that do not change what a step computes: they may differ when a run is resumed.
# (max_steps may grow to continue a finished run; the schedule then stretches accordingly.)
NOT_IDENTITY = (
    "output_dir",
    "resume",
    "overwrite",
    "dry_run",
    "trust_remote_code",
    "data_dir",
    "max_steps",
    "save_steps",
    "save_total_limit",
    "logging_steps",
    "report_to",
    "continuation_batch_size",
    "vllm_server_host",
    "vllm_server_port",
    "vllm_gpu_memory_utilization",
    "micro_batches",  # memory only: the same rows, loss and optimiser step (a run that ran out
    # of memory resumes with more); TRL's bnpo loss alone normalises per micro-batch
    "heldout_every",  # the held-out check reads the policy, it never changes a step
    "heldout_size",
)

# Settings added after runs were started, with the value such a run used: a stored identity
# without one of them reads as that value, so a run started before the option existed resumes
# (when it keeps that value) and a change of it is named.
ADDED_SETTINGS = {
    "rollout_decode_dtype": "auto",  # training rollouts sampled as --decode-dtype auto does
    "top_k": 0,  # round-1 sampling options, TRL's defaults before they were options here
    "min_p": None,
    "repetition_penalty": 1.0,
    "generation_kwargs": None,
}


def run_identity(config: dict[str, Any], model: str | None, adapter: str | None, data: str) -> dict:
    """What must match for ``--resume``: the settings that shape a step, weights, adapter, data."""
    settings = {k: v for k, v in config.items() if k not in NOT_IDENTITY}
    return {
        "settings": settings,
        "model_weights": weights_identity.model_fingerprint(model),
        "init_adapter_sha256": adapter_fingerprint(adapter),
        "data_fingerprint": data,
    }


def resume_point(out: Path, identity: dict, added: dict | None = None) -> Path:
    """The checkpoint to resume from, once the stored identity matches ``identity``.

    ``added``: settings added after runs of this kind were started, with the value such a run
    used (default: ``motif train``'s :data:`ADDED_SETTINGS`).

    Raises:
        ConfigError: one line naming every differing field (nothing has been written).
        MotifError: the directory holds no run, or no complete checkpoint yet.
    """
    added = ADDED_SETTINGS if added is None else added
    stored = _stored_identity(out)
    if stored is None:
        raise MotifError(f"--resume: {out} holds no motif run ({CONFIG_FILE} is missing)")
    checkpoint = latest_checkpoint(out)
    if checkpoint is None:  # before the settings: without one there is nothing to compare for
        raise MotifError(f"--resume: no checkpoint-N directory in {out} yet; nothing to resume")
    if "settings" not in stored:  # a run from before the identity file: its settings only
        stored = {**added, **stored}
        identity = {"settings": {k: identity["settings"].get(k) for k in stored}}
        stored = {"settings": stored}
    else:
        stored["settings"] = {**added, **stored["settings"]}
    diffs = differences(stored, identity)
    if diffs:
        raise mismatch_error(
            f"--resume: the run in {out} was started with other settings",
            diffs,
            "resume with the run's own settings, or start a new run (--overwrite or another "
            "--output-dir)",
        )
    return checkpoint


def _stored_identity(out: Path) -> dict | None:
    stored = read_identity(out)
    if stored is not None:
        stored.pop("run", None)  # metadata (precision chosen, start time), not identity
        return stored
    saved = read_run_config(out)  # a run from before the identity file
    return None if saved is None else {k: v for k, v in saved.items() if k not in NOT_IDENTITY}


def resume_hint(out: str | Path) -> str | None:
    """How to continue the run in ``out``, where it has a checkpoint to continue from (the
    refusal of a full ``--output-dir`` offers ``--resume`` only then)."""
    if latest_checkpoint(out) is None:
        return None
    return "pass --resume to continue it from its last checkpoint"


def write_run_files(out: Path, config: dict[str, Any], identity: dict, meta: dict) -> None:
    """The resolved config (``motif_config.yaml``) and the identity with run metadata."""
    (out / CONFIG_FILE).write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    record = {**identity, "run": meta}
    (out / IDENTITY_FILE).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")


def start_run(
    out: Path,
    config: dict[str, Any],
    identity: dict,
    bf16: tuple[bool, str],
    resume_from: Path | None,
    **meta: Any,
) -> None:
    """Before the first step: the resolved config and the identity with the run's metadata
    (precision and why, start time, checkpoint resumed from, ``meta``); on a resume, drop
    what was logged after that checkpoint (:func:`trim_logs`)."""
    from datetime import datetime, timezone

    record = {
        "bf16": bf16[0],
        "bf16_reason": bf16[1],
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "resumed_from": str(resume_from) if resume_from else None,
        **meta,
    }
    write_run_files(out, config, identity, record)
    if resume_from is not None:
        trim_logs(out, checkpoint_step(resume_from))


def trim_logs(out: Path, step: int) -> int:
    """Drop what was logged after ``step`` (the resumed checkpoint); returns records dropped.

    Covers ``metrics.jsonl`` and the TensorBoard event files under ``out/runs``: a run killed
    after its last checkpoint logged steps that the resumed run logs again.
    """
    dropped = 0
    metrics = out / METRICS_FILE
    if metrics.is_file():
        lines = metrics.read_text(encoding="utf-8").splitlines(keepends=True)
        kept = [line for line in lines if _metric_step(line) <= step]
        dropped += len(lines) - len(kept)
        metrics.write_text("".join(kept), encoding="utf-8")
    for events in sorted(out.glob("runs/**/events.out.tfevents.*")):
        dropped += _trim_events(events, step)
    if dropped:
        logger.warning("resume from step %d: dropped %d record(s) logged after it", step, dropped)
    return dropped


def _metric_step(line: str) -> float:
    try:
        return float(json.loads(line).get("step", 0))
    except (json.JSONDecodeError, AttributeError, TypeError, ValueError):
        return float("inf")  # a torn line from the crash


def _trim_events(path: Path, step: int) -> int:
    """Rewrite a TensorBoard event file without its events after ``step``."""
    # heavy (tensorboard and protobuf): only a resumed run trims event files
    from tensorboard.backend.event_processing.event_file_loader import RawEventFileLoader
    from tensorboard.compat.proto import event_pb2
    from tensorboard.summary.writer.record_writer import RecordWriter

    records = list(RawEventFileLoader(str(path)).Load())
    kept = [r for r in records if event_pb2.Event.FromString(r).step <= step]
    if len(kept) == len(records):
        return 0
    tmp = path.with_name(path.name + ".trim")
    with tmp.open("wb") as handle:
        writer = RecordWriter(handle)
        for record in kept:
            writer.write(record)
        writer.flush()
    tmp.replace(path)
    return len(records) - len(kept)


def metrics_callback(path: str) -> Any:
    """A ``TrainerCallback`` that times each step and appends every log as one JSON line.

    It must run before the TensorBoard callback so the timings it adds reach TensorBoard too.
    """
    from transformers import TrainerCallback  # heavy: only a training run builds the callback

    class MetricsCallback(TrainerCallback):
        def __init__(self) -> None:
            self.file = Path(path) / METRICS_FILE
            self.step_start = 0.0
            self.timings: dict[str, float] = {}

        def on_step_begin(self, args, state, control, **kwargs):
            self.step_start = time.perf_counter()
            # Updated in place: the method timers hold a reference to this dict.
            self.timings.clear()
            # 0 on a step that reuses a buffered batch (num_iterations > 1): TRL generated it
            # on an earlier step, whose timings hold it
            self.timings.update(round1_generation_seconds=0.0, reward_seconds=0.0)
            self.timings.update({BATCH_KEY: 0.0})

        def on_step_end(self, args, state, control, **kwargs):
            step = time.perf_counter() - self.step_start
            other = self.timings["round1_generation_seconds"] + self.timings["reward_seconds"]
            batch = self.timings.pop(BATCH_KEY)
            # TRL's own work around them: tokens, padding, advantages
            self.timings["scoring_seconds"] = max(0.0, batch - other)
            other = max(other, batch)
            self.timings["step_seconds"] = step
            # the rest: the policy-gradient work (log-probs, backward pass, optimiser step)
            self.timings["optimisation_seconds"] = max(0.0, step - other)

        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs is None or "train_runtime" in logs:
                return
            logs.update(self.timings)
            if "completions/mean_length" in logs:
                # TRL logs the mean over every completion of the step, gathered over processes.
                count = args.per_device_train_batch_size * args.gradient_accumulation_steps
                logs["round1_tokens"] = logs["completions/mean_length"] * count * args.world_size
            if state.is_world_process_zero:
                record = {"step": state.global_step, **logs}
                with self.file.open("a") as fh:
                    fh.write(json.dumps(record) + "\n")

    return MetricsCallback()


BATCH_KEY = "batch_seconds"
"""The timer of TRL's ``_generate_and_score_completions`` (round 1, rewards and TRL's own
work around them); split into ``scoring_seconds`` by the metrics callback, not logged."""


def time_method(obj: Any, name: str, sink: dict[str, float], key: str) -> bool:
    """Wrap ``obj.name`` so each call adds its wall time to ``sink[key]``.

    Used for the round-1 generation time of TRL's trainer. The wrapper passes every argument
    through untouched, so it does not depend on the method's signature; when a TRL release
    renames the method, the timing is skipped (returns False) rather than the run failing.
    """
    original = getattr(obj, name, None)
    if original is None:
        logger.warning(
            "cannot time %s.%s: not present in this TRL version", type(obj).__name__, name
        )
        return False

    @functools.wraps(original)
    def timed(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            sink[key] = sink.get(key, 0.0) + time.perf_counter() - start

    setattr(obj, name, timed)
    return True


def prepare_run_dir(path: str, config: dict[str, Any], resume: bool, overwrite: bool) -> None:
    """Check, then claim the run directory and write the resolved config (for callers that
    build their own trainer; ``motif train`` itself goes through ``check_config``/``train``)."""
    out = check_output_dir(
        path, kind="train", overwrite=overwrite, resume=resume, legacy_files=(CONFIG_FILE,)
    ).claim()
    (out / CONFIG_FILE).write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
