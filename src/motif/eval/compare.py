"""Paired comparisons of eval runs over the same items: differences, standard errors, intervals.

Two runs of ``motif eval`` on the same benchmark answered the same items, so their accuracies
are compared item by item (a paired design): the standard error of the difference is that of
the mean of the per-item differences, which removes the variance the items share (easy items
are easy for both runs) and is smaller than two independent errors combined.

Per item, a run's *score* is its share of right samples (1 or 0 greedy; avg@K with K samples
per item, averaged per item first, as Miller (2024) recommends for several samples per
question). ``correct`` None (ungradable) counts as not right, as in :mod:`motif.eval.metrics`.
Only finished items (all K samples stored) are read; the file is never rewritten.

Sources: E. Miller, "Adding Error Bars to Evals: A Statistical Approach to Language Model
Evaluations", arXiv:2411.00640 (2024), sec. 2-4 (standard error of a mean over questions,
paired differences, averaging resamples per question); A. Agresti, *Categorical Data
Analysis*, 3rd ed. (2013), sec. 11.1 (the Wald interval for the difference of dependent
proportions, ``sqrt((b + c) - (b - c)**2 / n) / n`` with ``b``, ``c`` the discordant
counts, to which :func:`mean_se` of the per-item differences reduces for one sample per item;
McNemar's test uses the same ``b`` and ``c``).

Intervals never claim a certainty the data cannot give. A standard error needs at least
:data:`MIN_ITEMS` values that are not all equal: a sample variance of 0 (no discordant pair,
every seed the same) estimates nothing, so ``se`` is None (shown ``n/a``) rather than 0. The
95% interval of a difference between two one-sample-per-item runs is Agresti and Min's
adjusted Wald interval, which adds 1/2 to each cell of the paired 2 x 2 table and so has width
with no discordant pair (A. Agresti and Y. Min, "Simple improved confidence intervals for
comparing matched proportions", Statistics in Medicine 24 (2005) 729-740; recommended in
M. W. Fagerland, S. Lydersen and P. Laake, "Recommended tests and confidence intervals for
paired binomial proportions", Statistics in Medicine 33 (2014) 2850-2875); the accuracy of
a run with one sample per item gets Wilson's score interval (E. B. Wilson, JASA 22 (1927) 209-212;
A. Agresti and B. A. Coull, The American Statistician 52 (1998) 119-126). Imports no torch.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from statistics import NormalDist, fmean, pstdev, stdev

from motif.display import pct
from motif.errors import ConfigError
from motif.runs.eval import open_eval_folder, read_samples
from motif.runs.layout import EVAL_CONFIG_FILE, SUMMARY_FILE

Z95 = NormalDist().inv_cdf(0.975)
"""The standard normal's 97.5% quantile (1.95996...): a two-sided 95% normal interval."""
MIN_ITEMS = 2
"""Fewest values a standard error is computed from: one value has no spread to read."""


@dataclass(frozen=True)
class RunScores:
    """One eval directory as compared: per-item scores of its finished items.

    ``scores[id]`` is the share of the item's ``samples`` samples graded right, in [0, 1];
    ``questions[id]`` its question text (to tell apart equal ids of different item sets).
    """

    name: str
    label: str
    samples: int
    scores: dict[str, float]
    questions: dict[str, str | None]


@dataclass(frozen=True)
class Comparison:
    """Run ``a`` against run ``b`` over their ``items`` common items.

    Accuracies and differences are fractions in [0, 1] (difference in [-1, 1]); ``se`` is the
    paired standard error of ``difference`` (None when it cannot be estimated: see
    :func:`mean_se`). ``ci95`` is its 95% interval, clipped to [-1, 1]: with one sample per
    item in both runs Agresti and Min's adjusted Wald interval (:func:`paired_interval`, never
    of zero width), else ``difference ± 1.96 se`` (None when ``se`` is).
    ``a_better``/``b_better``: items where ``a`` scored higher than ``b`` and the reverse
    (with one sample per item: right in one run only, McNemar's discordant pairs).
    """

    a: str
    b: str
    items: int
    accuracy_a: float
    accuracy_b: float
    difference: float
    se: float | None
    ci95: tuple[float, float] | None
    a_better: int
    b_better: int


