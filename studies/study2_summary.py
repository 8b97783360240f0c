"""Tables of the second study (studies.study2, its `summary` stage).

Reads the study's eval directories (samples.jsonl, summary.json) and training runs
(metrics.jsonl) with the package's readers (motif.runs), and choice.json; writes summary.md
and summary.json (published by studies.study2_publish). Arithmetic on saved files only, no
model: paired differences, standard errors and samples-to-reach come from motif.eval.compare
(also `motif compare`), the step-skipping rate from motif.tasks (items rebuilt by
reasoning-gym).
Imports studies.study2_layout and the shared modules, never studies.study2.
"""

from __future__ import annotations

import functools
import json
import statistics
from pathlib import Path

from motif.data import load_problems
from motif.eval.compare import (
    samples_to_reach,
)
from motif.runs.eval import read_json, read_samples, read_summary
from motif.runs.layout import (
    EVAL_CONFIG_FILE,
)
from motif.runs.training import metrics_by_step, step_seconds
from motif.tasks import item_for, skips_steps_in, task_kind
from studies import tables
from studies.study2_layout import (
    ARMS,
    MOTIF_ARMS,
    OWN,
    PROTOCOLS,
    Study,
    load_choice,
    protocol_label,
    terms_label,
    wall_capped,
    wall_step,
)
from studies.tables import T_NOTE, accuracy, cell, diff_cell, difference, pct, samples_per_step

LABELS = {
    "grpo-B": "GRPO, 1 round of B",
    "grpo-nB": "GRPO, 1 round of n x B (unbounded reference)",
    "motif-first": "MOTIF, credit to round 1",
    "motif-all": "MOTIF, credit to every round",
}


