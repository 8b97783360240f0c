"""Tables for docs/results.md from the runs of studies.replicate (its `summary` stage).

Reads eval directories (samples.jsonl, summary.json) and training directories (metrics.jsonl)
under the replication's output folder with the package's readers (motif.runs); writes
`summary.md` and `summary.json` there, and the plots of `motif report` next to them. Everything here is arithmetic on saved files: no model.
Paired differences, standard errors and samples-to-target come from motif.eval.compare (also
`motif compare`); this module imports studies.replicate_layout, never studies.replicate
(which imports it).
"""

from __future__ import annotations

import json
import re
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

from motif.answer_format import format_ok, parse_answer
from motif.eval.compare import (
    compare_runs,
    load_scores,
    mean_se,
    samples_to_reach,
)
from motif.grading import is_correct
from motif.runs.eval import read_samples, read_summary
from motif.runs.layout import METRICS_FILE, SUMMARY_FILE
from motif.runs.training import read_metrics, step_seconds
from motif.training.demos import (
    ChainProblem,
    demonstration_responses,
    problem_from_entry,
)
from studies.replicate_layout import finished, recipe, run_dir
from studies.tables import pct, points
from studies.wallclock import wall_matched_step

NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
OPERATION = re.compile(r"-?\d+\s*[+-]\s*\d+\s*=")  # one written step: "11 - 6 ="


def last_number_correct(text: str, gold: str) -> bool:
    """Diagnostic only: is the reply's last number the gold (graded by the one oracle)?

    The base model answers in prose without tags or a box, which the protocol scores 0;
    this shows how much arithmetic it gets right regardless of the format.
    """
    numbers = NUMBER.findall(text)
    return bool(numbers) and is_correct(numbers[-1], gold) is True


def chain_problem(row: dict) -> ChainProblem | None:
    """The chain sum of an eval row, parsed as the demonstrations parse it (None: not one)."""
    return problem_from_entry({"question": row["question"], "answer": row["gold"]})


def skips_an_operation(row: dict) -> bool | None:
    """Diagnostic: do the rounds' replies together write fewer steps (``a + b =``) than the
    chain sum needs (terms - 1)? Catches a policy that stops after the first addition.
    None for a question that is not a chain sum."""
    problem = chain_problem(row)
    if problem is None:
        return None
    written = sum(len(OPERATION.findall(r["text"])) for r in row["rounds"])
    return written < len(problem.operands) - 1


def summary_as_demonstrated(row: dict) -> bool | None:
    """Is round 1's ``<answer>`` exactly the demonstration's (right partial result and right
    remaining terms)? None for a 1-round eval or a question that is not a chain sum."""
    problem = chain_problem(row)
    if problem is None or len(row["rounds"]) < 2:
        return None
    expected = parse_answer(demonstration_responses(problem, len(row["rounds"]))[0])
    written = parse_answer(row["rounds"][0]["text"])
    return written is not None and written.strip() == (expected or "").strip()


def load_eval(path: Path) -> dict | None:
    """Per-item correctness and format of a finished eval directory (None: not run yet), read
    with the package's eval-folder reader (motif.runs.eval)."""
    summary = read_summary(path)
    if summary is None:
        return None
    rows = sorted(
        read_samples(path).rows, key=lambda r: int(r["id"]) if str(r["id"]).isdigit() else r["id"]
    )
    n_rounds = summary["config"]["protocol"]["rounds"]
    formats = [
        all(format_ok(r["text"], final=r["round"] == n_rounds) for r in row["rounds"])
        for row in rows
    ]
    return {
        "ids": [row["id"] for row in rows],
        "correct": [bool(row["correct"]) for row in rows],
        "format": formats,
        "summary_ok": [summary_as_demonstrated(row) for row in rows],
        "skipped": [skips_an_operation(row) for row in rows],
        "last_number": [
            [last_number_correct(r["text"], row["gold"]) for r in row["rounds"]] for row in rows
        ],
        "rounds": summary["metrics"]["rounds"],
    }


def final_last_number(e: dict) -> list[bool]:
    return [rounds[-1] for rounds in e["last_number"]]


def skipped_flags(e: dict) -> list[bool]:
    return e["skipped"]


def cell(evals: list[dict | None], flags=lambda e: e["correct"]) -> str:
    """One table cell: a single run as p ± se, several seeds as mean (min-max)."""
    done = [e for e in evals if e is not None]
    if not done:
        return "—"
    if len(done) == 1:
        p, se = mean_se(flags(done[0]))
        return f"{pct(p)} ± {points(se)}"
    values = [statistics.fmean(flags(e)) for e in done]
    return f"{pct(statistics.mean(values))} ({pct(min(values))}–{pct(max(values))})"


