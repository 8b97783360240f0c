"""`make study3`: the third study (docs/results.md; issue 35): which way of training a
bounded-context reasoner wins at an equal budget, and which keeps working when given more
rounds than it trained with?

On the second study's task and budget (9-10-term one-digit addition chains, B = 96 new tokens
per round or chunk, n = 3), from one mixed cold start (recipes/study3/sft.yaml: every arm's
format), the training methods of recipes/methods/ and GRPO with one context of n x B, three
seeds each (recipes/study3/study.yaml). Every model is scored greedily on 500 held-out items in
its own protocol and the others', paired (motif.eval.compare), and on 300 longer chains with
more rounds or chunks of the same B (the scaling curve).

Stages, in order (each resumable: a finished command is skipped, a training run continues from
its last checkpoint; run the same command again):
  sft      motif sft: the mixed cold start
  train    motif train of every arm and seed, the wall-clock reference first in each seed (bf16
           copies of the models to evaluate are written and kept as soon as each run finishes:
           checkpoints do not outlive a machine)
  eval     the scored items' disjointness check, then motif eval of the cold start (also on the
           training-time check's own items) and every finished run: the sample-matched step in
           every protocol, the wall-clock match in its own
  scaling  motif eval of every final model on the longer chains at each round count
  summary  tables (paired differences, the scaling curve, cost) in summary.md and a plot
  publish  raw outputs to docs/results/study3/, the cold start's and publish_seed's adapters
           to docs/results/adapters/study3/ with the commands that re-score them, summary.md
           into docs/results.md's generated block (studies.study3_publish)

    python -m studies.study3 --plan                   # every command it would run; runs nothing
    python -m studies.study3 --stage train --jobs 2   # two commands at once, one thread each

runs/ does not outlive a machine: after each stage what later sittings need is copied to
--kept (studies/state/study3, committed while the study runs; studies.study3_state) and copied
back into --out at the start of a sitting where it is missing.

Dependencies go one way: studies.study3 -> studies.study3_publish -> studies.study3_summary,
studies.study3_state ->
studies.study3_layout -> the shared modules (studies.jobs, studies.keeping, studies.tables,
studies.wallclock). Nothing here imports another study.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from pathlib import Path

import yaml

from motif.backends.kernels import KERNEL_ENV
from motif.data import load_problems
from motif.runs.layout import SFT_METRICS_FILE
from motif.runs.training import complete_adapter, latest_checkpoint
from motif.training.demos import load_items
from studies.jobs import Job, motif_argv, run_jobs, study_parser
from studies.study3_layout import (
    EVAL_KERNEL,
    PROTOCOLS,
    Study,
    checkpoint,
    eval_job,
    model_parts,
    models,
    published_copies,
    scaling_models,
    train_job,
    wall_pending,
)
from studies.study3_publish import publish
from studies.study3_state import STATE_DIR, keep, restore
from studies.study3_summary import write_summary

STAGES = ("sft", "train", "eval", "scaling", "summary", "publish")


def sft_job(study: Study) -> Job:
    """``motif sft`` of the mixed cold start; it continues from its last checkpoint
    (sft.yaml's ``save_steps``) when a sitting stopped it part way."""
    target = study.out / "sft"
    argv = motif_argv("sft", "--config", str(study.recipes / "sft.yaml"))
    resume = latest_checkpoint(target) is not None  # a checkpoint cut off while saved: not one
    argv += ["--output-dir", str(target), "--resume" if resume else "--overwrite"]
    return Job("sft", argv + study.model_argv(), target / SFT_METRICS_FILE)


def train_jobs(study: Study, seeds: list[int]) -> list[Job]:
    """Seed by seed, so that a sitting that stops early leaves whole seeds; in each seed the
    wall-clock reference first, so that an arm finishing after it can have its wall-clock
    checkpoint copied before that checkpoint is gone."""
    reference = study.config["wall_reference"]
    arms = [reference, *(a for a in study.arms if a != reference)]
    return [train_job(study, arm, seed) for seed in seeds for arm in arms]


Evaluation = tuple[str, Path | None, Job]
"""(model name, adapter, its ``motif eval`` job)."""


def heldout_evals(study: Study, seeds: list[int], plan: bool = False) -> list[Evaluation]:
    """Every model of :func:`models` in each of its protocols, on the held-out items, in
    :func:`eval_rank`'s order (stable: the models' order within a rank)."""
    found = [(name, adapter, p) for name, adapter, ps in models(study, seeds, plan) for p in ps]
    found.sort(key=lambda f: eval_rank(study, f[0], f[2]))
    return [
        (
            name,
            adapter,
            eval_job(study, adapter, p, study.rounds, "heldout", study.eval_dir(name, p)),
        )
        for name, adapter, p in found
    ]


def eval_rank(study: Study, model: str, protocol: str) -> int:
    """0 for the cold start, 1 for a trained model (``<arm>-s<seed>@<step>``) in its arm's own
    protocol, 2 in another's: the headline comparison runs first, so a sitting cut short has it."""
    if model == "sft":
        return 0
    return 1 if study.own(model_parts(model)[0]) == protocol else 2


def scaling_evals(study: Study, seeds: list[int], plan: bool = False) -> list[Evaluation]:
    """Every model of :func:`scaling_models` at every round count, on the longer chains:
    every model at the fewest and the most units first (the curve's paired gain), then the
    counts between, so that a sitting cut short has the gain of every model."""
    units = study.config["scaling"]["rounds"]
    ends = {min(units), max(units)}
    found = [
        (name, adapter, p, u)
        for name, adapter, protocols in scaling_models(study, seeds, plan)
        for p in protocols
        for u in units
    ]
    found.sort(key=lambda f: f[3] not in ends)
    return [
        (name, adapter, eval_job(study, adapter, p, u, "scaling", study.scaling_dir(name, p, u)))
        for name, adapter, p, u in found
    ]


def eval_jobs(study: Study, seeds: list[int], plan: bool = False) -> list[tuple[Job, bool]]:
    """Each held-out evaluation, with whether its model is lost (its bf16 copy is missing and
    its checkpoint gone: it cannot run): first the cold start on the training-time check's own
    items in every protocol (the cost table's baseline), then the models."""
    sft = study.out / "sft"
    watch = [
        (eval_job(study, sft, p, study.rounds, "watch", study.watch_dir(p)), False)
        for p in PROTOCOLS
    ]
    evals = heldout_evals(study, seeds, plan)
    return watch + [(job, lost(study, name, adapter)) for name, adapter, job in evals]


def scaling_jobs(study: Study, seeds: list[int], plan: bool = False) -> list[tuple[Job, bool]]:
    """Each evaluation of the scaling curve: every model at every round count."""
    evals = scaling_evals(study, seeds, plan)
    return [(job, lost(study, name, adapter)) for name, adapter, job in evals]


def lost(study: Study, name: str, adapter: Path | None) -> bool:
    """A trained model whose bf16 copy is missing and cannot be made any more."""
    if name == "sft" or adapter is None or complete_adapter(adapter):
        return False
    arm, seed, _ = model_parts(name)
    return study.trained(arm, seed) and not complete_adapter(checkpoint(study, name))


def needed_adapters(study: Study, seeds: list[int]) -> set[str]:
    """The trained models whose bf16 adapters later sittings need: those with an evaluation
    still to run, and every arm's sample-matched model of study.yaml's ``publish_seed`` (the
    adapters a reader re-scores)."""
    evals = [*heldout_evals(study, seeds), *scaling_evals(study, seeds)]
    pending = {name for name, _, job in evals if name != "sft" and not job.is_done()}
    publish = int(study.config["publish_seed"])
    return pending | {f"{arm}-s{publish}@{study.steps}" for arm in study.arms}


def check_heldout(study: Study) -> dict:
    """Count held-out, scaling and check (``watch``) questions that are also training or
    demonstration questions; writes heldout.json, exits when a held-out or scaling one is (a
    scored item must be unseen). The training-time check replaces a training question by
    another item, so one among the ``watch`` items is only a note: the cold start's baseline
    is then scored on a slightly different set."""

    def questions(seed: int, size: int, terms: tuple[int, int] | None = None) -> set[str]:
        config = dict(study.task_config(terms), size=size)
        source = f"reasoning_gym:{study.config['task']}"
        return {p.question for p in load_problems(source, task_config=config, seed=seed)}

    train = study.recipe(study.config["wall_reference"])
    sft = yaml.safe_load((study.recipes / "sft.yaml").read_text())
    demos = load_items(sft["task"], sft["num_examples"], sft["data_seed"], sft["task_config"])
    seen = {
        "training": questions(train["dataset_seed"], train["dataset_size"]),
        "demonstrations": {item.question for item in demos},
    }
    doc = {}
    for split in ("heldout", "scaling", "watch"):
        spec = study.config[split]
        terms = tuple(spec["terms"]) if "terms" in spec else None
        items = questions(spec["seed"], spec["size"], terms)
        doc[split] = {**spec, "distinct": len(items)}
        doc[split]["overlap"] = {k: len(items & v) for k, v in seen.items()}
    (study.out / "heldout.json").write_text(json.dumps(doc, indent=2) + "\n")
    if any(n for split in ("heldout", "scaling") for n in doc[split]["overlap"].values()):
        sys.exit(f"study3: scored items overlap training or demonstrations: {doc}")
    if doc["watch"]["overlap"]["training"]:  # the check itself skips them and draws others
        print(
            f"study3: {doc['watch']['overlap']['training']} of the check's items are training "
            "questions; its baseline is scored on a slightly different set",
            file=sys.stderr,
        )
    return doc


# --------------------------------------------------------------------------- main


def job_line(job: Job, gone: bool = False) -> str:
    """``[done]``, ``[todo]`` or ``[gone]`` (its model's files are lost: it cannot run)."""
    state = "done" if job.is_done() else "gone" if gone else "todo"
    return f"[{state}] motif {shlex.join(job.argv[3:])}"


def plan_lines(
    study: Study, stages: tuple[str, ...], seeds: list[int], docs: Path = Path("docs")
) -> list[str]:
    """Every command the stages would run now, marked done or to do; nothing is run. The
    evaluations are listed as if every run had finished; the wall-clock matches only once the
    runs they depend on have."""
    lines: list[str] = []
    for stage in stages:
        lines.append(f"# {stage}")
        if stage == "sft":
            lines.append(job_line(sft_job(study)))
        elif stage == "train":
            lines += [job_line(j) for j in train_jobs(study, seeds)]
        elif stage == "eval":
            held = study.out / "heldout.json"
            lines.append(f"[{'done' if held.exists() else 'todo'}] held-out check -> {held}")
            lines += [job_line(job, gone) for job, gone in eval_jobs(study, seeds, plan=True)]
            if pending := wall_pending(study, seeds):
                lines.append(
                    "[wait] the wall-clock match of each run once it and the reference finished: "
                    + ", ".join(pending)
                )
        elif stage == "scaling":
            lines += [job_line(job, gone) for job, gone in scaling_jobs(study, seeds, plan=True)]
        elif stage == "summary":
            lines.append(f"[todo] summary: tables from the finished evaluations -> {study.out}")
        else:
            lines.append(f"[todo] publish: {study.out}/summary.md and the raw outputs -> {docs}")
    return lines


def runnable(found: list[tuple[Job, bool]]) -> list[Job]:
    """The jobs whose models exist (a lost one is named and skipped)."""
    for job, gone in found:
        if gone and not job.is_done():
            print(f"study3: {job.name}: its model is lost (no bf16 copy, no checkpoint)")
    return [job for job, gone in found if not gone or job.is_done()]


def eval_env() -> dict[str, str]:
    """The evaluations' pinned fp32 kernel (:data:`EVAL_KERNEL`) unless the caller sets one."""
    return {KERNEL_ENV: os.environ.get(KERNEL_ENV, EVAL_KERNEL)}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = study_parser("python -m studies.study3", __doc__, STAGES, "runs/study3")
    p.add_argument("--recipes", default="recipes/study3", help="study.yaml and sft.yaml.")
    p.add_argument("--methods", default="recipes/methods", help="The arms' recipes.")
    p.add_argument("--threads", type=int, default=None, help="CPU threads per command.")
    p.add_argument(
        "--kept",
        default=STATE_DIR,
        help="The study's resume state, committed while it runs (default: %(default)s).",
    )
    p.add_argument(
        "--docs", default="docs", help="Where the publish stage writes (default: %(default)s)."
    )
    p.add_argument("--plan", action="store_true", help="Print every command; run nothing.")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    study = Study(Path(args.out), Path(args.recipes), Path(args.methods))
    stages = STAGES if args.stage == "all" else (args.stage,)
    kept = Path(args.kept)
    for path in restore(study.out, kept):
        print(f"restored {path} from {kept}")
    if args.plan:
        print("\n".join(plan_lines(study, stages, args.seeds, Path(args.docs))))
        return
    study.out.mkdir(parents=True, exist_ok=True)

    def save() -> None:
        for path in published_copies(study, args.seeds):
            print(f"bf16 copy {path} (evaluated; its checkpoint is not kept)")
        for path in keep(study, kept, needed_adapters(study, args.seeds)):
            print(f"kept {path} (commit it: runs/ does not outlive the machine)")

    def run(jobs: list[Job], env: dict[str, str] | None = None) -> None:
        logs = study.out / "logs"
        try:  # what a job made is kept as soon as it finishes: a machine can go at any time
            run_jobs(jobs, args.jobs, logs, args.threads, "study3", env, lambda job: save())
        finally:
            save()

    if "sft" in stages:
        run([sft_job(study)])
    if "train" in stages:
        run(train_jobs(study, args.seeds))
    if "eval" in stages:
        print(json.dumps(check_heldout(study)))
        save()  # the bf16 copies the evaluations read, before their jobs are built
        run(runnable(eval_jobs(study, args.seeds)), eval_env())
    if "scaling" in stages:
        save()
        run(runnable(scaling_jobs(study, args.seeds)), eval_env())
    if "summary" in stages:
        print(write_summary(study, args.seeds).read_text())
    save()
    if "publish" in stages:
        for path in publish(study, args.seeds, Path(args.docs)):
            print(f"published {path}")
        print(f"study3: published; remove {kept} (the resume state) in the commit that adds them")


if __name__ == "__main__":
    main()