def choice_table(choice: dict) -> str:
    """The candidates' measurements on the development split (%) and which met the rule."""
    lines = [
        "| terms | B | one round of B: cut | one round of B: right | n rounds of B: right "
        "| n rounds: steps right | one round of n x B: right | meets the rule |",
        "|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for c in choice["candidates"]:
        chosen = {"terms": c["terms"], "budget": c["budget"]} == choice["chosen"]
        lines.append(
            f"| {terms_label(c['terms'])} | {c['budget']} | {pct(c['cut_rate'])} | {pct(c['one_accuracy'])} "
            f"| {pct(c['accuracy'])} | {pct(c['step_accuracy'])} | {pct(c['long_accuracy'])} "
            f"| {'**yes (chosen)**' if chosen else 'yes' if c['meets_rule'] else 'no'} |"
        )
    return "\n".join(lines)


def model_rows(study: Study, seeds: list[int]) -> list[tuple[str, list[str]]]:
    """(label, eval names over the seeds) of the main table."""
    steps = study.steps
    rows = [("cold start (`sft`)", ["sft"])]
    for arm in ARMS:
        rows.append(
            (f"{LABELS[arm]} (`{arm}`), step {steps}", [f"{arm}-s{s}@{steps}" for s in seeds])
        )
    final = study.grpo_steps
    rows.append(
        (f"{LABELS['grpo-B']}, final (step {final})", [f"grpo-B-s{s}@{final}" for s in seeds])
    )
    walls = [wall_step(study, "motif-first", s) if both_finished(study, s) else None for s in seeds]
    found = [(s, w) for s, w in zip(seeds, walls, strict=True) if w is not None]
    label = "GRPO, 1 round of B, at MOTIF (round 1)'s wall-clock"
    if found:
        label += " (steps " + ", ".join(str(w) for _, w in found) + ")"
    rows.append((label, [f"grpo-B-s{s}@{w}" for s, w in found]))
    return rows


def both_finished(study: Study, seed: int, arm: str = "motif-first") -> bool:
    """GRPO-B and ``arm`` of ``seed`` both ran all their steps (a wall-clock match exists)."""
    return study.trained(arm, seed) and study.trained("grpo-B", seed)


def main_table(study: Study, seeds: list[int], chosen: dict) -> str:
    n, b = study.rounds, chosen["budget"]
    head = " | ".join(f"{protocol_label(p, n, b)} (%)" for p in PROTOCOLS)
    lines = [f"| model | {head} |", "|---|---:|---:|---:|"]
    for label, names in model_rows(study, seeds):
        cells = [cell([study.eval_dir(name, p) for name in names]) for p in PROTOCOLS]
        lines.append(f"| {label} | {' | '.join(cells)} |")
    return "\n".join(lines)


PAIRS = (
    ("motif-first", "grpo-B"),
    ("motif-all", "grpo-B"),
    ("motif-all", "motif-first"),
    ("motif-first", "grpo-nB"),
    ("motif-all", "grpo-nB"),
    ("motif-first", "sft"),
    ("motif-all", "sft"),
    ("grpo-nB", "sft"),
)
"""A − B rows of the paired table; B = ``sft``: what training changed, the cold start scored
in A's own protocol in the first column."""


def paired_table(study: Study, seeds: list[int], chosen: dict) -> str:
    """A − B in points per pair of arms, per seed and over seeds; own protocols, then each."""
    n, b, steps = study.rounds, chosen["budget"], study.steps
    head = " | ".join(protocol_label(p, n, b) for p in PROTOCOLS)
    lines = [
        f"| A − B | seed | each in its own protocol | {head} |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for a, g in PAIRS:
        per_seed = {}
        for s in seeds:
            ma, mb = f"{a}-s{s}@{steps}", "sft" if g == "sft" else f"{g}-s{s}@{steps}"
            own = difference(study.eval_dir(ma, OWN[a]), study.eval_dir(mb, OWN.get(g, OWN[a])))
            same = [difference(study.eval_dir(ma, p), study.eval_dir(mb, p)) for p in PROTOCOLS]
            per_seed[s] = [own, *same]
            lines.append(f"| {a} − {g} | {s} | {' | '.join(diff_cell([f]) for f in per_seed[s])} |")
        measured = [row for row in per_seed.values() if any(f is not None for f in row)]
        if len(measured) > 1:
            cells = [diff_cell([row[i] for row in measured]) for i in range(4)]
            lines.append(f"| {a} − {g} | mean of {len(measured)} | {' | '.join(cells)} |")
    return "\n".join(lines)


def wall_table(study: Study, seeds: list[int]) -> str:
    """MOTIF − GRPO-B at the same training wall-clock (GRPO-B's matching checkpoint)."""
    lines = [
        "| A − B | seed | GRPO-B step | own protocols | n rounds of B |",
        "|---|---|---:|---:|---:|",
    ]
    for arm in MOTIF_ARMS:
        for s in seeds:
            if not both_finished(study, s, arm):
                continue
            wall, m = wall_step(study, arm, s), f"{arm}-s{s}@{study.steps}"
            g = f"grpo-B-s{s}@{wall}"
            own = difference(study.eval_dir(m, "rounds"), study.eval_dir(g, "one"))
            same = difference(study.eval_dir(m, "rounds"), study.eval_dir(g, "rounds"))
            step = f"{wall} (all its steps: capped)" if wall_capped(study, arm, s) else str(wall)
            lines.append(
                f"| {arm} − grpo-B | {s} | {step} | {diff_cell([own])} | {diff_cell([same])} |"
            )
    return "\n".join(lines)


def rounds_table(study: Study, seeds: list[int]) -> str:
    """Per round of the n-round protocol (studies.tables.rounds_table): the cold start, each
    MOTIF arm and GRPO at their final steps."""
    names = ["sft", *(f"{a}-s{s}@{study.steps}" for a in ARMS for s in seeds)]
    names += [f"grpo-B-s{s}@{study.grpo_steps}" for s in seeds]
    return tables.rounds_table([(n, study.eval_dir(n, "rounds")) for n in names], skip_rate)


def skip_rate(path: Path) -> float | None:
    """Share of an eval's trajectories that box an answer with a step skipped
    (motif.tasks.skips_steps_in, the --heldout-every diagnostic): from its summary, or, for
    evaluations written before motif eval recorded it, from its stored rows and the items
    rebuilt from its eval_config.json (None: not a task with checkers)."""
    recorded, config = read_summary(path)["metrics"], read_json(path / EVAL_CONFIG_FILE)
    if recorded.get("skipped_steps") is not None or config is None:
        return recorded.get("skipped_steps")
    data = config["data"]
    if task_kind(str(data.get("benchmark"))) is None:
        return None
    items = task_items(json.dumps(data, sort_keys=True))
    rows = read_samples(path).rows
    flags = [
        skips_steps_in(items[r["question"]], [x["text"] for x in r["rounds"]], r["carry_over"])
        for r in rows
        if items.get(r["question"]) is not None
    ]
    return statistics.fmean(flags) if flags else None


@functools.cache
def task_items(data: str) -> dict:
    """question -> task item (None: no checker) of a reasoning-gym eval's ``data`` section."""
    d = json.loads(data)
    problems = load_problems(
        f"reasoning_gym:{d['benchmark']}",
        task_config=d["task_config"],
        seed=d["data_seed"],
        limit=d["size"],
    )
    return {p.question: item_for(p.question, p.gold, p.meta) for p in problems}


def samples_table(study: Study, seeds: list[int]) -> str:
    """Training samples MOTIF needed to reach each GRPO arm's final accuracy on the held-out
    set, against the samples that arm trained on (the paper's claim: MOTIF reached GRPO's
    accuracy with 15% of its samples), with the paired margin (points ± SE over the items) of
    the checkpoint that reached it. GRPO-B's target is its better protocol at the same largest
    context (one round of B or n rounds of B); GRPO-nB's is its own protocol (one round of
    n x B). MOTIF's curve is in n rounds of B and starts at step 0, the cold start: when that
    is already above a target, the answer is 0 samples."""
    steps, every = study.steps, int(study.config["curve_every"])
    per_step = samples_per_step(study.recipe("motif-first"))
    refs = {"grpo-B": study.grpo_steps, "grpo-nB": steps}
    budget = {arm: n * samples_per_step(study.recipe(arm)) for arm, n in refs.items()}
    points = [*range(every, steps, every), steps]
    head = " | ".join(f"step {s}" for s in points)
    ref_head = " | ".join(
        f"{arm} final (step {n}, {budget[arm]} samples) | samples to reach it (margin)"
        for arm, n in refs.items()
    )
    lines = [
        f"| arm | seed | step 0 (cold start) | {head} | {ref_head} |",
        "|---|---|" + "---:|" * (len(points) + 1 + 2 * len(refs)),
    ]
    start = study.eval_dir("sft", "rounds")
    for arm in MOTIF_ARMS:
        for s in seeds:
            dirs = {0: start} | {p: study.eval_dir(f"{arm}-s{s}@{p}", "rounds") for p in points}
            curve = {p: (d, accuracy(d)) for p, d in dirs.items()}
            if all(a is None for p, (_, a) in curve.items() if p):
                continue
            cells = [pct(a) for _, a in curve.values()]
            for ref in refs:
                target = _final_target(study, ref, s)
                reach = _reach_cell(curve, target, per_step, budget[ref], ref)
                cells += [pct(target and target[1]), reach]
            lines.append(f"| {arm} | {s} | {' | '.join(cells)} |")
    return "\n".join(lines)


Scored = tuple[Path, float | None]
"""An eval directory and its accuracy (None: not run yet)."""


def _final_target(study: Study, arm: str, seed: int) -> Scored | None:
    """The eval of a GRPO arm's final model to reach: GRPO-B's better protocol at B (None
    until both are evaluated: the better one is not known before), GRPO-nB's own protocol."""
    step = study.grpo_steps if arm == "grpo-B" else study.steps
    protocols = ("one", "rounds") if arm == "grpo-B" else (OWN[arm],)
    paths = [study.eval_dir(f"{arm}-s{seed}@{step}", p) for p in protocols]
    scored = [(p, accuracy(p)) for p in paths]
    if any(a is None for _, a in scored):
        return None
    return max(scored, key=lambda x: x[1])


def _reach_cell(
    curve: dict[int, Scored], target: Scored | None, per_step: int, budget: int, ref: str
) -> str:
    """A "samples to reach it (margin)" cell of the samples table (see samples_table)."""
    if target is None:
        return "— (final model not evaluated)"
    reach = samples_to_reach([(p, a) for p, (_, a) in curve.items()], target[1], per_step)
    if reach is None:
        return "not reached"
    margin = diff_cell([difference(curve[reach // per_step][0], target[0])])
    return reach_text(reach, budget, ref, margin)


def reach_text(reach: int, budget: int, ref: str, margin: str) -> str:
    """``reach`` samples against ``ref``'s ``budget``, with the reaching checkpoint's margin."""
    if reach == 0:
        return f"0: the cold start is already above it ({margin})"
    return f"{reach} ({reach / budget:.1%} of {ref}'s; {margin})"


def training_table(study: Study, seeds: list[int]) -> str:
    """Per run: steps, wall-clock, reward, groups without signal, and the held-out check
    during training (``heldout/accuracy`` and ``heldout/skipped_steps`` at each check)."""
    lines = [
        "| run | steps | wall-clock (min) | s/step | reward, last 5 steps | zero-variance "
        "groups | held-out check: step: right % / skips a step % |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for arm in ARMS:
        for s in seeds:
            rows, secs = metrics_by_step(study.run(arm, s)), step_seconds(study.run(arm, s))
            rewards = [rows[k]["reward"] for k in sorted(rows) if "reward" in rows[k]]
            if not rewards:
                continue
            zero = statistics.fmean(r.get("frac_reward_zero_std", 0.0) for r in rows.values())
            checks = ", ".join(
                f"{k}: {pct(r['heldout/accuracy'])} / {pct(r.get('heldout/skipped_steps'))}"
                for k, r in sorted(rows.items())
                if "heldout/accuracy" in r
            )
            lines.append(
                f"| {arm}-s{s} | {max(secs, default=0)} | {sum(secs.values()) / 60:.0f} | "
                f"{statistics.fmean(secs.values()) if secs else 0:.1f} | "
                f"{statistics.fmean(rewards[-5:]):.2f} | {zero:.0%} | {checks or '—'} |"
            )
    return "\n".join(lines)


def write_summary(study: Study, seeds: list[int]) -> Path:
    """summary.md (the generated block of docs/results.md) and summary.json."""
    chosen = load_choice(study)
    choice = json.loads(study.choice_path.read_text())
    n, b = study.rounds, chosen["budget"]
    held = study.config["heldout"]
    parts = [
        f"Task: {terms_label(chosen['terms'])}-term chains of one-digit additions; B = {b} new tokens per "
        f"round, n = {n} rounds; held-out: {held['size']} items (reasoning-gym seed "
        f"{held['seed']}), greedy; seeds {', '.join(map(str, seeds))}.",
        f"#### The choice, fixed before any RL run (development split: {choice['dev']['size']} items, seed "
        f"{choice['dev']['seed']}; rule: at least {pct(choice['rule']['min_cut'])}% of one-round "
        f"replies cut, n-round accuracy {pct(choice['rule']['accuracy'][0])}–"
        f"{pct(choice['rule']['accuracy'][1])}%)",
        choice_table(choice),
        "#### Held-out accuracy (greedy pass@1, %; one seed: ± SE over the items; several: mean ± SE "
        f"over the seeds (min–max); {T_NOTE})",
        main_table(study, seeds, chosen),
        "#### Paired differences, same samples (points; per seed ± paired SE over the items; mean: "
        f"± SE over the seeds, the items' SE, range; {T_NOTE}; − sft: the cold start, in A's "
        "protocol in the first column)",
        paired_table(study, seeds, chosen),
        "#### Paired differences, same training wall-clock (points)",
        wall_table(study, seeds),
        f"#### Round by round ({n} rounds of {b}; %)",
        rounds_table(study, seeds),
        "#### Samples to reach GRPO's final accuracy (MOTIF's held-out curve, n rounds of B; %)",
        samples_table(study, seeds),
        "#### Training and the held-out check during training",
        training_table(study, seeds),
        "Raw outputs (choice, eval summaries, per-step metrics): [results/study2/](results/study2/); "
        "the adapters and the `motif eval` commands that re-score them: "
        "[results/adapters/](results/adapters/README.md).",
    ]
    path = study.out / "summary.md"
    path.write_text("\n\n".join(parts) + "\n")
    doc = {"choice": choice, "heldout": {}}
    for label, names in model_rows(study, seeds):
        doc["heldout"][label] = {
            p: {m: accuracy(study.eval_dir(m, p)) for m in names} for p in PROTOCOLS
        }
    (study.out / "summary.json").write_text(json.dumps(doc, indent=2) + "\n")
    return path
