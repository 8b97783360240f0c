"""The run directory: resolved config, checkpoints, metrics JSONL; and the per-step timers."""

from __future__ import annotations

import functools
import json
import logging
import re
import shutil
import time
from pathlib import Path
from typing import Any

import yaml

from motif.errors import MotifError

logger = logging.getLogger(__name__)

CONFIG_FILE = "motif_config.yaml"
METRICS_FILE = "metrics.jsonl"
_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")


def prepare_run_dir(path: str, config: dict[str, Any], resume: bool, overwrite: bool) -> str | None:
    """Create or check the run directory; returns the checkpoint to resume from (or None).

    An existing run is refused unless ``resume`` (same method and model) or ``overwrite``.
    """
    out = Path(path)
    existing = out.exists() and any(out.iterdir())
    if existing and overwrite:
        shutil.rmtree(out)
        existing = False
    if existing and not resume:
        raise MotifError(
            f"{out} already holds a run; pass --resume to continue it or --overwrite to replace it"
        )
    if resume:
        return _resume_point(out, config)
    out.mkdir(parents=True, exist_ok=True)
    (out / CONFIG_FILE).write_text(yaml.safe_dump(config, sort_keys=False))
    return None


def _resume_point(out: Path, config: dict[str, Any]) -> str:
    saved_file = out / CONFIG_FILE
    if not saved_file.exists():
        raise MotifError(f"--resume: {out} holds no motif run ({CONFIG_FILE} is missing)")
    saved = yaml.safe_load(saved_file.read_text()) or {}
    for key in ("method", "model", "dataset", "rounds"):
        if saved.get(key) != config.get(key):
            raise MotifError(
                f"--resume: the run in {out} used {key}={saved.get(key)!r}, not {config.get(key)!r}"
            )
    checkpoint = latest_checkpoint(out)
    if checkpoint is None:
        raise MotifError(f"--resume: no checkpoint-N directory in {out} yet; nothing to resume")
    return str(checkpoint)


def latest_checkpoint(out: Path) -> Path | None:
    """The complete ``checkpoint-N`` directory with the largest N, if any.

    A run killed while saving leaves a checkpoint without ``trainer_state.json`` (the
    Trainer writes it after the weights and optimiser); resuming from it would fail, so it
    is skipped with a warning.
    """
    found = []
    for path in out.glob("checkpoint-*"):
        if (m := _CHECKPOINT.match(path.name)) is None:
            continue
        if not (path / "trainer_state.json").exists():
            logger.warning("skipping %s: incomplete (no trainer_state.json)", path)
            continue
        found.append((int(m.group(1)), path))
    return max(found)[1] if found else None


def metrics_callback(path: str) -> Any:
    """A ``TrainerCallback`` that times each step and appends every log as one JSON line.

    It must run before the TensorBoard callback so the timings it adds reach TensorBoard too.
    """
    from transformers import TrainerCallback

    class MetricsCallback(TrainerCallback):
        def __init__(self) -> None:
            self.file = Path(path) / METRICS_FILE
            self.step_start = 0.0
            self.timings: dict[str, float] = {}

        def on_step_begin(self, args, state, control, **kwargs):
            self.step_start = time.perf_counter()
            # Updated in place: the method timers hold a reference to this dict.
            self.timings.clear()
            self.timings.update(round1_generation_seconds=0.0, reward_seconds=0.0)

        def on_step_end(self, args, state, control, **kwargs):
            step = time.perf_counter() - self.step_start
            # What is neither round-1 generation nor reward (continuations included) is the
            # policy-gradient work: log-probs, backward pass and optimiser step.
            other = self.timings["round1_generation_seconds"] + self.timings["reward_seconds"]
            self.timings["step_seconds"] = step
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
