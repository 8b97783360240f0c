"""Grading oracle: throughput on a realistic mix, and how many real golds it parses.

Throughput: N gradings (default 1,000) of responses and bare answers built from the real
golds (right answers in other notations, wrong answers, responses without a box). Every
grading goes to the worker process, bounded on its CPU time (docs/grading.md); timed from the
main thread with the worker's golds not yet parsed, then again with their parses cached (as in
training, where each gold serves many completions), then from a background thread (TRL's async
rewards). Side by side, in this process: the same gradings run in-process under the same timer
(``grading._run_inline``, what the worker does), cold and cached: the difference is the cost
of the worker's pipe. "off-label" counts verdicts that differ from how the case was built.
Coverage: for MATH500, AIME24, AMC23 and GSM8K test, how many golds parse, how many of those
parse as math (not only as a raw string), and how many are graded correct against themselves
in a ``\\boxed{}``.

    .venv/bin/python bench/grading.py [--data-dir ../shared/data] [--n 1000] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import threading
import time
from collections import Counter
from pathlib import Path

from motif import grading
from motif.grading import GradeStats, gold_parses, grade, grade_text, normalize_gold

REPO = Path(__file__).resolve().parents[1]
SETS = {  # file stem: (gold field, normalize_gold source)
    "math500_test": ("answer", "math"),
    "aime24_test": ("answer", "aime"),
    "amc23_test": ("answer", "amc"),
    "gsm8k_test": ("answer", "gsm8k"),
}


def load_golds(data_dir: Path) -> dict[str, list]:
    """The raw gold answers of each data set, as stored."""
    golds = {}
    for stem, (field, _) in SETS.items():
        with (data_dir / f"{stem}.jsonl").open() as f:
            golds[stem] = [json.loads(line)[field] for line in f]
    return golds


def variants(gold: str, rng: random.Random) -> str:
    """A right answer written differently, when we know how; else the gold itself."""
    if gold.lstrip("-").isdigit():
        n = int(gold)
        return rng.choice([f"{n:,}", f"\\${n}", f"{n}.0", f"0{n}" if n >= 0 else str(n)])
    return rng.choice([gold, f"${gold}$", gold.replace("\\frac", "\\dfrac")])


def wrong(gold: str, others: list[str], rng: random.Random) -> str:
    if gold.lstrip("-").isdigit():
        return str(int(gold) + rng.choice([-1, 1, 10]))
    return rng.choice(others)


def response(answer: str) -> str:
    return f"<reasoning>\nWork it out step by step.\n</reasoning>\n<answer>\nSo \\boxed{{{answer}}}\n</answer>"


Case = tuple[str, str, str, bool]  # (kind, text, raw gold, expected verdict)


def workload(golds: dict[str, list], n: int, seed: int) -> list[Case]:
    """``n`` cases: about half right answers, half wrong; half whole responses, half bare
    answers; one in ten a response without a box (expected False: no answer)."""
    rng = random.Random(seed)
    pool = [(normalize_gold(g, SETS[stem][1]), g) for stem, gs in golds.items() for g in gs]
    normed = [p[0] for p in pool]
    cases = []
    for _ in range(n):
        norm, raw = rng.choice(pool)
        roll = rng.random()
        right = roll < 0.5
        answer = variants(norm, rng) if right else wrong(norm, normed, rng)
        if roll > 0.9:
            cases.append(("text", "I am not sure, maybe " + answer, raw, False))
        elif rng.random() < 0.5:
            cases.append(("text", response(answer), raw, right))
        else:
            cases.append(("answer", answer, raw, right))
    return cases


def run(cases: list[Case], timeout_s: float) -> tuple[float, GradeStats, int]:
    """Seconds, the tally, and how many verdicts disagree with the constructed label."""
    stats = GradeStats()
    disagree = 0
    start = time.perf_counter()
    for kind, text, gold, expected in cases:
        if kind == "text":
            result = stats.add(grade_text(text, gold, timeout_s=timeout_s))
        else:
            result = stats.add(grade(text, gold, timeout_s=timeout_s))
        disagree += result.correct is not expected
    return time.perf_counter() - start, stats, disagree


def run_in_process(cases: list[Case], timeout_s: float) -> tuple[float, GradeStats, int]:
    """:func:`run` without the worker: the same grading and timer in this process."""
    stats = GradeStats()
    disagree = 0
    start = time.perf_counter()
    for kind, text, gold, expected in cases:
        result = stats.add(
            grading._run_inline((kind, text, normalize_gold(gold), "none"), timeout_s)
        )
        disagree += result.correct is not expected
    return time.perf_counter() - start, stats, disagree


def run_in_thread(cases: list[Case], timeout_s: float) -> tuple[float, GradeStats, int]:
    box: dict = {}
    grade("1", "1")  # start the worker process outside the timing (~1 s, once per process)
    thread = threading.Thread(target=lambda: box.update(result=run(cases, timeout_s)))
    thread.start()
    thread.join()
    return box["result"]


def parses_as_math(gold: str) -> bool:
    """Whether the gold parses to a math object, not only to math-verify's raw-string fallback
    (against which nothing but the same string could ever grade)."""
    return any(not isinstance(p, str) for p in grading._parse_gold(gold))


def coverage(golds: dict[str, list], timeout_s: float) -> None:
    print(
        f"{'data set':<14}{'golds':>7}{'parsed':>8}{'as math':>9}{'self-correct':>14}{'seconds':>9}"
    )
    for stem, gs in golds.items():
        start = time.perf_counter()
        parsed = sum(gold_parses(g, timeout_s=timeout_s) for g in gs)
        as_math = sum(parses_as_math(normalize_gold(g, SETS[stem][1])) for g in gs)
        selfs = Counter(
            grade(f"\\boxed{{{normalize_gold(g, SETS[stem][1])}}}", g, timeout_s=timeout_s).reason
            for g in gs
        )
        seconds = time.perf_counter() - start
        print(f"{stem:<14}{len(gs):>7}{parsed:>8}{as_math:>9}{selfs['correct']:>14}{seconds:>9.1f}")
        if selfs["correct"] != len(gs):
            print(f"  not self-correct: {dict(selfs)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=5.0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)

    golds = load_golds(args.data_dir)
    cases = workload(golds, args.n, args.seed)
    print(f"throughput: {len(cases)} gradings (seed {args.seed}, timeout {args.timeout} s)")
    grade("1", "1")  # start the worker outside the timing (~1 s, once per process)
    runs = (
        ("worker, cold", run),
        ("in-process, cold", run_in_process),
        ("worker, cached", run),
        ("in-process, cached", run_in_process),
        ("thread, cached", run_in_thread),
    )
    for name, fn in runs:
        seconds, stats, disagree = fn(cases, args.timeout)
        rate = len(cases) / seconds
        print(
            f"  {name:<19}{rate:8.0f} gradings/s ({seconds:.2f} s), {disagree} off-label; {stats.summary()}"
        )
    print("coverage:")
    coverage(golds, args.timeout)


if __name__ == "__main__":
    main()
