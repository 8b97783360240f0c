"""Tables of the third study (studies.study3, its `summary` stage): summary.md, summary.json
and the scaling plot, from the study's eval directories and training runs' metrics.

Arithmetic on saved files only, no model: accuracies and paired differences over items and
seeds come from motif.eval.compare through studies.tables; step times, the training-time
held-out curve and samples-to-reach from the runs' metrics (motif.runs.training).
Imports studies.study3_layout and the shared modules, never studies.study3.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

from motif.eval.compare import samples_to_reach
from motif.report.loading import EvalRun
from motif.report.tables import handover_table
from motif.runs.eval import read_summary
from motif.runs.training import metrics_by_step, step_seconds
from studies.study3_layout import (
    MULTI_ROUND,
    PROTOCOLS,
    Study,
    protocol_label,
    scaled,
    wall_capped,
    wall_step,
)
from studies.tables import (
    MISSING,
    T_NOTE,
    accuracy,
    cell,
    diff_cell,
    difference,
    pct,
    rounds_table,
    samples_per_step,
    seeds_mark,
)

REACH_MARGIN = 0.05
"""The cost table's first target: the cold start's accuracy in the arm's own protocol plus 5
points."""
LONG_REFERENCE = "grpo-nB"
"""GRPO with one context of n x B (the unbounded reference): question 2's comparison (each arm
and it in the same protocol) and the cost table's second target (its training-time check at
the sample-matched step)."""
CHECK_KEY = "heldout/accuracy"
TIMING_KEYS = ("round1_generation_seconds", "continuation_seconds", "optimisation_seconds")
"""Where a training step's seconds go (motif.training's per-step timings): round-1 sampling,
the later rounds' rollouts (rewards), the rest (the loss's forward and backward passes)."""
TOKEN_KEYS = ("round1_tokens", "continuation_tokens")
"""New tokens a training step generated: round-1 completions, later rounds' rollouts."""
SCALING_PLOT = "scaling.png"


def seeds_trained(study: Study, arm: str, seeds: list[int]) -> list[int]:
    return [s for s in seeds if study.trained(arm, s)]


def main_table(study: Study, seeds: list[int]) -> str:
    """Accuracy (%) of each model in every protocol at n units: mean ± SE over seeds."""
    n, b = study.rounds, study.budget
    head = " | ".join(protocol_label(p, n, b) for p in PROTOCOLS)
    lines = [f"| model | own | {head} |", "|---|---|" + "---:|" * len(PROTOCOLS)]
    cells = [cell([study.eval_dir("sft", p)]) for p in PROTOCOLS]
    lines.append(f"| cold start (`sft`) | – | {' | '.join(cells)} |")
    for arm in study.arms:
        names = [f"{arm}-s{s}@{study.steps}" for s in seeds]
        cells = [cell([study.eval_dir(m, p) for m in names]) for p in PROTOCOLS]
        own = protocol_label(study.own(arm), n, b)
        lines.append(f"| `{arm}`, step {study.steps} | {own} | {' | '.join(cells)} |")
    return "\n".join(lines)


def own_differences(study: Study, seeds: list[int], reference: str) -> str:
    """Each arm − ``reference`` (``sft``: the cold start), each in its own protocol, paired over
    the held-out items: per seed and over seeds (points)."""
    lines = ["| A − B | own protocols | per seed |", "|---|---:|---|"]
    for arm in study.arms:
        if arm == reference:
            continue
        found = []
        for s in seeds:
            a = study.eval_dir(f"{arm}-s{s}@{study.steps}", study.own(arm))
            other = "sft" if reference == "sft" else f"{reference}-s{s}@{study.steps}"
            own = study.own(arm) if reference == "sft" else study.own(reference)
            found.append(difference(a, study.eval_dir(other, own)))
        per_seed = ", ".join(diff_cell([f]) for f in found)
        lines.append(f"| `{arm}` − `{reference}` | {diff_cell(found)} | {per_seed} |")
    return "\n".join(lines)


