"""`make replicate`: base vs cold start vs GRPO vs MOTIF on a CPU, end to end (docs/results.md).

Every stage runs the project's own CLI (`motif sft`, `motif train`, `motif eval`, `motif report`)
with the recipes in recipes/replicate/, and every stage is resumable: a finished step is
skipped, a training run with a checkpoint continues from it (`--resume`), an evaluation
continues from its saved batches. Stop it at any time and run the same command again.

    python -m studies.replicate                       # everything (hours on 2 CPU cores)
    python -m studies.replicate --stage train --jobs 2
    python -m studies.replicate --stage summary       # tables from whatever has finished

Stages, in order: heldout, sft, train, eval, transfer, summary. `--jobs 2` runs two commands
at once with one thread each (faster in total than one command on two threads at these
batch sizes; every run of a comparison then sees the same contention).

This module holds the stages and their jobs; studies.replicate_summary the tables (imported
here, it never imports this module back); studies.replicate_layout the layout both read
(recipes, run directories); studies.jobs the job runner (Job, run_jobs) and studies.wallclock the
wall-clock match, shared with studies.study2; motif.runs reads the run folders.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from motif.data import load_problems
from motif.runs.layout import ADAPTER_WEIGHTS, checkpoint_name
from motif.runs.training import checkpoints
from motif.training.demos import load_items
from studies.jobs import Job, motif_argv, run_jobs, study_parser
from studies.replicate_layout import RECIPES, finished, recipe, run_dir
from studies.replicate_summary import publish, write_summary
from studies.wallclock import wall_matched_step

STAGES = ("heldout", "sft", "train", "eval", "transfer", "summary")
HELDOUT_SEED = 3_000_000  # reasoning-gym seed of the held-out candidates (not tuned)


# --------------------------------------------------------------------------- held-out set


def heldout(out: Path, size: int) -> Path:
    """``size`` chain_sum items unseen in training and in the demonstrations, as JSONL."""
    path = out / "heldout_chain_sum.jsonl"
    if path.exists():
        return path
    sft, train = recipe("sft"), recipe("motif")
    demos = load_items(sft["task"], sft["num_examples"], sft["data_seed"], sft["task_config"])
    seen = {p.question for p in demos}
    config = dict(train["task_config"], size=train["dataset_size"])
    seen |= {
        p.question
        for p in load_problems(train["dataset"], task_config=config, seed=train["dataset_seed"])
    }
    pool = load_problems(
        train["dataset"], task_config=dict(config, size=8 * size), seed=HELDOUT_SEED
    )
    rows, kept = [], set()
    for p in pool:
        if p.question not in seen and p.question not in kept:
            kept.add(p.question)
            rows.append({"id": p.id, "question": p.question, "answer": p.gold})
    if len(rows) < size:
        sys.exit(f"replicate: only {len(rows)} unseen held-out items; lower --heldout-size")
    path.write_text("".join(json.dumps(r) + "\n" for r in rows[:size]))
    print(f"held-out set: {size} items ({len(seen)} training/demonstration questions excluded)")
    return path


# --------------------------------------------------------------------------- jobs


def sft_job(out: Path) -> Job:
    target = out / "sft"
    argv = motif_argv("sft", "--config", str(RECIPES / "sft.yaml"), "--output-dir", str(target))
    return Job("sft", [*argv, "--overwrite"], target / "sft_metrics.json")


def train_job(out: Path, method: str, seed: int) -> Job:
    target = run_dir(out, method, seed)
    argv = motif_argv("train", "--config", str(RECIPES / f"{method}.yaml"), "--seed", str(seed))
    argv += ["--output-dir", str(target), "--init-adapter", str(out / "sft")]
    argv.append("--resume" if checkpoints(target) else "--overwrite")
    steps = recipe(method)["max_steps"]
    return Job(f"{method}-s{seed}", argv, target / ADAPTER_WEIGHTS, steps)


def eval_job(
    out: Path, name: str, adapter: Path | None, rounds: int, data: list[str], tokens: int = 96
) -> Job:
    """``motif eval`` of one model with one protocol, greedy; ``tokens`` per round (96: about
    twice the longest chain_sum demonstration)."""
    target = out / "eval" / f"{name}-r{rounds}"
    argv = motif_argv("eval", *data, "--rounds", str(rounds), "--output-dir", str(target))
    argv += ["--max-new-tokens", str(tokens), "--later-max-new-tokens", str(tokens)]
    argv += ["--batch-size", "50", "--max-batch-size", "64"]
    if adapter is not None:
        argv += ["--adapter", str(adapter)]
    return Job(f"eval {name}-r{rounds}", argv, target / "summary.json")


# --------------------------------------------------------------------------- what to evaluate


Model = tuple[str, Path | None, tuple[int, ...]]


def seed_models(out: Path, seed: int) -> list[Model]:
    """(name, adapter, protocols) of one seed's finished runs; a run still training is skipped."""
    grpo, motif = run_dir(out, "grpo", seed), run_dir(out, "motif", seed)
    every, steps = recipe("motif")["save_steps"], recipe("motif")["max_steps"]
    if not (finished(grpo, recipe("grpo")["max_steps"]) and finished(motif, steps)):
        print(f"seed {seed}: training not finished; its evaluations wait")
        return []
    wall = wall_matched_step(grpo, motif, recipe("grpo")["save_steps"])
    found: list[Model] = [
        (f"grpo-s{seed}@{steps}", grpo / checkpoint_name(steps), (1, 2)),
        (f"motif-s{seed}@{steps}", motif / checkpoint_name(steps), (1, 2)),
        (f"grpo-s{seed}@{wall}", grpo / checkpoint_name(wall), (1, 2)),
    ]
    for step in range(2 * every, steps, 2 * every):  # MOTIF's held-out curve
        found.append((f"motif-s{seed}@{step}", motif / checkpoint_name(step), (2,)))
    return found


