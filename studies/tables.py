"""How the studies' tables write a number and a cell (studies.replicate_summary,
studies.study2_summary, studies.study3_summary): motif.display's one format, with the studies'
marks for what has no value, and the cells read from eval directories (accuracy over the
seeds, paired differences) through motif.eval.compare.

Imports no study.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from pathlib import Path

from motif.display import pct as display_pct
from motif.eval.compare import NOT_ESTIMABLE, compare_runs, load_scores, mean_se, over_seeds
from motif.runs.eval import read_summary
from motif.runs.layout import SUMMARY_FILE

MISSING = "—"
"""A cell whose evaluation or run has not finished (or has nothing to count): an em dash."""
T_NOTE = (
    "with 2 seeds a 95% interval is ±12.7 SE, with 3 ±4.3 SE (Student's t, 1 and 2 degrees "
    "of freedom)"
)
"""How to read a standard error over 2 or 3 training seeds."""


def pct(value: float | None) -> str:
    """A fraction in percent with one decimal (0.1234 -> ``12.3``); :data:`MISSING` for None."""
    return display_pct(value, missing=MISSING)


def points(value: float | None) -> str:
    """A standard error (a fraction) in points with one decimal; ``n/a`` (motif.eval.compare's
    NOT_ESTIMABLE) where it cannot be estimated (None)."""
    return display_pct(value, missing=NOT_ESTIMABLE)


def evaluated(path: Path) -> bool:
    """The eval directory ``path`` is finished (its summary.json is written last)."""
    return (path / SUMMARY_FILE).exists()


def accuracy(path: Path) -> float | None:
    """Held-out accuracy of an eval directory (None: not run yet)."""
    if not evaluated(path):
        return None
    return statistics.fmean(load_scores(path).scores.values())


def cell(paths: list[Path]) -> str:
    """One run as ``p ± se`` (items); several seeds as ``mean ± se (min–max)`` with the
    standard error over seeds (motif.eval.compare.over_seeds); none run: ``—``."""
    runs = [load_scores(p) for p in paths if evaluated(p)]
    if len(runs) == 1:
        p, se = mean_se(list(runs[0].scores.values()))
        return f"{pct(p)} ± {points(se)}{seeds_mark(runs, paths)}"
    if not runs:
        return "—"
    s = over_seeds([statistics.fmean(r.scores.values()) for r in runs])
    return f"{pct(s.mean)} ± {points(s.se)} ({pct(s.low)}–{pct(s.high)}){seeds_mark(runs, paths)}"


def difference(a: Path, b: Path) -> tuple[float, float | None] | None:
    """Paired ``a − b`` and its standard error over the same items (None: not both run)."""
    if not (evaluated(a) and evaluated(b)):
        return None
    c = compare_runs(load_scores(a), load_scores(b))
    return c.difference, c.se


def diff_cell(found: list[tuple[float, float | None] | None]) -> str:
    """One seed: ``+d ± se`` (paired, over the items); several: their mean ± the standard error
    over seeds, the items' part (the same items for every seed: not in the seeds' error; see
    motif.eval.compare.over_seeds) and their range."""
    done = [f for f in found if f is not None]
    if not done:
        return "—"
    s = over_seeds([d for d, _ in done], [e for _, e in done])
    if len(done) == 1:
        return f"{100 * s.mean:+.1f} ± {points(s.item_se)}{seeds_mark(done, found)}"
    spread = f"{100 * s.low:+.1f} to {100 * s.high:+.1f}"
    partial = seeds_mark(done, found)
    return f"{100 * s.mean:+.1f} ± {points(s.se)} (items ± {points(s.item_se)}; {spread}){partial}"


def seeds_mark(done: list, wanted: list) -> str:
    """`` (k of n seeds)`` when only some of the seeds have finished, else nothing."""
    return f" ({len(done)} of {len(wanted)} seeds)" if len(done) < len(wanted) else ""


def samples_per_step(recipe: dict) -> int:
    """Round-1 samples per optimiser step of a training recipe (as motif.report.training):
    prompts per device x replies per prompt x gradient accumulation."""
    accumulation = int(recipe.get("gradient_accumulation_steps") or 1)
    return int(recipe["prompts_per_device"]) * int(recipe["num_generations"]) * accumulation


def recorded_skips(path: Path) -> float | None:
    """The share of an eval's trajectories that box an answer with a step skipped, as its
    summary.json records it (``skipped_steps``; None: not recorded, or no checker)."""
    return read_summary(path)["metrics"].get("skipped_steps")


def rounds_table(
    rows: list[tuple[str, Path]], skips: Callable[[Path], float | None] = recorded_skips
) -> str:
    """Per round (or chunk) of each finished eval in ``rows`` (label, eval directory): the
    accuracy read after it, fixed / broken in the next, the state handed over right (rounds
    that hand one on), steps right and the step-skipping rate (``skips``), from its
    summary.json (motif.eval.metrics). Unfinished evaluations are left out."""
    lines = [
        "| model | accuracy after round 1..n | fixed / broken, round r → r+1 "
        "| state handed over right, after round 1..n−1 | steps right | skips a step |",
        "|---|---|---|---|---:|---:|",
    ]
    for label, path in rows:
        metrics = (read_summary(path) or {}).get("metrics")
        if not metrics:
            continue
        r = metrics["rounds"]
        moves = ", ".join(
            f"{pct(t['fixed_rate'])} / {pct(t['broken_rate'])}" for t in r["transitions"]
        )
        handed = (r.get("state_right") or [])[:-1]
        states = (
            ", ".join(pct(v) for v in handed) if any(v is not None for v in handed) else MISSING
        )
        acc = ", ".join(pct(v) for v in r["accuracy"])
        lines.append(
            f"| {label} | {acc} | {moves or MISSING} | {states} "
            f"| {pct(metrics.get('step_accuracy'))} | {pct(skips(path))} |"
        )
    return "\n".join(lines)