def protocol_differences(study: Study, seeds: list[int], reference: str) -> str:
    """Each arm − ``reference`` in every protocol (both models in the same protocol), paired
    over the held-out items, mean over seeds (points)."""
    n, b = study.rounds, study.budget
    head = " | ".join(protocol_label(p, n, b) for p in PROTOCOLS)
    lines = [f"| A − B | {head} |", "|---|" + "---:|" * len(PROTOCOLS)]
    for arm in study.arms:
        if arm == reference:
            continue
        cells = []
        for p in PROTOCOLS:
            pairs = [
                (f"{arm}-s{s}@{study.steps}", f"{reference}-s{s}@{study.steps}") for s in seeds
            ]
            found = [difference(study.eval_dir(a, p), study.eval_dir(r, p)) for a, r in pairs]
            cells.append(diff_cell(found))
        lines.append(f"| `{arm}` − `{reference}` | {' | '.join(cells)} |")
    return "\n".join(lines)


def wall_table(study: Study, seeds: list[int]) -> str:
    """Each arm at the reference arm's training wall-clock, in its own protocol."""
    ref = study.config["wall_reference"]
    lines = [
        f"| arm | step at `{ref}`'s wall-clock, per seed | own protocol (%) "
        f"| − `{ref}`, step {study.steps} (points, paired, own protocols) | note |",
        "|---|---|---:|---:|---|",
    ]
    for arm in study.arms:
        done = [s for s in seeds_trained(study, arm, seeds) if study.trained(ref, s)]
        steps = {s: wall_step(study, arm, s) for s in done}
        names = [f"{arm}-s{s}@{steps[s]}" for s in done]
        capped = [s for s in done if wall_capped(study, arm, s)]
        note = f"all steps fit (seeds {capped}): more would have" if capped else ""
        at = ", ".join(str(steps[s]) for s in done) or MISSING
        own = cell([study.eval_dir(m, study.own(arm)) for m in names]) if names else MISSING
        pairs = [
            (
                study.eval_dir(m, study.own(arm)),
                study.eval_dir(f"{ref}-s{s}@{study.steps}", study.own(ref)),
            )
            for m, s in zip(names, done, strict=True)
        ]
        paired = diff_cell([difference(a, b) for a, b in pairs]) if pairs else MISSING
        if done and len(done) < len(seeds):  # a seed not trained has no wall-clock step yet
            own, paired = (f"{c}{seeds_mark(done, seeds)}" for c in (own, paired))
        if arm == ref:
            paired = "(the reference)"
        lines.append(f"| `{arm}` | {at} | {own} | {paired} | {note} |")
    return "\n".join(lines)


def round_rows(study: Study, seeds: list[int]) -> list[tuple[str, Path]]:
    """(label, eval directory) of the per-round tables: the cold start in every protocol of
    several rounds or chunks, each arm's sample-matched model in its own one, and the arms
    trained in one pass in MOTIF's rounds (bounded inference of a model trained without)."""
    rows = [(f"cold start, {p}", study.eval_dir("sft", p)) for p in MULTI_ROUND]
    for arm in study.arms:
        protocol = study.own(arm) if study.own(arm) in MULTI_ROUND else "summary"
        for s in seeds:
            name = f"{arm}-s{s}@{study.steps}"
            rows.append((f"{name}, {protocol}", study.eval_dir(name, protocol)))
    return rows


def handover_rows(study: Study, seeds: list[int]) -> str:
    """The hand-over watch (motif.report.tables.handover_table) of :func:`round_rows`' finished
    evaluations whose rounds hand a state on; a line saying so when none has."""
    runs = [
        EvalRun(path, summary, label)
        for label, path in round_rows(study, seeds)
        if "metrics" in (summary := read_summary(path) or {})
    ]
    return handover_table(runs) or "(no finished evaluation hands a state on yet)"


def scaling_rows(study: Study, seeds: list[int]) -> list[tuple[str, str, list[str]]]:
    """(label, protocol, model names) of the scaling curve: each arm, then the cold start in
    each protocol an arm is scaled in."""
    rows = [
        (f"`{arm}`", scaled(study.own(arm)), [f"{arm}-s{s}@{study.steps}" for s in seeds])
        for arm in study.arms
    ]
    protocols = sorted({p for _, p, _ in rows}, key=PROTOCOLS.index)
    return rows + [(f"cold start, {p}", p, ["sft"]) for p in protocols]


def _mean_of(dirs: list[Path], read) -> float | None:
    """The mean over the finished evaluations in ``dirs`` of ``read(metrics)`` (a summary
    without the metric, e.g. steps of a task that has none, counts as missing)."""
    values = []
    for directory in dirs:
        doc = read_summary(directory)
        try:
            values.append(read(doc["metrics"]) if doc is not None else None)
        except (KeyError, TypeError, ZeroDivisionError):
            continue
    found = [v for v in values if v is not None]
    return statistics.fmean(found) if found else None


