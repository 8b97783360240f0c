"""Evaluation metrics: unbiased pass@k, avg@K and the per-round analysis of multi-round runs.

Every function reads *sample records*, the rows of ``samples.jsonl`` (see
:func:`motif.eval.runner.sample_record`): one per (problem, sample) with its final ``correct``
and, per round, the answer read after that round, its ``correct``, token counts and truncation.
``correct`` may be None (the grader could not decide); it counts as not correct.
Rounds of tasks with checkers (:mod:`motif.tasks`) also hold ``steps_right``, ``steps`` and
``state_right``; :func:`work_metrics` summarises them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from statistics import fmean

from motif.handover import row_rates


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k of one problem: ``1 - C(n-c, k) / C(n, k)``.

    The chance that at least one of ``k`` samples drawn without replacement from ``n``
    samples, ``c`` of them correct, is correct. Computed as a product (no big binomials).
    """
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"need 0 <= c <= n and 1 <= k <= n; got n={n}, c={c}, k={k}")
    if n - c < k:
        return 1.0
    miss = 1.0
    for i in range(n - c + 1, n + 1):
        miss *= 1.0 - k / i
    return 1.0 - miss


def report_ks(samples: int) -> list[int]:
    """The k reported for ``samples`` samples per problem: powers of two up to it, and itself."""
    ks = [1]
    while ks[-1] * 2 <= samples:
        ks.append(ks[-1] * 2)
    if ks[-1] != samples:
        ks.append(samples)
    return ks


def _mean(values: Iterable[float]) -> float | None:
    values = list(values)
    return fmean(values) if values else None


_NOT_RUN = {"answer": None, "correct": None}


def _round_at(record: dict, r: int) -> dict:
    """Round ``r`` (1-based) of a record; past an early stop, its last round.

    From the round of a trajectory cut by a context overflow (``cut_round``) on: no answer.
    """
    rounds = record["rounds"]
    cut = record.get("cut_round")
    if not rounds or (cut is not None and r >= cut):
        return _NOT_RUN
    return rounds[min(r, len(rounds)) - 1]


def overflow_metrics(records: Sequence[dict]) -> dict:
    """Trajectories cut because a round's prompt plus budget did not fit the context."""
    by_round: dict[str, int] = {}
    for rec in records:
        if rec.get("cut_round") is not None:
            key = str(rec["cut_round"])
            by_round[key] = by_round.get(key, 0) + 1
    return {"cut": sum(by_round.values()), "cut_by_round": dict(sorted(by_round.items()))}


OUTCOMES = ("correct", "wrong", "no_answer", "ungraded")
"""The outcome buckets of a trajectory's final answer; each trajectory is in exactly one."""


def outcome(record: dict) -> str:
    """The one :data:`OUTCOMES` bucket of a sample record's final answer.

    ``ungraded``: cut by a context overflow (``cut_round``: no answer was written, none could
    be graded), or an answer the grader could not decide (``correct`` None); ``correct``: graded
    right; ``no_answer``: no final answer; ``wrong``: an answer graded wrong. Checked in that
    order, so a cut trajectory (answer and ``correct`` both None) counts once, as ungraded.
    """
    if record.get("cut_round") is not None:
        return "ungraded"
    if record["correct"] is True:
        return "correct"
    if record["answer"] is None:
        return "no_answer"
    return "ungraded" if record["correct"] is None else "wrong"


def outcome_counts(records: Iterable[dict]) -> dict[str, int]:
    """How many records fall in each :data:`OUTCOMES` bucket (the counts sum to the records)."""
    counts = dict.fromkeys(OUTCOMES, 0)
    for record in records:
        counts[outcome(record)] += 1
    return counts


