"""`make study2`: the second study (docs/results.md; issue 18): does MOTIF teach modular thinking
when the work does not fit one round?

On long chains of one-digit additions (reasoning-gym basic_arithmetic), from one cold start,
at one largest context of B new tokens per round, four arms (recipes/study2/): GRPO in one
round of B (the paper's baseline), GRPO in one round of n x B (the unbounded reference),
MOTIF crediting round 1 (the paper's method) and MOTIF crediting every round (--credit all);
three seeds each; every model evaluated greedily on the held-out set in every protocol (n
rounds of B, one round of B, one round of n x B) with paired standard errors.

Stages, in order (each resumable: a finished command is skipped, a training run continues from
its last checkpoint, an evaluation from its saved batches; run the same command again):
  sft      motif sft: the cold start in every format (summary rounds + Delethink tail chunks)
  choose   motif eval of the cold start on a development split for each candidate (terms, B)
           of recipes/study2/study.yaml; the rule picks the first whose one-round replies are
           cut >= 80% at B while its n-round accuracy is 20-60%; writes runs/study2/choice.json
  train    motif train of every arm and seed with the chosen task and budget (refused
           without choice.json: the task and budget are fixed before any RL run)
  eval     the held-out set's disjointness check, then motif eval of the cold start and every
           finished run: 3 protocols at the sample-matched step, GRPO-B's final model and
           wall-clock-matched checkpoint, MOTIF's curve
  summary  tables (motif.eval.compare: paired differences, samples to reach) in summary.md
  publish  raw outputs to docs/results/study2/, adapters to docs/results/adapters/, and the
           generated block of docs/results.md

    python -m studies.study2 --plan                   # every command it would run; runs nothing
    python -m studies.study2 --stage train --jobs 2   # two commands at once, one thread each

runs/ does not outlive a machine: after each stage, what later sittings need (the cold start's
adapter, the choice and its measurements, each trained run's per-step metrics, the bf16 copies
of the models to evaluate and publish, written as soon as their runs are trained, and finished
evaluations) is copied to --kept, the study's resume state (studies/state/study2: committed
while the study runs, removed once it is published), and copied back into --out at the start
of a sitting where it is missing; the published adapters come back from
docs/results/adapters/, where each is stored once. Checkpoints are not kept: MOTIF's curve
(steps 10-30) is scored in the sitting that trains the run, or skipped with a note.

Dependencies go one way: studies.study2 (stages, jobs, the choice) -> studies.study2_summary
(tables), studies.study2_publish (publishing) and studies.study2_state (the resume state) ->
studies.study2_layout (layout, protocols, what to evaluate) -> studies.jobs (the job runner
both studies use). Nothing here imports the first study.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from pathlib import Path

from motif.backends.kernels import KERNEL_ENV
from motif.data import load_problems
from motif.runs.eval import read_summary
from motif.runs.layout import METRICS_FILE
from motif.runs.training import checkpoints, complete_adapter
from motif.training.demos import load_items
from studies.jobs import Job, motif_argv, run_jobs, study_parser
from studies.study2_layout import (
    ARMS,
    EVAL_KERNEL,
    MOTIF_ARMS,
    PROTOCOLS,
    Study,
    checkpoint,
    eval_job,
    load_choice,
    models,
    published_copies,
    terms_label,
    trained_seeds,
)
from studies.study2_publish import publish
from studies.study2_state import STATE_DIR, keep, restore, restore_published
from studies.study2_summary import write_summary

STAGES = ("sft", "choose", "train", "eval", "summary", "publish")
KEPT_DIR = STATE_DIR
"""--kept's default: the study's resume state (studies.study2_state.KEPT lists what goes
there)."""
DOCS_DIR = "docs"
"""--docs's default: where the study publishes, and where its published adapters are read
back from (``results/adapters``)."""


# --------------------------------------------------------------------------- jobs


def sft_job(study: Study) -> Job:
    target = study.out / "sft"
    argv = motif_argv("sft", "--config", str(study.recipes / "sft.yaml"))
    argv += ["--output-dir", str(target), "--overwrite", *study.model_argv()]
    return Job("sft", argv, target / "sft_metrics.json")


def choose_dir(study: Study, candidate: dict, protocol: str) -> Path:
    label = terms_label(candidate["terms"])
    return study.out / "choose" / f"{label}terms-{candidate['budget']}-{protocol}"


def choose_jobs(study: Study) -> list[Job]:
    """The cold start on the development split, every candidate in every protocol."""
    return [
        eval_job(
            study,
            study.out / "sft",
            protocol,
            study.data_argv(c["terms"], "dev"),
            c["budget"],
            choose_dir(study, c, protocol),
        )
        for c in study.config["candidates"]
        for protocol in PROTOCOLS
    ]


def train_job(study: Study, chosen: dict, arm: str, seed: int) -> Job:
    """``motif train`` of one arm and seed with the chosen task and per-round budget B."""
    target, budget = study.run(arm, seed), chosen["budget"]
    argv = motif_argv("train", "--config", str(study.recipes / f"{arm}.yaml"), "--seed", str(seed))
    argv += ["--output-dir", str(target), "--init-adapter", str(study.out / "sft")]
    argv += ["--task-config", json.dumps(study.task_config(chosen["terms"]))]
    argv += ["--max-completion-length", str(study.rounds * budget if arm == "grpo-nB" else budget)]
    if arm in MOTIF_ARMS:
        argv += ["--rounds", str(study.rounds), "--continuation-max-new-tokens", str(budget)]
    argv += study.model_argv()
    argv.append("--resume" if checkpoints(target) else "--overwrite")
    # done: the run logged every step (metrics.jsonl is kept across sittings; checkpoints are not)
    return Job(f"{arm}-s{seed}", argv, target / METRICS_FILE, int(study.recipe(arm)["max_steps"]))


def eval_jobs(study: Study, chosen: dict, seeds: list[int], plan: bool = False) -> list[Job]:
    """Held-out evaluations, no repeats: first those of training checkpoints (MOTIF's curve),
    which do not outlive this sitting's machine, then the models of the comparisons (their
    bf16 copies are kept, so a sitting that runs out of time leaves them for the next one)."""
    jobs = []
    for job, adapter, _ in planned_evals(study, chosen, seeds, plan):
        if plan or job.is_done() or complete_adapter(adapter):
            jobs.append(job)
        else:  # a checkpoint gone with an earlier sitting's machine: the others still run
            print(f"study2: {adapter} is gone; {job.done.parent.name} cannot be evaluated")
    return jobs


def planned_evals(
    study: Study, chosen: dict, seeds: list[int], plan: bool
) -> list[tuple[Job, Path, bool]]:
    """Each evaluation of :func:`eval_jobs`, in its order, with the adapter it scores and
    whether that model is lost (:func:`model_gone`)."""
    data = study.data_argv(chosen["terms"], "heldout")
    found, seen = [], set()

    def order(model: tuple) -> tuple[bool, int]:
        name, adapter, protocols = model
        kept = name == "sft" or adapter == study.published(name)  # both are kept (KEPT)
        return kept, -len(protocols)

    for name, adapter, protocols in sorted(models(study, seeds, plan), key=order):
        gone = model_gone(study, name, adapter)
        for protocol in protocols:
            if (name, protocol) not in seen:
                seen.add((name, protocol))
                target = study.eval_dir(name, protocol)
                job = eval_job(study, adapter, protocol, data, chosen["budget"], target)
                found.append((job, adapter, gone))
    return found


def model_gone(study: Study, name: str, adapter: Path) -> bool:
    """A model that can no longer be made: its run finished, and neither its adapter nor
    (for a bf16 copy) the checkpoint to copy it from is here."""
    if name == "sft" or complete_adapter(adapter):
        return False
    source = checkpoint(study, name)
    arm, seed = source.parent.name.rsplit("-s", 1)
    return study.trained(arm, int(seed)) and (adapter == source or not complete_adapter(source))


# --------------------------------------------------------------------------- the choice


def measurement(one: dict, rounds: dict, long: dict) -> dict:
    """What the rule reads from the cold start's three summaries on the development split:
    ``cut_rate`` (one round of B: replies cut at B), ``accuracy`` (n rounds of B), and for the
    page ``one_accuracy``, ``long_accuracy`` (one round of n x B), ``step_accuracy``."""
    return {
        "cut_rate": one["metrics"]["rounds"]["truncation_rate"][0],
        "accuracy": rounds["metrics"]["pass@1"],
        "one_accuracy": one["metrics"]["pass@1"],
        "long_accuracy": long["metrics"]["pass@1"],
        "step_accuracy": rounds["metrics"].get("step_accuracy"),
    }


def meets_rule(m: dict, rule: dict) -> bool:
    """At least ``min_cut`` of one-round replies cut, n-round accuracy inside ``accuracy``."""
    low, high = rule["accuracy"]
    return m["cut_rate"] >= rule["min_cut"] and low <= m["accuracy"] <= high


def pick(measurements: list[dict], rule: dict) -> int | None:
    """Index of the first candidate that meets the rule (None: none does)."""
    return next((i for i, m in enumerate(measurements) if meets_rule(m, rule)), None)


def write_choice(study: Study) -> dict:
    """Measure every candidate from its summaries, apply the rule, write choice.json."""
    rows = []
    for c in study.config["candidates"]:
        docs = {p: read_summary(choose_dir(study, c, p)) for p in PROTOCOLS}
        if any(doc is None for doc in docs.values()):
            sys.exit(f"study2: candidate {c} is not measured yet; run --stage choose")
        m = measurement(docs["one"], docs["rounds"], docs["long"])
        rows.append(dict(c, **m, meets_rule=meets_rule(m, study.config["rule"])))
    index = pick(rows, study.config["rule"])
    doc = {
        "rule": study.config["rule"],
        "rounds": study.rounds,
        "dev": study.config["dev"],
        "candidates": rows,
        "chosen": None if index is None else study.config["candidates"][index],
    }
    study.choice_path.write_text(json.dumps(doc, indent=2) + "\n")
    return doc


def check_heldout(study: Study, chosen: dict) -> dict:
    """Count held-out questions that are also training, development or demonstration
    questions; writes heldout.json, exits when any is (a held-out item must be unseen)."""

    def questions(seed: int, size: int) -> set[str]:
        config = study.task_config(chosen["terms"], size)
        source = f"reasoning_gym:{study.config['task']}"
        return {p.question for p in load_problems(source, task_config=config, seed=seed)}

    held, train, sft = study.config["heldout"], study.recipe("motif-first"), study.recipe("sft")
    demos = load_items(sft["task"], sft["num_examples"], sft["data_seed"], sft["task_config"])
    items = questions(held["seed"], held["size"])
    seen = {
        "training": questions(train["dataset_seed"], train["dataset_size"]),
        "development": questions(study.config["dev"]["seed"], study.config["dev"]["size"]),
        "demonstrations": {item.question for item in demos},
    }
    doc = {**held, "distinct": len(items), "overlap": {k: len(items & v) for k, v in seen.items()}}
    (study.out / "heldout.json").write_text(json.dumps(doc, indent=2) + "\n")
    if any(doc["overlap"].values()):
        sys.exit(f"study2: held-out items overlap {doc['overlap']}; change heldout.seed")
    return doc


# --------------------------------------------------------------------------- main


def job_line(job: Job, gone: bool = False) -> str:
    """``[done]``, ``[todo]`` or ``[gone]`` (its model's files are lost: it cannot run)."""
    state = "done" if job.is_done() else "gone" if gone else "todo"
    return f"[{state}] motif {shlex.join(job.argv[3:])}"


def has_choice(study: Study) -> bool:
    """choice.json exists and names a candidate (the RL stages may start)."""
    path = study.choice_path
    return path.exists() and json.loads(path.read_text())["chosen"] is not None


def plan_lines(study: Study, stages: tuple[str, ...], seeds: list[int]) -> list[str]:
    """Every command the stages would run now, marked done or to do; nothing is run.

    The evaluations are listed as if every training run had finished; GRPO-B's
    wall-clock-matched checkpoints only once the runs they depend on have.
    """
    chosen = has_choice(study)
    lines: list[str] = []
    for stage in stages:
        lines.append(f"# {stage}")
        if stage == "sft":
            lines.append(job_line(sft_job(study)))
        elif stage == "choose":
            lines += [job_line(j) for j in choose_jobs(study)]
            lines.append(f"[{'done' if chosen else 'todo'}] the rule -> {study.choice_path}")
        elif stage in ("train", "eval") and not chosen:
            lines.append(f"[wait] needs {study.choice_path} (stage choose)")
        elif stage == "train":
            lines += [
                job_line(train_job(study, load_choice(study), a, s)) for s in seeds for a in ARMS
            ]
        elif stage == "eval":
            held = study.out / "heldout.json"
            lines.append(f"[{'done' if held.exists() else 'todo'}] held-out check -> {held}")
            evals = planned_evals(study, load_choice(study), seeds, plan=True)
            lines += [job_line(job, gone) for job, _, gone in evals]
            if not all(study.trained(a, s) for a in ("grpo-B", *MOTIF_ARMS) for s in seeds):
                lines.append(
                    "[wait] grpo-B's checkpoint at each MOTIF run's wall-clock, once both ran"
                )
        else:
            where = study.out if stage == "summary" else "docs/results/ and docs/results.md"
            lines.append(f"[todo] {stage}: tables from the finished evaluations -> {where}")
    return lines


def eval_env() -> dict[str, str]:
    """The evaluations' pinned fp32 kernel (studies.study2_layout.EVAL_KERNEL), unless the caller's
    environment sets one."""
    return {KERNEL_ENV: os.environ.get(KERNEL_ENV, EVAL_KERNEL)}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = study_parser("python -m studies.study2", __doc__, STAGES, "runs/study2")
    p.add_argument("--recipes", default="recipes/study2", help="study.yaml and the recipes.")
    p.add_argument("--threads", type=int, default=None, help="CPU threads per command.")
    p.add_argument(
        "--docs",
        default=None,
        help=f"Where the publish stage writes, and the published adapters are read back from "
        f"(results/adapters; default: {DOCS_DIR}).",
    )
    p.add_argument(
        "--kept",
        default=None,
        help=f"The study's resume state, committed while it runs: what later sittings need "
        f"(the cold start's adapter, the choice, trained runs' metrics and bf16 adapters not yet "
        f"published, finished evaluations), filled after each stage, copied back into --out "
        f"when missing there (default: {KEPT_DIR}).",
    )
    p.add_argument("--plan", action="store_true", help="Print every command; run nothing.")
    return p.parse_args(argv)


def restore_sitting(study: Study, kept: Path, adapters: Path) -> None:
    """A sitting's start: what ``out`` lacks of the resume state ``kept``, then of the
    published adapters under ``adapters``, copied back into it (each copy printed)."""
    for path in restore(study.out, kept):
        print(f"restored {path} from {kept}")
    for path in restore_published(study, adapters):
        print(f"restored {path} from {adapters}")


def warn_left_out(study: Study, seeds: list[int]) -> None:
    """Say on stderr which trained seeds the tables leave out (not in ``seeds``)."""
    left_out = [s for s in trained_seeds(study) if s not in seeds]
    if left_out:
        print(
            f"study2: seeds {left_out} have trained runs but are not in --seeds; the tables "
            f"and the page leave them out (pass --seeds with every seed to show)",
            file=sys.stderr,
        )


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    study = Study(Path(args.out), Path(args.recipes))
    stages = STAGES if args.stage == "all" else (args.stage,)
    kept, docs = Path(args.kept or KEPT_DIR), Path(args.docs or DOCS_DIR)
    adapters = docs / "results" / "adapters"
    restore_sitting(study, kept, adapters)
    if args.plan:
        print("\n".join(plan_lines(study, stages, args.seeds)))
        return
    study.out.mkdir(parents=True, exist_ok=True)
    logs = study.out / "logs"

    def save() -> None:
        if has_choice(study):  # trained runs' bf16 adapters first: their checkpoints are not kept
            for path in published_copies(study, args.seeds):
                print(f"bf16 copy {path} (evaluated and published)")
        for path in keep(study, kept, adapters):
            print(f"kept {path} (commit it: runs/ does not outlive the machine)")

    def run(jobs: list[Job], env: dict[str, str] | None = None) -> None:
        try:
            run_jobs(jobs, args.jobs, logs, args.threads, prog="study2", env=env)
        finally:
            save()

    if "sft" in stages:
        run([sft_job(study)])
    if "choose" in stages and not has_choice(study):
        if not sft_job(study).is_done():
            sys.exit("study2: no cold start yet; run --stage sft first (the rule measures it)")
        run(choose_jobs(study))
        print(json.dumps(write_choice(study)["chosen"]))
    if "choose" in stages:
        print(f"choice: {load_choice(study)} ({study.choice_path})")
    if "train" in stages:
        chosen = load_choice(study)
        run([train_job(study, chosen, a, s) for s in args.seeds for a in ARMS])
    if "eval" in stages:
        chosen = load_choice(study)
        print(check_heldout(study, chosen))
        for path in published_copies(study, args.seeds):
            print(f"bf16 copy {path} (evaluated and published)")
        run(eval_jobs(study, chosen, args.seeds), eval_env())
    if "summary" in stages or "publish" in stages:
        warn_left_out(study, args.seeds)
    if "summary" in stages:
        print(write_summary(study, args.seeds).read_text())
    if "publish" in stages:
        print(f"published {len(publish(study, args.seeds, docs))} files")
    save()


if __name__ == "__main__":
    main()
