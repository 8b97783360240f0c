"""The Markdown tables of ``motif report``: pass@1 by run and benchmark, details, training."""

from __future__ import annotations

from collections.abc import Sequence

from motif.display import MISSING, num, pct
from motif.handover import FLAG_TITLES, FLAGS
from motif.report.loading import EvalRun
from motif.report.training import TRAINING_KEYS, metric_key
from motif.runs.layout import HELDOUT_COLUMNS, HELDOUT_PREFIX
from motif.runs.training import TrainRun, is_finite


def main_table(evals: Sequence[EvalRun]) -> str:
    """Rows: runs; columns: benchmarks; cells: pass@1 in % (with n when --limit cut the set)."""
    labels = list(dict.fromkeys(run.label for run in evals))
    benches = list(dict.fromkeys(run.benchmark for run in evals))
    cells = {(run.label, run.benchmark): _cell(run) for run in evals}
    lines = [
        "| run | " + " | ".join(benches) + " |",
        "|---|" + "---:|" * len(benches),
    ]
    for label in labels:
        row = [cells.get((label, b), MISSING) for b in benches]
        lines.append(f"| {label} | " + " | ".join(row) + " |")
    return "\n".join(lines)


def _cell(run: EvalRun) -> str:
    m = run.summary["metrics"]
    size = run.summary.get("config", {}).get("data", {}).get("size")
    text = pct(m.get("pass@1"))
    return text if size is None or m["problems"] >= size else f"{text} (n={m['problems']})"


def details_table(evals: Sequence[EvalRun]) -> str:
    """One row per eval directory: per-round accuracy, fixes/breaks, tokens, truncation."""
    lines = [
        "| run | benchmark | problems | pass@k % | accuracy by round % | fixed / broken "
        "| tokens by round | truncated % | largest round context | generated / answer | dir |",
        "|---|---|---:|---|---|---|---|---:|---:|---:|---|",
    ]
    for run in evals:
        m = run.summary["metrics"]
        r, tok = m["rounds"], m["tokens"]
        cells = [
            run.label,
            run.benchmark,
            str(m["problems"]),
            ", ".join(f"@{k} {pct(v)}" for k, v in m["pass@k"].items()),
            " → ".join(pct(a) for a in r["accuracy"]),
            ", ".join(f"{t['fixed']}/{t['broken']}" for t in r["transitions"]) or MISSING,
            " / ".join(num(x) for x in r["completion_tokens_mean"]),
            pct(tok["truncated_any_rate"]),
            str(tok["largest_round_context"]),
            num(tok["generated_mean"]),
            f"`{run.path}`",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def handover_table(evals: Sequence[EvalRun]) -> str | None:
    """The hand-over watch (:mod:`motif.handover`) of the runs whose strategy hands a state on:
    one row per run, each flag's rate per round that hands over (``r1 → r2``, in %), and the
    hand-overs counted per round. None when no run has a round that hands over (no
    ``handover`` block, or one round)."""
    rows = [(run, run.summary["metrics"].get("handover")) for run in evals]
    rows = [(run, block) for run, block in rows if block is not None and block["handed"]]
    if not rows:
        return None
    heads = " | ".join(f"{FLAG_TITLES[flag]} %" for flag in FLAGS)
    lines = [f"| run | benchmark | hand-overs by round | {heads} |", "|---|---|---|" + "---|" * 4]
    for run, block in rows:
        cells = [run.label, run.benchmark, " / ".join(map(str, block["handed"])) or MISSING]
        cells += [" → ".join(pct(v) for v in block[flag]) or MISSING for flag in FLAGS]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def training_table(trains: Sequence[TrainRun]) -> str:
    """One row per training run: steps logged and the last value of each tracked key."""
    lines = ["| run | steps | last step | " + " | ".join(TRAINING_KEYS) + " |"]
    lines.append("|---|---:|---:|" + "---:|" * len(TRAINING_KEYS))
    for run in trains:
        last = [_last(run.rows, metric_key(run.rows, key)) for key in TRAINING_KEYS]
        step = run.rows[-1]["step"] if run.rows else MISSING
        lines.append(f"| {run.label} | {len(run.rows)} | {step} | " + " | ".join(last) + " |")
    return "\n".join(lines)


def heldout_table(trains: Sequence[TrainRun]) -> str | None:
    """One row per training run that ran the held-out check: its last check's step, rates
    (:data:`~motif.runs.layout.HELDOUT_COLUMNS`) and hand-over watch (``%``); None when no run
    ran it. A rate the check could not count (nothing handed over) shows as the missing mark."""
    names = [*HELDOUT_COLUMNS, *(f"handover_{flag}" for flag in FLAGS)]
    checked = [r for r in trains if any(HELDOUT_PREFIX + "accuracy" in row for row in r.rows)]
    if not checked:
        return None
    lines = ["| run | check at step | " + " | ".join(names) + " |"]
    lines.append("|---|---:|" + "---:|" * len(names))
    for run in checked:
        row = [r for r in run.rows if HELDOUT_PREFIX + "accuracy" in r][-1]
        cells = [
            pct(row.get(HELDOUT_PREFIX + n)) if is_finite(row.get(HELDOUT_PREFIX + n)) else MISSING
            for n in names
        ]
        lines.append(f"| {run.label} | {row['step']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _last(rows: Sequence[dict], key: str | None) -> str:
    """The last finite value of ``key`` (a NaN or inf logged last is skipped)."""
    values = [row[key] for row in rows if key and is_finite(row.get(key))]
    return f"{values[-1]:.3f}" if values else MISSING
