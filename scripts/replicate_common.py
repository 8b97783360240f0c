"""The replication's layout, read by its stages (scripts/replicate.py) and its summary
(scripts/replicate_summary.py): recipes, run directories and their step times; and the job
runner both studies use (scripts/replicate.py, scripts/study2.py): a :class:`Job` per CLI
command with the marker that says it finished, run a few at a time by :func:`run_jobs`.

Dependencies go one way: replicate.py -> replicate_summary.py -> replicate_common.py (and
replicate.py -> replicate_common.py; study2.py -> replicate_common.py); this module imports
no script.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

RECIPES = Path("recipes/replicate")


def recipe(name: str) -> dict:
    """The replication's recipe ``name`` (recipes/replicate/<name>.yaml, from the checkout)."""
    return yaml.safe_load((RECIPES / f"{name}.yaml").read_text())


def run_dir(out: Path, method: str, seed: int) -> Path:
    """Where the training run of ``method`` with ``seed`` goes: ``out/<method>-s<seed>``."""
    return out / f"{method}-s{seed}"


def step_seconds(run: Path) -> dict[int, float]:
    """Seconds of each optimiser step (the last record wins when a resumed run repeats one)."""
    seconds: dict[int, float] = {}
    path = run / "metrics.jsonl"
    for line in path.read_text().splitlines() if path.exists() else []:
        row = json.loads(line)
        if "step_seconds" in row:
            seconds[int(row["step"])] = float(row["step_seconds"])
    return seconds


def logged_steps(run: Path) -> int:
    """The last optimiser step ``run``'s metrics.jsonl logged (0: none)."""
    return max(step_seconds(run), default=0)


def finished(run: Path, steps: int) -> bool:
    """A training run that reached ``steps`` (its final adapter is saved at the root)."""
    done = (run / "adapter_model.safetensors").exists()
    return done and logged_steps(run) >= steps


def training_seconds(run: Path) -> float:
    """``run``'s training time: the sum of its logged step seconds (0.0: none logged)."""
    return sum(step_seconds(run).values())


def wall_matched_step(grpo: Path, motif: Path, every: int) -> int:
    """The last GRPO checkpoint whose training time fits in MOTIF's whole training time."""
    budget = training_seconds(motif)
    spent, best = 0.0, every
    for step, seconds in sorted(step_seconds(grpo).items()):
        spent += seconds
        if spent > budget:
            break
        if step % every == 0:
            best = step
    return best


@dataclass
class Job:
    """One CLI command, its log file and the marker that says it already finished."""

    name: str
    argv: list[str]
    done: Path | None = None
    steps: int | None = None  # a training job: the steps its run must have logged

    def is_done(self) -> bool:
        """The marker exists and, for a training run, it reached ``steps`` (raising a
        recipe's max_steps continues a finished run from its last checkpoint, where that
        checkpoint is still on disk)."""
        if self.done is None or not self.done.exists():
            return False
        return self.steps is None or logged_steps(self.done.parent) >= self.steps


def motif_argv(*args: str) -> list[str]:
    """``python -m motif.cli.main ARGS``: the project's CLI in this interpreter."""
    return [sys.executable, "-m", "motif.cli.main", *args]


def run_jobs(
    jobs: list[Job],
    parallel: int,
    logs: Path,
    threads: int | None = None,
    prog: str = "replicate",
    env: dict[str, str] | None = None,
) -> None:
    """Run the unfinished jobs, ``parallel`` at a time; stop at the first failure.

    ``env``: variables added to the jobs' environment (this process's is left alone).

    Each job gets ``threads`` CPU threads (default: the cores shared out between the jobs)
    and appends its output to ``logs/<job name>.log``. A failure exits naming ``prog``.
    """
    pending = [j for j in jobs if not j.is_done()]
    for job in jobs:
        if job not in pending:
            print(f"[done] {job.name}")
    extra, env = env or {}, dict(os.environ, OMP_WAIT_POLICY="PASSIVE")
    threads = threads or max(1, (os.cpu_count() or 1) // parallel)
    env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), **extra)
    running: list[tuple[Job, subprocess.Popen, float]] = []
    logs.mkdir(parents=True, exist_ok=True)
    while pending or running:
        while pending and len(running) < parallel:
            job = pending.pop(0)
            log = open(logs / f"{job.name.replace(' ', '_')}.log", "a")  # noqa: SIM115
            print(f"[start] {job.name}: {' '.join(job.argv[2:])}", flush=True)
            proc = subprocess.Popen(job.argv, stdout=log, stderr=subprocess.STDOUT, env=env)
            running.append((job, proc, time.time()))
        time.sleep(5)
        for item in list(running):
            job, proc, start = item
            if proc.poll() is None:
                continue
            running.remove(item)
            minutes = (time.time() - start) / 60
            if proc.returncode != 0:
                sys.exit(f"{prog}: {job.name} failed ({proc.returncode}); see {logs}")
            print(f"[finished] {job.name} in {minutes:.1f} min", flush=True)