def answer_metrics(groups: Sequence[Sequence[dict]], samples: int) -> dict:
    """pass@1 (= avg@K), pass@k for :func:`report_ks`, and counts, over problems' samples.

    ``correct``, ``wrong``, ``no_answer`` and ``ungraded`` count trajectories by
    :func:`outcome` (exclusive: they sum to ``trajectories``; ``ungraded`` includes the
    trajectories cut by a context overflow, counted again on their own by
    :func:`overflow_metrics`).
    """
    counts = [(len(g), sum(r["correct"] is True for r in g)) for g in groups]
    out: dict = {
        "problems": len(groups),
        "samples_per_problem": samples,
        "trajectories": sum(n for n, _ in counts),
        **outcome_counts(r for g in groups for r in g),
    }
    out["pass@1"] = _mean(c / n for n, c in counts)
    out[f"avg@{samples}"] = out["pass@1"]
    out["pass@k"] = {
        str(k): _mean(pass_at_k(n, c, k) for n, c in counts) for k in report_ks(samples)
    }
    return out


def round_metrics(records: Sequence[dict], rounds: int) -> dict:
    """Per-round analysis: accuracy if read after round r, fixes/breaks, tokens, truncation.

    Lists are indexed by round (element 0 is round 1). ``transitions[i]`` compares round
    ``i + 1`` with round ``i + 2``: ``fixed`` = wrong then right, ``broken`` = right then wrong.
    Token and truncation figures cover the trajectories that ran the round (``ran``).
    """
    total = len(records)
    out: dict = {"accuracy": [], "answered": [], "ran": [], "transitions": []}
    for key in ("prompt_tokens_mean", "completion_tokens_mean", "truncation_rate"):
        out[key] = []
    for r in range(1, rounds + 1):
        read = [_round_at(rec, r) for rec in records]
        ran = [rec["rounds"][r - 1] for rec in records if len(rec["rounds"]) >= r]
        out["accuracy"].append(_mean(x["correct"] is True for x in read))
        out["answered"].append(_mean(x["answer"] is not None for x in read))
        out["ran"].append(len(ran))
        out["prompt_tokens_mean"].append(_mean(x["prompt_tokens"] for x in ran))
        out["completion_tokens_mean"].append(_mean(x["completion_tokens"] for x in ran))
        out["truncation_rate"].append(_mean(x["truncated"] for x in ran))
    for r in range(1, rounds):
        pairs = [
            (_round_at(rec, r)["correct"], _round_at(rec, r + 1)["correct"]) for rec in records
        ]
        fixed = sum(a is not True and b is True for a, b in pairs)
        broken = sum(a is True and b is not True for a, b in pairs)
        out["transitions"].append(
            {
                "from": r,
                "to": r + 1,
                "fixed": fixed,
                "broken": broken,
                "fixed_rate": fixed / total if total else None,
                "broken_rate": broken / total if total else None,
            }
        )
    return out


def token_metrics(records: Sequence[dict]) -> dict:
    """Context and generation totals.

    ``largest_round_context``: the most tokens (prompt + completion) any single round used,
    the memory a multi-round answer needs (``round_context_max_mean``: its mean over
    trajectories); ``generated_*``: tokens generated across all rounds of a trajectory (mean,
    max, and the run's total), what a single-round answer of the same total length would need;
    ``prompt_tokens_total``: prompt tokens read over all rounds of the run (prefill work).
    """
    contexts = [
        max(x["prompt_tokens"] + x["completion_tokens"] for x in rec["rounds"])
        for rec in records
        if rec["rounds"]
    ]
    generated = [sum(x["completion_tokens"] for x in rec["rounds"]) for rec in records]
    prompts = [sum(x["prompt_tokens"] for x in rec["rounds"]) for rec in records]
    return {
        "largest_round_context": max(contexts, default=None),
        "round_context_max_mean": _mean(contexts),
        "generated_mean": _mean(generated),
        "generated_max": max(generated, default=None),
        "generated_total": sum(generated),
        "prompt_tokens_total": sum(prompts),
        "truncated_any_rate": _mean(any(x["truncated"] for x in rec["rounds"]) for rec in records),
        "stopped_early_rate": _mean(bool(rec.get("stopped_early")) for rec in records),
    }