def _mean_accuracy(dirs: list[Path]) -> float | None:
    """The mean accuracy over the finished evaluations in ``dirs`` (None: none finished)."""
    found = [a for d in dirs if (a := accuracy(d)) is not None]
    return statistics.fmean(found) if found else None


def scaling_table(study: Study, seeds: list[int]) -> tuple[str, dict]:
    """Accuracy (%), then steps written per item and tokens per item, against the units;
    the table and its numbers (label -> units -> accuracy) for the plot."""
    units = study.config["scaling"]["rounds"]
    head = " / ".join(f"{u}" for u in units)
    first, last = units[0], units[-1]
    lines = [
        f"| model | protocol | accuracy (%) at {head} units | {last} − {first} units (points, "
        "paired) | steps right / item | tokens / item |",
        "|---|---|---|---:|---|---|",
    ]
    curves: dict[str, dict[int, float | None]] = {}
    for label, protocol, names in scaling_rows(study, seeds):
        dirs = {u: [study.scaling_dir(m, protocol, u) for m in names] for u in units}
        acc = " / ".join(cell(dirs[u]) for u in units)
        gain = diff_cell([difference(a, b) for a, b in zip(dirs[last], dirs[first], strict=True)])
        steps = [_mean_of(dirs[u], lambda m: m["steps"]["right"] / m["problems"]) for u in units]
        tokens = [_mean_of(dirs[u], lambda m: m["tokens"]["generated_mean"]) for u in units]
        fmt = " / ".join(MISSING if v is None else f"{v:.1f}" for v in steps)
        tok = " / ".join(MISSING if v is None else f"{v:.0f}" for v in tokens)
        lines.append(f"| {label} | {protocol} | {acc} | {gain} | {fmt} | {tok} |")
        curves[label] = {u: _mean_accuracy(dirs[u]) for u in units}
    return "\n".join(lines), curves


def plot_scaling(curves: dict, path: Path) -> Path | None:
    """Accuracy against units, one line per model; None when nothing is measured yet."""
    from motif.plotting import pyplot, save_figure  # matplotlib: only when plotting

    drawn = {k: v for k, v in curves.items() if any(x is not None for x in v.values())}
    if not drawn:
        return None
    fig, ax = pyplot().subplots(figsize=(6.5, 4))
    for label, curve in drawn.items():
        points = sorted((u, a) for u, a in curve.items() if a is not None)
        ax.plot([u for u, _ in points], [100 * a for _, a in points], marker="o", label=label)
    ax.set_xlabel("units of B new tokens (rounds; tail: its chunks' total / B; one pass: / B)")
    ax.set_ylabel("accuracy on 12-20-term chains (%)")
    ax.legend(fontsize=7)
    return save_figure(fig, path)


def cost_table(study: Study, seeds: list[int]) -> str:
    """Per arm, means over its trained seeds: seconds per step and where they go
    (:data:`TIMING_KEYS`), new tokens generated per step (:data:`TOKEN_KEYS`), round-1 samples
    per step; then, per seed, the round-1 samples until the training-time held-out check
    first reached the cold start + 5 points in the arm's own protocol (the cold start scored
    on the check's own items) and :data:`LONG_REFERENCE`'s check at the sample-matched step.
    Only checks up to the sample-matched step count (every arm's same 320 samples; checks
    every ``heldout_every`` steps). 50 items; the check decodes in training's rollout dtype,
    the baseline in fp32: a rough measure."""
    ref, steps = LONG_REFERENCE, study.steps
    lines = [
        "| arm | s/step: all (round 1 / later rounds / optimisation) | new tokens/step "
        "(round 1 + later rounds) | round-1 samples/step | samples to cold start + 5 "
        f"| samples to `{ref}`'s step-{steps} check (its value, %) |",
        "|---|---|---|---:|---|---|",
    ]
    for arm in study.arms:
        done = seeds_trained(study, arm, seeds)
        base = accuracy(study.watch_dir(study.own(arm)))
        target = None if base is None else base + REACH_MARGIN
        reach = [f"s{s}: {_reach(study, arm, s, target)}" for s in done]
        refs = [_check_at(study, ref, s, steps) for s in done]
        versus = [
            f"s{s}: {_reach(study, arm, s, t)} ({pct(t)})" for s, t in zip(done, refs, strict=True)
        ]
        cells = [_seconds_cell(study, arm, done), _tokens_cell(study, arm, done)]
        cells += [str(samples_per_step(study.recipe(arm))), ", ".join(reach), ", ".join(versus)]
        lines.append(f"| `{arm}` | " + " | ".join(c or MISSING for c in cells) + " |")
    note = (
        f"Samples: per trained seed (s1: seed 1); 'not reached': not by step {steps}, the "
        "sample-matched step."
    )
    return "\n".join(lines) + "\n\n" + note