def mean_se(values: Sequence[float]) -> tuple[float, float | None]:
    """Mean of ``values`` and its standard error ``sd / sqrt(n)``.

    ``sd`` is the plug-in standard deviation (divisor n): for 0/1 values this is the binomial
    ``sqrt(p (1 - p) / n)``, and for per-item differences Agresti's Wald error (module doc).
    The error is None, not 0, when it cannot be estimated: fewer than :data:`MIN_ITEMS`
    values, or all of them equal (for 0/1 values use :func:`wilson_interval`; for a paired
    difference of 0/1 values, :func:`paired_interval`). Raises ValueError on no values.
    """
    if not values:
        raise ValueError("mean_se needs at least one value")
    sd = pstdev(values)
    if len(values) < MIN_ITEMS or sd == 0:
        return fmean(values), None
    return fmean(values), sd / math.sqrt(len(values))


def wilson_interval(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson's score interval of the proportion ``successes / n`` (fractions in [0, 1]).

    ``(p + z²/2n ± z sqrt(p (1 - p) / n + z²/4n²)) / (1 + z²/n)``: it has width at 0 and n
    successes, where the Wald interval collapses (Wilson 1927; Agresti and Coull 1998; module
    doc). Raises ValueError unless ``0 <= successes <= n`` and ``n >= 1``.
    """
    if not 0 <= successes <= n or n < 1:
        raise ValueError(f"need 0 <= successes <= n and n >= 1; got {successes} of {n}")
    p, z2 = successes / n, z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    low = 0.0 if successes == 0 else max(0.0, centre - half)  # exact ends, not rounding noise
    return low, 1.0 if successes == n else min(1.0, centre + half)


def paired_interval(a_better: int, b_better: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Agresti and Min's adjusted Wald interval of the difference of two matched proportions
    (A right minus B right) over ``n`` items, ``a_better`` right in A only and ``b_better``
    in B only (fractions in [-1, 1]).

    Add 1/2 to each cell of the 2 x 2 table (``b = a_better + 1/2``, ``c = b_better + 1/2``,
    ``m = n + 2``), then Wald: ``(b - c) / m ± z sqrt((b + c) - (b - c)² / m) / m``, clipped to
    [-1, 1]; it has width with no discordant pair (module doc). Raises ValueError unless
    ``a_better + b_better <= n``.
    """
    if min(a_better, b_better) < 0 or a_better + b_better > n:
        raise ValueError(f"need 0 <= a_better + b_better <= n; got {a_better}, {b_better}, {n}")
    b, c, m = a_better + 0.5, b_better + 0.5, n + 2
    centre = (b - c) / m
    half = z * math.sqrt((b + c) - (b - c) ** 2 / m) / m
    return max(-1.0, centre - half), min(1.0, centre + half)


def load_scores(directory: str | Path) -> RunScores:
    """Per-item scores of an eval directory (``samples.jsonl`` plus its configuration).

    Rows are read by :func:`motif.runs.eval.read_samples` (the file is never rewritten; a torn
    or unreadable line is skipped and a duplicate (problem, sample) keeps its first copy).
    Raises :class:`ConfigError` (one line) when it is missing, not an eval run, has no
    known samples per item, or no finished item.
    """
    folder = open_eval_folder(directory)
    samples = (folder.config or {}).get("sampling", {}).get("samples")
    if not isinstance(samples, int) or samples < 1:
        raise ConfigError(
            f"{directory}: samples per item unknown (no {EVAL_CONFIG_FILE} or {SUMMARY_FILE} "
            "with sampling.samples); pass a directory written by `motif eval`"
        )
    by_item, questions = _item_scores(read_samples(folder.path).rows)
    scores = {i: fmean(v.values()) for i, v in by_item.items() if len(v) == samples}
    if not scores:
        raise ConfigError(f"{directory} holds no finished item (all {samples} samples stored)")
    label = (folder.summary or {}).get("label") or folder.path.name
    return RunScores(str(directory), label, samples, scores, questions)


def _item_scores(rows: Iterable[dict]) -> tuple[dict[str, dict[int, float]], dict[str, str | None]]:
    """``{id: {sample: 1.0 right / 0.0}}`` and ``{id: question}`` of sample rows (``correct``
    None, ungradable, scores 0.0)."""
    by_item: dict[str, dict[int, float]] = {}
    questions: dict[str, str | None] = {}
    for row in rows:
        item = str(row["id"])
        by_item.setdefault(item, {})[row["sample"]] = float(row["correct"] is True)
        questions.setdefault(item, row.get("question"))
    return by_item, questions


def check_same_items(a: RunScores, b: RunScores) -> None:
    """Raise :class:`ConfigError` naming both runs unless they hold the same items (ids and,
    where both rows carry one, the same question under each id)."""
    only_a, only_b = a.scores.keys() - b.scores.keys(), b.scores.keys() - a.scores.keys()
    changed = [
        i
        for i in a.scores.keys() & b.scores.keys()
        if None not in (a.questions[i], b.questions[i]) and a.questions[i] != b.questions[i]
    ]
    if only_a or only_b or changed:
        raise ConfigError(
            f"{a.name} and {b.name} hold different items ({len(only_a)} only in the first, "
            f"{len(only_b)} only in the second, {len(changed)} with another question under the "
            "same id); compare runs of the same benchmark, data seed and --limit (compare reads "
            "every finished item a folder holds, also those an earlier, larger --limit ran)"
        )


def compare_runs(a: RunScores, b: RunScores) -> Comparison:
    """The paired comparison of ``a`` minus ``b`` (see :class:`Comparison`).

    Raises :class:`ConfigError` when the runs hold different items.
    """
    check_same_items(a, b)
    items = sorted(a.scores)
    xs, ys = [a.scores[i] for i in items], [b.scores[i] for i in items]
    difference, se = mean_se([x - y for x, y in zip(xs, ys, strict=True)])
    a_better = sum(x > y for x, y in zip(xs, ys, strict=True))
    b_better = sum(y > x for x, y in zip(xs, ys, strict=True))
    if a.samples == 1 and b.samples == 1:  # 0/1 scores: the matched-pairs interval
        ci95 = paired_interval(a_better, b_better, len(items))
    else:
        ci95 = _normal_interval(difference, se, -1.0)
    return Comparison(
        a=a.name,
        b=b.name,
        items=len(items),
        accuracy_a=fmean(xs),
        accuracy_b=fmean(ys),
        difference=difference,
        se=se,
        ci95=ci95,
        a_better=a_better,
        b_better=b_better,
    )


def _normal_interval(
    mean: float, se: float | None, low: float, high: float = 1.0
) -> tuple[float, float] | None:
    """``mean ± 1.96 se`` clipped to [low, high]; None when ``se`` is."""
    if se is None:
        return None
    return max(low, mean - Z95 * se), min(high, mean + Z95 * se)


def accuracy_interval(run: RunScores) -> tuple[float, float] | None:
    """95% interval of a run's accuracy (fractions): Wilson's for one sample per item, else
    the mean of the per-item scores ± 1.96 SE (None when :func:`mean_se` gives none)."""
    values = list(run.scores.values())
    if run.samples == 1:
        return wilson_interval(round(sum(values)), len(values))
    mean, se = mean_se(values)
    return _normal_interval(mean, se, 0.0)


def compare_dirs(dirs: Sequence[str | Path]) -> tuple[list[RunScores], list[Comparison]]:
    """Load two or more eval directories and compare every pair, in the order given
    (A-B, A-C, B-C for three).

    All runs are checked against the first before any comparison, so a mismatch is reported
    at once. Raises :class:`ConfigError` with fewer than two directories.
    """
    if len(dirs) < 2:
        raise ConfigError("compare needs at least two eval run directories")
    runs = [load_scores(d) for d in dirs]
    for other in runs[1:]:
        check_same_items(runs[0], other)
    return runs, [compare_runs(a, b) for a, b in itertools.combinations(runs, 2)]


NOT_ESTIMABLE = "n/a"
"""How an error or interval that cannot be estimated is printed (see :func:`mean_se`)."""


def _points(value: float | None, signed: bool = False) -> str:
    return pct(value, missing=NOT_ESTIMABLE, signed=signed)


def _interval(ci: tuple[float, float] | None) -> str:
    if ci is None:
        return NOT_ESTIMABLE
    return "[" + ", ".join(_points(v, signed=True) for v in ci) + "]"


def comparison_table(runs: Sequence[RunScores], comparisons: Sequence[Comparison]) -> str:
    """A Markdown table of the comparisons (percent, points), preceded by the runs' labels."""
    lines = [
        "| run | label | items | samples per item | accuracy (%) | 95% CI (%) |",
        "|---|---|---|---|---|---|",
    ]
    for r in runs:
        accuracy = _points(fmean(r.scores.values()))
        ci = accuracy_interval(r)
        ci_text = NOT_ESTIMABLE if ci is None else f"[{_points(ci[0])}, {_points(ci[1])}]"
        lines.append(
            f"| {r.name} | {r.label} | {len(r.scores)} | {r.samples} | {accuracy} | {ci_text} |"
        )
    lines += [
        "",
        "| A | B | items | accuracy A (%) | accuracy B (%) | A − B ± SE (points) "
        "| 95% CI (points) | A better | B better |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for c in comparisons:
        lines.append(
            f"| {c.a} | {c.b} | {c.items} | {_points(c.accuracy_a)} | {_points(c.accuracy_b)} "
            f"| {_points(c.difference, signed=True)} ± {_points(c.se)} | {_interval(c.ci95)} "
            f"| {c.a_better} | {c.b_better} |"
        )
    lines += [
        "",
        "SE: paired standard error of the per-item difference (n/a: fewer than "
        f"{MIN_ITEMS} items or every item the same difference, a variance of 0 that estimates "
        "nothing). 95% CI: one sample per item, Agresti-Min's adjusted Wald interval for "
        "matched pairs (width even with no item where the runs differ); several, difference "
        "± 1.96 SE. Accuracy CI: Wilson's score interval (one sample per item), else ± 1.96 SE. "
        "A better / B better: items where one run scored higher (one sample per item: right "
        "in that run only, McNemar's discordant pairs).",
    ]
    return "\n".join(lines)


def samples_to_reach(
    curve: Iterable[tuple[int, float | None]], target: float, samples_per_step: int
) -> int | None:
    """Training samples until a checkpoint first reaches ``target`` accuracy.

    ``curve``: ``(step, accuracy)`` of each evaluated checkpoint (accuracy None: not
    evaluated, skipped). Returns ``step * samples_per_step`` of the earliest step whose
    accuracy is at least ``target``, or None when none reaches it.
    """
    for step, value in sorted((s, v) for s, v in curve if v is not None):
        if value >= target:
            return step * samples_per_step
    return None


@dataclass(frozen=True)
class SeedSummary:
    """One quantity (an accuracy or a paired difference, as a fraction) measured once per
    training seed, summarised over the ``k`` seeds.

    ``se`` is the standard error of ``mean`` over seeds, ``stdev / sqrt(k)`` with the sample
    standard deviation (divisor k - 1): how much the value moves between training runs on
    these items (None for one seed, and for seeds that all gave the same value: a spread of 0
    over a few seeds estimates nothing; print it as not estimable, never as ± 0).
    ``item_se`` is the mean of the per-seed standard errors over the items (None when they are
    not given or any of them is None): the error from which items were drawn,
    which every seed shares when all are scored on the same items, so ``se`` does not contain
    it. Being shared, the per-seed errors are correlated, and the error of their mean lies
    between ``sqrt(sum se_i**2) / k`` (independent) and their mean (fully correlated); the
    larger is reported. A difference is worth reading only when it is large against both.
    With k = 3 a 95% interval is about ±4.3 ``se`` (Student's t, 2 degrees of freedom).

    Source: R. Agarwal et al., "Deep Reinforcement Learning at the Edge of the Statistical
    Precipice", NeurIPS 2021, sec. 3-4 (report the uncertainty over training runs, not one
    run's; few runs give wide intervals).
    """

    values: tuple[float, ...]
    mean: float
    se: float | None
    item_se: float | None
    low: float
    high: float


def over_seeds(
    values: Sequence[float], item_ses: Sequence[float | None] | None = None
) -> SeedSummary:
    """:class:`SeedSummary` of one value per seed (``item_ses``: each value's standard error
    over the items, same order; None where it could not be estimated). Raises ValueError on
    no values or mismatched lengths."""
    if not values:
        raise ValueError("over_seeds needs at least one value")
    if item_ses is not None and len(item_ses) != len(values):
        raise ValueError(f"over_seeds: {len(values)} values but {len(item_ses)} item errors")
    k = len(values)
    spread = stdev(values) if k >= MIN_ITEMS else 0.0
    se = spread / math.sqrt(k) if spread > 0 else None
    known = item_ses is not None and all(e is not None for e in item_ses)
    item_se = fmean(item_ses) if known else None  # type: ignore[arg-type]
    return SeedSummary(tuple(values), fmean(values), se, item_se, min(values), max(values))
