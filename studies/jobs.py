"""The job runner both studies use (studies.replicate, studies.study2): a :class:`Job` per
``motif`` command with the marker that says it finished, run a few at a time by
:func:`run_jobs`; a study stopped at any point continues where it was when run again.

Imports no study (motif.runs.training: how many steps a training run logged).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from motif.runs.training import logged_steps


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
    on_finish: Callable[[Job], None] | None = None,
) -> None:
    """Run the unfinished jobs, ``parallel`` at a time; stop at the first failure.

    ``env``: variables added to the jobs' environment (this process's is left alone).
    ``on_finish``: called with each job that succeeded, as soon as it does (a study keeps what
    it made there, before the machine can be taken away).

    Each job gets ``threads`` CPU threads (default: the cores shared out between the jobs)
    and appends its output to ``logs/<job name>.log``. A failure exits naming ``prog``.
    """
    pending = [j for j in jobs if not j.is_done()]
    for job in jobs:
        if job not in pending:
            print(f"[done] {job.name}")
    threads = threads or max(1, (os.cpu_count() or 1) // parallel)
    env = job_env(threads, env or {})
    running: list[tuple[Job, subprocess.Popen, float]] = []
    logs.mkdir(parents=True, exist_ok=True)
    while pending or running:
        while pending and len(running) < parallel:
            job = pending.pop(0)
            running.append((job, start(job, logs, env), time.time()))
        time.sleep(5)
        for item in [r for r in running if r[1].poll() is not None]:
            running.remove(item)
            job, proc, began = item
            if proc.returncode != 0:
                sys.exit(f"{prog}: {job.name} failed ({proc.returncode}); see {logs}")
            print(f"[finished] {job.name} in {(time.time() - began) / 60:.1f} min", flush=True)
            if on_finish is not None:
                on_finish(job)


def job_env(threads: int, extra: dict[str, str]) -> dict[str, str]:
    """This process's environment for a job: passive OpenMP waits, ``threads`` CPU threads
    (OpenMP and MKL), then ``extra``."""
    env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE")
    env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), **extra)
    return env


def start(job: Job, logs: Path, env: dict[str, str]) -> subprocess.Popen:
    """Start ``job`` with ``env``, its output appended to ``logs/<job name>.log``."""
    log = open(logs / f"{job.name.replace(' ', '_')}.log", "a")  # noqa: SIM115
    print(f"[start] {job.name}: {' '.join(job.argv[2:])}", flush=True)
    return subprocess.Popen(job.argv, stdout=log, stderr=subprocess.STDOUT, env=env)


def study_parser(
    prog: str, description: str | None, stages: tuple[str, ...], out: str
) -> argparse.ArgumentParser:
    """The options every study takes: ``--stage`` (one of ``stages``, or ``all``), ``--out``
    (where its runs and results go; default ``out``), ``--seeds`` and ``--jobs``; a study
    adds its own after them."""
    p = argparse.ArgumentParser(
        prog=prog, description=description, formatter_class=argparse.RawTextHelpFormatter
    )
    p.add_argument("--stage", choices=("all", *stages), default="all")
    p.add_argument("--out", default=out, help="Where every run and result goes.")
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3], help="Training seeds.")
    p.add_argument("--jobs", type=int, default=2, help="Commands run at once.")
    return p