def _per_step(study: Study, arm: str, seeds: list[int], key: str) -> float | None:
    """The mean over ``seeds``' logged steps of ``key`` (None: never logged)."""
    values = [
        row[key]
        for s in seeds
        for row in metrics_by_step(study.run(arm, s)).values()
        if row.get(key) is not None
    ]
    return statistics.fmean(values) if values else None


def _seconds_cell(study: Study, arm: str, seeds: list[int]) -> str:
    times = [statistics.fmean(step_seconds(study.run(arm, s)).values()) for s in seeds]
    if not times:
        return MISSING
    parts = [_per_step(study, arm, seeds, k) for k in TIMING_KEYS]
    split = " / ".join(MISSING if v is None else f"{v:.1f}" for v in parts)
    return f"{statistics.fmean(times):.1f} ({split})"


def _tokens_cell(study: Study, arm: str, seeds: list[int]) -> str:
    parts = [_per_step(study, arm, seeds, k) for k in TOKEN_KEYS]
    if parts[0] is None:
        return MISSING
    later = MISSING if parts[1] is None else f"{parts[1]:.0f}"
    return f"{parts[0] + (parts[1] or 0.0):.0f} ({parts[0]:.0f} + {later})"


def _check_at(study: Study, arm: str, seed: int, step: int) -> float | None:
    """``arm``'s training-time check at ``step`` of ``seed`` (None: not run or not logged)."""
    return metrics_by_step(study.run(arm, seed)).get(step, {}).get(CHECK_KEY)


def _reach(study: Study, arm: str, seed: int, target: float | None) -> str:
    """Round-1 samples until ``arm``'s check first reached ``target``, as a cell."""
    if target is None:
        return MISSING
    curve = [
        (step, row[CHECK_KEY])
        for step, row in metrics_by_step(study.run(arm, seed)).items()
        if CHECK_KEY in row and step <= study.steps
    ]
    found = samples_to_reach(curve, target, samples_per_step(study.recipe(arm)))
    return "not reached" if found is None else str(found)


def write_summary(study: Study, seeds: list[int]) -> Path:
    """summary.md (and summary.json, the scaling numbers) under ``study.out``; its path."""
    scaling, curves = scaling_table(study, seeds)
    plot = plot_scaling(curves, study.out / SCALING_PLOT)
    parts = [
        "# Third study: summary",
        f"Seeds {seeds}; held-out items: {study.config['heldout']['size']}; accuracy: mean ± SE "
        "over seeds (min–max), or ± SE over items for one seed; a paired difference over seeds: "
        f"± SE over seeds (the items' SE; range); {T_NOTE}.",
        "## Every model in every protocol (sample-matched step)",
        main_table(study, seeds),
        "## Paired differences in each arm's own protocol (points)",
        own_differences(study, seeds, study.config["wall_reference"]),
        own_differences(study, seeds, "sft"),
        own_differences(study, seeds, LONG_REFERENCE),
        "## Paired differences in each protocol (points)",
        protocol_differences(study, seeds, study.config["wall_reference"]),
        f"Bounded-context training against bounded-context inference of `{LONG_REFERENCE}` "
        "(trained in one context of n x B): each arm − it, both in the same protocol.",
        protocol_differences(study, seeds, LONG_REFERENCE),
        "## The same wall-clock",
        wall_table(study, seeds),
        "## Round by round (sample-matched step)",
        rounds_table(round_rows(study, seeds)),
        "## The hand-over watch (rounds that hand a summary on)",
        handover_rows(study, seeds),
        "## More rounds than trained (longer chains)",
        scaling,
        f"![scaling]({SCALING_PLOT})" if plot else "(no scaling evaluation yet)",
        "## Cost",
        cost_table(study, seeds),
    ]
    (study.out / "summary.json").write_text(json.dumps({"scaling": curves}, indent=1) + "\n")
    path = study.out / "summary.md"
    path.write_text("\n\n".join(parts) + "\n")
    return path