def format_cell(evals: list[dict | None]) -> str:
    done = [e for e in evals if e is not None]
    if not done:
        return "—"
    return pct(statistics.mean(statistics.fmean(e["format"]) for e in done))


def main_rows(out: Path, seeds: list[int]) -> list[tuple[str, list[str]]]:
    """(row label, eval names per seed) of the main table."""
    steps = recipe("motif")["max_steps"]
    every = recipe("grpo")["save_steps"]
    walls = {}
    for seed in seeds:
        grpo, motif = run_dir(out, "grpo", seed), run_dir(out, "motif", seed)
        if finished(motif, steps) and finished(grpo, recipe("grpo")["max_steps"]):
            walls[seed] = wall_matched_step(grpo, motif, every)
    rows = [("base model", ["base"]), ("cold start (motif sft)", ["sft"])]
    rows.append((f"GRPO, {steps} steps (same samples)", [f"grpo-s{s}@{steps}" for s in seeds]))
    rows.append((f"MOTIF, {steps} steps", [f"motif-s{s}@{steps}" for s in seeds]))
    wall_names = [f"grpo-s{s}@{walls[s]}" for s in seeds if s in walls]
    label = "GRPO, same wall-clock"
    if walls:
        label += " (steps " + ", ".join(str(walls[s]) for s in walls) + ")"
    rows.append((label, wall_names))
    return rows


def main_table(out: Path, seeds: list[int], prefix: str = "") -> tuple[str, dict]:
    chain = not prefix  # the step-skipping diagnostic reads chain sums only
    head = "| model | 1 round: accuracy | 2 rounds: accuracy | 2 rounds: every round in format "
    head += "| last number, 1 round | last number, 2 rounds |"
    head += " skips a step, 1 round | skips a step, 2 rounds |" if chain else ""
    lines = [head, "|---" * head.count(" | ") + "|---|"]
    data: dict = {}
    for label, names in main_rows(out, seeds):
        one = [load_eval(out / "eval" / f"{prefix}{n}-r1") for n in names]
        two = [load_eval(out / "eval" / f"{prefix}{n}-r2") for n in names]
        lenient = f"{cell(one, final_last_number)} | {cell(two, final_last_number)}"
        line = f"| {label} | {cell(one)} | {cell(two)} | {format_cell(two)} | {lenient} |"
        if chain:
            line += f" {cell(one, skipped_flags)} | {cell(two, skipped_flags)} |"
        lines.append(line)
        data[label] = {
            "runs": names,
            "r1": [statistics.fmean(e["correct"]) if e else None for e in one],
            "r2": [statistics.fmean(e["correct"]) if e else None for e in two],
        }
    return "\n".join(lines), data


def paired_table(out: Path, seeds: list[int]) -> str:
    """MOTIF minus GRPO per seed, on the same held-out items, paired standard errors."""
    steps = recipe("motif")["max_steps"]
    lines = ["| seed | protocol | MOTIF − GRPO (same samples) | MOTIF − GRPO (same wall-clock) |"]
    lines.append("|---|---|---|---|")
    for seed in seeds:
        every = recipe("grpo")["save_steps"]
        wall = wall_matched_step(run_dir(out, "grpo", seed), run_dir(out, "motif", seed), every)
        for r in (1, 2):
            m = out / "eval" / f"motif-s{seed}@{steps}-r{r}"
            cells = []
            for g_name in (f"grpo-s{seed}@{steps}", f"grpo-s{seed}@{wall}"):
                g = out / "eval" / f"{g_name}-r{r}"
                if not ((m / SUMMARY_FILE).exists() and (g / SUMMARY_FILE).exists()):
                    cells.append("—")
                    continue
                c = compare_runs(load_scores(m), load_scores(g))
                cells.append(f"{100 * c.difference:+.1f} ± {points(c.se)} points")
            lines.append(f"| {seed} | {r} round{'s' * (r > 1)} | {cells[0]} | {cells[1]} |")
    return "\n".join(lines)