def work_metrics(records: Sequence[dict], rounds: int) -> dict | None:
    """The checked work of a task with checkers; None when no round row carries checks.

    ``step_accuracy``: right steps / written steps over every round (or ``tail`` chunk) of
    every trajectory (None when none was written), with the counts ``steps_right`` and
    ``steps_written``. ``state_right`` and ``step_accuracy_by_round``: lists indexed by round;
    ``state_right[r]`` is the share of the states handed over after round ``r + 1`` that are
    right (None where no trajectory handed one: the last round, ``tail``, ``none``).
    ``skipped_steps``: the share of trajectories that box an answer with fewer steps written
    than the item needs (:func:`motif.tasks.skips_steps`; None for rows stored without it).
    """
    checked = [rec for rec in records if any("steps" in x for x in rec["rounds"])]
    if not checked:
        return None
    by_round: list[list[dict]] = [[] for _ in range(rounds)]
    for rec in checked:
        for x in rec["rounds"][:rounds]:
            by_round[x["round"] - 1].append(x)
    right = sum(x.get("steps_right", 0) for rec in checked for x in rec["rounds"])
    written = sum(x.get("steps", 0) for rec in checked for x in rec["rounds"])
    return {
        "step_accuracy": right / written if written else None,
        "steps_right": right,
        "steps_written": written,
        "step_accuracy_by_round": [_ratio(xs, "steps_right", "steps") for xs in by_round],
        "state_right": [
            _mean(x["state_right"] for x in xs if x.get("state_right") is not None)
            for xs in by_round
        ],
        "skipped_steps": _mean(rec["skipped_steps"] for rec in checked if "skipped_steps" in rec),
    }


def _ratio(rows: Sequence[dict], part: str, whole: str) -> float | None:
    total = sum(x.get(whole, 0) for x in rows)
    return sum(x.get(part, 0) for x in rows) / total if total else None


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def work_lines(metrics: dict) -> list[str]:
    """Text lines of the checked work for a summary (none when the run has no checks)."""
    if "steps" not in metrics:
        return []
    r, steps = metrics["rounds"], metrics["steps"]
    lines = [
        f"  steps right {_pct(metrics['step_accuracy'])} ({steps['right']}/{steps['written']}"
        f" written); by round: {', '.join(_pct(v) for v in r['step_accuracy'])}"
    ]
    if any(v is not None for v in r["state_right"]):
        states = ", ".join(
            f"{i} {_pct(v)}" for i, v in enumerate(r["state_right"], 1) if v is not None
        )
        lines.append(f"  state handed over right, after round: {states}")
    if metrics.get("skipped_steps") is not None:
        lines.append(f"  skips a step (boxes an answer too early) {_pct(metrics['skipped_steps'])}")
    return lines


def compute_metrics(
    groups: Sequence[Sequence[dict]],
    samples: int,
    rounds: int,
    protocol: Mapping | None = None,
) -> dict:
    """All metrics of a run from its records grouped by problem (each group: K samples).

    When the task has checkers (:func:`work_metrics`): ``step_accuracy`` and ``steps``
    (``right``, ``written``) for the run, ``skipped_steps`` (share of trajectories boxing an
    answer too early), ``rounds.state_right`` and ``rounds.step_accuracy`` per round.

    When the run's strategy hands a state from round to round (``summary``): ``handover``, the
    hand-over watch (:func:`motif.handover.row_rates`: per round that hands over, the rate of
    answers smuggled into the state, empty or degenerate states, copied states, boxes before
    the last round). ``protocol``: the run identity's protocol block, which names the strategy
    and its summary rule (None: the rows' ``carry_over`` and the ``paper`` rule). Raises
    :class:`motif.errors.ConfigError` for an unknown carry-over name.
    """
    records = [rec for group in groups for rec in group]
    metrics = {
        **answer_metrics(groups, samples),
        "rounds": round_metrics(records, rounds),
        "tokens": token_metrics(records),
        "context_overflow": overflow_metrics(records),
    }
    handover = row_rates(records, rounds, protocol)
    if handover is not None:
        metrics["handover"] = handover
    work = work_metrics(records, rounds)
    if work is not None:
        metrics["rounds"]["state_right"] = work["state_right"]
        metrics["rounds"]["step_accuracy"] = work["step_accuracy_by_round"]
        metrics["step_accuracy"] = work["step_accuracy"]
        metrics["steps"] = {"right": work["steps_right"], "written": work["steps_written"]}
        metrics["skipped_steps"] = work["skipped_steps"]
    return metrics