def models(out: Path, seeds: list[int]) -> list[Model]:
    """Every model of the tables and curves whose training has finished."""
    found: list[Model] = [("base", None, (1, 2)), ("sft", out / "sft", (1, 2))]
    for seed in seeds:
        found += seed_models(out, seed)
    return found


def eval_jobs(out: Path, seeds: list[int], data: list[str]) -> list[Job]:
    jobs, seen = [], set()
    # the comparisons (both protocols) before MOTIF's held-out curve (one protocol)
    for name, adapter, protocols in sorted(models(out, seeds), key=lambda m: len(m[2]) == 1):
        for rounds in protocols:
            if (name, rounds) not in seen:
                seen.add((name, rounds))
                jobs.append(eval_job(out, name, adapter, rounds, data))
    return jobs


def transfer_jobs(
    out: Path, seeds: list[int], data_dir: str, limit: int, protocols: tuple[int, ...] = (1, 2)
) -> list[Job]:
    """GSM8K evaluations of every model of the comparisons (not MOTIF's curve points)."""
    data = ["--benchmark", "gsm8k", "--data-dir", data_dir, "--limit", str(limit)]
    found = {name: adapter for name, adapter, p in models(out, seeds) if len(p) == 2}
    # trained models first, the references last; dict order drops a repeated name
    names = [n for n in found if n not in ("base", "sft")] + ["sft", "base"]
    jobs = []
    for rounds in protocols:  # every model's single round first: the cheaper half of the table
        for name in names:
            # GSM8K solutions need longer replies than chain sums
            jobs.append(eval_job(out, f"gsm8k-{name}", found[name], rounds, data, tokens=256))
    return jobs


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = study_parser("python -m studies.replicate", __doc__, STAGES, "runs/replicate")
    p.add_argument(
        "--threads", type=int, default=None, help="CPU threads per command (default: cores / jobs)."
    )
    p.add_argument("--heldout-size", type=int, default=500, help="Held-out chain_sum items.")
    p.add_argument(
        "--data-dir",
        default=os.environ.get("MOTIF_DATA_DIR", "../shared/data"),
        help="Directory with gsm8k_test.jsonl for the transfer stage.",
    )
    p.add_argument("--transfer-limit", type=int, default=200, help="GSM8K test problems.")
    p.add_argument(
        "--transfer-rounds",
        type=int,
        nargs="+",
        default=[1, 2],
        choices=(1, 2),
        help="Protocols of the transfer stage (1: one round, 2: MOTIF's two rounds).",
    )
    p.add_argument(
        "--publish",
        default=None,
        help="Summary stage: also copy the tables, plots and per-run metrics here (docs/results).",
    )
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    out, logs = Path(args.out), Path(args.out) / "logs"
    out.mkdir(parents=True, exist_ok=True)
    stages = STAGES if args.stage == "all" else (args.stage,)
    data = ["--benchmark", str(out / "heldout_chain_sum.jsonl")]
    if "heldout" in stages:
        heldout(out, args.heldout_size)
    if "sft" in stages:
        run_jobs([sft_job(out)], 1, logs, args.threads)
    if "train" in stages:
        jobs = [train_job(out, m, s) for s in args.seeds for m in ("motif", "grpo")]
        run_jobs(jobs, args.jobs, logs, args.threads)
    if "eval" in stages:
        run_jobs(eval_jobs(out, args.seeds, data), args.jobs, logs, args.threads)
    if "transfer" in stages:
        protocols = tuple(args.transfer_rounds)
        jobs = transfer_jobs(out, args.seeds, args.data_dir, args.transfer_limit, protocols)
        run_jobs(jobs, args.jobs, logs, args.threads)
    if "summary" in stages:
        print(write_summary(out, args.seeds))
        if args.publish:
            print(f"published {len(publish(out, Path(args.publish), args.seeds))} files")


if __name__ == "__main__":
    main()