def round_table(out: Path, names: list[str]) -> str:
    """Per-round accuracy and fixed/broken transitions of the 2-round protocol."""
    lines = [
        "| model | round 1 accuracy | round 2 accuracy | fixed in round 2 | broken in round 2 "
        "| last number, round 1 | last number, round 2 | round-1 summary right "
        "| final right, given a right summary |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name in names:
        e = load_eval(out / "eval" / f"{name}-r2")
        if e is None:
            continue
        acc, t = e["rounds"]["accuracy"], e["rounds"]["transitions"][0]
        by_round = [
            statistics.fmean([r[i] for r in e["last_number"] if len(r) > i]) for i in (0, 1)
        ]
        ok = [s is True for s in e["summary_ok"]]
        given = [c for c, s in zip(e["correct"], ok, strict=True) if s]
        lines.append(
            f"| {name} | {pct(acc[0])} | {pct(acc[1])} | {pct(t['fixed_rate'])} | "
            f"{pct(t['broken_rate'])} | {pct(by_round[0])} | {pct(by_round[1])} | "
            f"{pct(statistics.fmean(ok))} | {pct(statistics.fmean(given)) if given else '—'} |"
        )
    return "\n".join(lines)


def accuracy(path: Path) -> float | None:
    e = load_eval(path)
    return statistics.fmean(e["correct"]) if e else None


def curve_table(out: Path, seeds: list[int]) -> tuple[str, dict]:
    """MOTIF's held-out accuracy (2 rounds) by step, and when it first reaches GRPO's final.

    GRPO's final accuracy is its better protocol's (the target MOTIF has to reach).
    """
    cfg = recipe("motif")
    steps, every = cfg["max_steps"], cfg["save_steps"]
    per_step = cfg["prompts_per_device"] * cfg["num_generations"]
    points = sorted({*range(2 * every, steps, 2 * every), steps})
    head = " | ".join(f"step {s}" for s in points)
    lines = [f"| seed | {head} | GRPO final (1 round / 2 rounds) | MOTIF samples to reach it |"]
    lines.append("|---" * (len(points) + 3) + "|")
    data = {}
    for seed in seeds:
        accs = [accuracy(out / "eval" / f"motif-s{seed}@{s}-r2") for s in points]
        grpo = [accuracy(out / "eval" / f"grpo-s{seed}@{steps}-r{r}") for r in (1, 2)]
        target = max((g for g in grpo if g is not None), default=None)
        curve = list(zip(points, accs, strict=True))
        samples = None if target is None else samples_to_reach(curve, target, per_step)
        reach = None if samples is None else samples // per_step
        reached = "not reached"
        if samples is not None:
            reached = f"{samples} of {steps * per_step} ({reach / steps:.0%})"
        row = " | ".join(pct(a) for a in accs)
        grpo_cell = " / ".join(pct(g) for g in grpo)
        lines.append(f"| {seed} | {row} | {grpo_cell} | {reached} |")
        data[seed] = {"steps": points, "accuracy": accs, "grpo_final": target, "reach_step": reach}
    return "\n".join(lines), data


def records_with(run: Path, *keys: str) -> dict[int, dict]:
    """``step -> record`` of ``run``'s metrics.jsonl (motif.runs.training.read_metrics) whose
    records hold every key of ``keys``; the last such record of a repeated step wins."""
    return {int(r["step"]): r for r in read_metrics(run) if all(k in r for k in keys)}


def training_table(out: Path, seeds: list[int]) -> str:
    lines = [
        "| run | steps | wall-clock (sum of step times) | s/step | zero-variance groups | reward, last 5 steps |"
    ]
    lines.append("|---|---|---|---|---|---|")
    for seed in seeds:
        for method in ("grpo", "motif"):
            run = run_dir(out, method, seed)
            rows = records_with(run, "reward")
            if not rows:
                continue
            secs = step_seconds(run)
            last = [rows[s] for s in sorted(rows)[-5:]]
            zero = statistics.mean(r.get("frac_reward_zero_std", 0.0) for r in rows.values())
            lines.append(
                f"| {method}-s{seed} | {max(rows)} | {sum(secs.values()) / 60:.0f} min | "
                f"{statistics.mean(secs.values()):.1f} | {zero:.0%} | "
                f"{statistics.mean(r['reward'] for r in last):.2f} |"
            )
    return "\n".join(lines)


def training_accuracy(run: Path, method: str, weight: float) -> list[tuple[int, float, float]]:
    """(step, cumulative minutes, task accuracy) per step: GRPO's single-round accuracy
    reward / weight, MOTIF's future accuracy (the last record of a repeated step wins)."""
    rows = records_with(run, "reward", "step_seconds")
    points, minutes = [], 0.0
    for step in sorted(rows):
        row = rows[step]
        minutes += row["step_seconds"] / 60
        value = (
            row.get("future_accuracy")
            if method == "motif"
            else row.get("rewards/accuracy_reward/mean", 0.0) / weight
        )
        points.append((step, minutes, float(value)))
    return points


def smooth(values: list[float], window: int = 5) -> list[float]:
    """Trailing moving average (the per-step accuracy of 16 samples is very noisy)."""
    return [statistics.mean(values[max(0, i - window + 1) : i + 1]) for i in range(len(values))]


def plot_curves(out: Path, seeds: list[int]) -> Path:
    """Training accuracy against round-1 samples and against wall-clock, both methods."""
    import matplotlib  # heavy: only the summary stage plots

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cfg = recipe("motif")
    per_step = cfg["prompts_per_device"] * cfg["num_generations"]
    fig, (by_samples, by_time) = plt.subplots(1, 2, figsize=(11, 4))
    for seed in seeds:
        for method, color in (("grpo", "tab:blue"), ("motif", "tab:orange")):
            points = training_accuracy(run_dir(out, method, seed), method, cfg["accuracy_weight"])
            if not points:
                continue
            steps, minutes, acc = zip(*points, strict=True)
            ys = [100 * a for a in smooth(list(acc))]
            style = ("-", "--", ":", "-.")[seeds.index(seed) % 4]  # one line style per seed
            label = f"{method.upper()} seed {seed}"
            by_samples.plot([s * per_step for s in steps], ys, style, color=color, label=label)
            by_time.plot(minutes, ys, style, color=color, label=label)
    by_samples.set_xlabel("round-1 samples")
    by_time.set_xlabel("training wall-clock (min, 1 CPU thread)")
    for ax in (by_samples, by_time):
        ax.set_ylabel("training accuracy (%), 5-step mean")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    fig.suptitle("GRPO: single-round accuracy of its samples; MOTIF: future accuracy (2 rounds)")
    fig.tight_layout()
    path = out / "training_accuracy.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def run_report(out: Path, seeds: list[int]) -> None:
    """`motif report` over the training runs: reward and accuracy curves as PNG."""
    dirs = [str(run_dir(out, m, s)) for s in seeds for m in ("grpo", "motif")]
    dirs = [d for d in dirs if (Path(d) / METRICS_FILE).exists()]
    if dirs:
        cmd = [
            sys.executable,
            "-m",
            "motif.cli.main",
            "report",
            *dirs,
            "--output",
            str(out / "training_report.md"),
        ]
        subprocess.run(cmd, check=True)


def write_summary(out: Path, seeds: list[int]) -> Path:
    steps = recipe("motif")["max_steps"]
    table, data = main_table(out, seeds)
    transfer, transfer_data = main_table(out, seeds, prefix="gsm8k-")
    curve, curve_data = curve_table(out, seeds)
    names = ["sft", *(f"{m}-s{s}@{steps}" for s in seeds for m in ("grpo", "motif"))]
    parts = [
        "## Held-out chain_sum (greedy pass@1, %)",
        table,
        "## Paired differences",
        paired_table(out, seeds),
        "## Round by round (2-round protocol)",
        round_table(out, ["base", *names]),
        "## MOTIF's held-out curve",
        curve,
        "## Training",
        training_table(out, seeds),
        "## Transfer: GSM8K test (greedy pass@1, %)",
        transfer,
    ]
    run_report(out, seeds)
    plot_curves(out, seeds)
    path = out / "summary.md"
    path.write_text("\n\n".join(parts) + "\n")
    (out / "summary.json").write_text(
        json.dumps({"heldout": data, "gsm8k": transfer_data, "curve": curve_data}, indent=2) + "\n"
    )
    return path


def publish(out: Path, dest: Path, seeds: list[int]) -> list[Path]:
    """Copy the small results (tables, plots, per-step metrics, eval summaries) to ``dest``.

    Runs and checkpoints live in a git-ignored folder that does not outlive the machine; the
    published copy is what docs/results.md cites, so every number there stays checkable.
    """
    dest.mkdir(parents=True, exist_ok=True)
    copied = []
    for name in ("summary.md", "summary.json", "training_report.md", "training_accuracy.png"):
        if (out / name).exists():
            copied.append(Path(shutil.copy2(out / name, dest / name)))
    copied += [Path(shutil.copy2(p, dest / p.name)) for p in out.glob("training_report_*.png")]
    for seed in seeds:
        for method in ("grpo", "motif"):
            metrics = run_dir(out, method, seed) / METRICS_FILE
            if metrics.exists():
                copied.append(Path(shutil.copy2(metrics, dest / f"{method}-s{seed}.metrics.jsonl")))
    for summary in sorted((out / "eval").glob(f"*/{SUMMARY_FILE}")):
        target = dest / "eval" / f"{summary.parent.name}.json"
        target.parent.mkdir(exist_ok=True)
        copied.append(Path(shutil.copy2(summary, target)))
    return copied
