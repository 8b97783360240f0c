"""Reward functions for GRPO, in TRL's signature ``f(prompts, completions, **kwargs)``.

Every reward here is a pure batch function: it reads the completions, dataset columns passed
as keyword arguments (TRL passes every column) and rollout results, and keeps no state
between calls. Each is a picklable callable object with a ``__name__``, under which TRL logs
its metrics. Completions may be plain strings or conversational lists of messages.

Two flavours of each reward:

* default (**fixed**): format rewards accept multi-line reasoning and a response that ends
  right after ``</answer>``; accuracy is graded by the math-verify oracle
  (:mod:`motif.grading`) on the final answer read by the protocol's one answer rule
  (:func:`motif.answer_format.final_answer_boxes`: tags as a structure, an empty or unclosed last
  box is no answer), the same rule as strict summaries, evaluation and early stop.
* ``paper``: the reference implementation's exact behaviour, bugs included (format regexes
  without DOTALL, so multi-line reasoning scores 0; accuracy by substring ``\\boxed{gold}``).
  See ``shared/reference/motif-protocol.md`` and ``docs/grading.md``.

None semantics: a grading the oracle cannot make (see :class:`motif.grading.Grade`) counts
as 0 inside a mean and is logged; a reward entry is None only when nothing at all could be
graded for that completion (TRL then treats it as NaN: no signal, not a zero).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

from motif.answer_format import (
    soft_format_score,
    soft_format_score_paper,
    strict_format_score,
    strict_format_score_paper,
    xmlcount_score,
    xmlcount_score_paper,
)
from motif.carryover import extract_summary
from motif.errors import MotifError
from motif.grading import (
    DEFAULT_TIMEOUT_S,
    Fallback,
    GoldLike,
    GradeStats,
    grade_text,
    paper_gold,
)

if TYPE_CHECKING:
    from motif.engine import Trajectory

logger = logging.getLogger(__name__)

Completion = str | Sequence[Mapping[str, Any]]
RewardValue = float | None
ScoreMode = Literal["default", "paper"]

DEFAULT_WEIGHT = 2.0
"""Score of a correct answer: the reference's scale (its accuracy rewards top out at 2.0)."""
PAPER_SCALE = 2.0


class MissingColumnError(MotifError, KeyError):
    """A data set or a reward batch lacks a column a reward needs."""

    def __str__(self) -> str:
        # KeyError would print the message in quotes.
        return str(self.args[0]) if self.args else ""


# --------------------------------------------------------------------------- plumbing


def completion_text(completion: Completion) -> str:
    """The text of one completion: a string as is, or the last message's content.

    A message's content may be a string or a list of ``{"type": "text", "text": ...}`` parts.
    """
    if isinstance(completion, str):
        return completion
    if isinstance(completion, Sequence) and all(isinstance(m, Mapping) for m in completion):
        if not completion:
            return ""
        return _content_text(completion[-1].get("content"))
    raise TypeError(
        f"a completion must be a str or a list of messages, got {type(completion).__name__}"
    )


def _content_text(content: object) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, Mapping))
    raise TypeError(f"message content must be a str or a list of parts, got {type(content)}")


def require_columns(
    dataset_columns: Iterable[str], needed: Iterable[str], dataset_name: str
) -> None:
    """Raise :class:`MissingColumnError` naming the data set and every missing column.

    Call it before any generation starts, so a typo in a column name costs nothing.
    """
    present = list(dataset_columns)
    missing = [c for c in needed if c not in present]
    if missing:
        raise MissingColumnError(
            f"data set {dataset_name!r} lacks column(s) {missing}; it has {sorted(present)}. "
            "Point the answer column option at the column holding the gold answers."
        )


def column_values(kwargs: Mapping[str, Any], column: str, n: int, reward_name: str) -> list[Any]:
    """The ``column`` values TRL passed to a reward, one per completion, checked."""
    if column not in kwargs:
        columns = sorted(k for k in kwargs if k not in ("trainer_state", "log_extra", "log_metric"))
        raise MissingColumnError(
            f"reward {reward_name!r} needs the dataset column {column!r}, which the batch "
            f"lacks; columns present: {columns}"
        )
    values = list(kwargs[column])
    if len(values) != n:
        raise ValueError(f"column {column!r} has {len(values)} values for {n} completions")
    return values


class RewardFunction:
    """A named, picklable batch reward built from a per-text score function."""

    def __init__(self, name: str, score: Callable[[str], float]) -> None:
        self.__name__ = name
        self._score = score

    def __call__(
        self, prompts: Sequence[Any], completions: Sequence[Completion], **kwargs: Any
    ) -> list[RewardValue]:
        """One score per completion."""
        return [self._score(completion_text(c)) for c in completions]

    def __repr__(self) -> str:
        return f"RewardFunction({self.__name__!r})"


# --------------------------------------------------------------------------- format
# The scores are the answer format's (:mod:`motif.answer_format`); here they become rewards.


def xmlcount_reward(paper: bool = False) -> RewardFunction:
    """The tag-count reward (``paper=True``: the reference's exact, length-penalising one)."""
    if paper:
        return RewardFunction("xmlcount_reward_paper", xmlcount_score_paper)
    return RewardFunction("xmlcount_reward", xmlcount_score)


def soft_format_reward(paper: bool = False) -> RewardFunction:
    """The soft format reward (``paper=True``: the reference's single-line regex)."""
    if paper:
        return RewardFunction("soft_format_reward_paper", soft_format_score_paper)
    return RewardFunction("soft_format_reward", soft_format_score)


def strict_format_reward(paper: bool = False) -> RewardFunction:
    """The strict format reward (``paper=True``: the reference's single-line regex)."""
    if paper:
        return RewardFunction("strict_format_reward_paper", strict_format_score_paper)
    return RewardFunction("strict_format_reward", strict_format_score)


def format_rewards(paper: bool = False) -> list[RewardFunction]:
    """The reference's three format rewards, in its order (each weighted 1 when summed)."""
    return [xmlcount_reward(paper), soft_format_reward(paper), strict_format_reward(paper)]


# --------------------------------------------------------------------------- accuracy


def paper_accuracy_score(text: str, gold: GoldLike) -> float:
    """Reference vanilla GRPO accuracy: 2.0 if ``\\boxed{gold}`` occurs in ``text``, else 0."""
    return PAPER_SCALE if f"\\boxed{{{paper_gold(gold)}}}" in text else 0.0


def paper_future_score(text: str, gold: GoldLike) -> float:
    """Reference MOTIF score of one trajectory's last response ``text``.

    2.0 if ``\\boxed{gold}`` occurs in its extracted answer (the reference's split rule),
    1.0 if it occurs elsewhere in the response, else 0.0.
    """
    target = f"\\boxed{{{paper_gold(gold)}}}"
    if target in extract_summary(text, "paper"):
        return PAPER_SCALE
    return PAPER_SCALE / 2 if target in text else 0.0


def _check_mode(mode: str, weight: float, fallback: str = "none") -> None:
    if fallback not in ("none", "response"):
        raise ValueError(f"unknown fallback {fallback!r}; use 'none' or 'response'")
    if mode not in ("default", "paper"):
        raise ValueError(f"unknown scoring mode {mode!r}; use 'default' or 'paper'")
    if mode == "paper" and weight != DEFAULT_WEIGHT:
        raise ValueError(
            "mode='paper' reproduces the reference's fixed 2/1/0 scale; weight only applies "
            f"to mode='default' (got weight={weight})"
        )
    if weight <= 0:
        raise ValueError(f"weight must be positive, got {weight}")


def _oracle_score(
    text: str,
    gold: GoldLike,
    weight: float,
    fallback: Fallback,
    timeout_s: float,
    stats: GradeStats,
) -> float | None:
    """``weight`` if correct, 0.0 if not, None if it cannot be graded (counted in ``stats``)."""
    verdict = stats.add(grade_text(text, gold, fallback=fallback, timeout_s=timeout_s)).correct
    if verdict is None:
        return None
    return weight if verdict else 0.0


def future_accuracy(
    groups: Sequence[Sequence[Trajectory]],
    golds: Sequence[GoldLike],
    mode: ScoreMode = "default",
    weight: float = DEFAULT_WEIGHT,
    *,
    fallback: Fallback = "none",
    timeout_s: float = DEFAULT_TIMEOUT_S,
    stats: GradeStats | None = None,
    phi: int | None = None,
) -> list[RewardValue]:
    """MOTIF's future-accuracy reward: per round-1 completion, the mean score of its
    ``k`` continuation trajectories.

    Args:
        groups: for each round-1 completion, its trajectories
            (:meth:`motif.engine.RolloutEngine.continue_from`).
        golds: one raw gold per completion (GSM8K ``... #### 18`` is fine).
        mode: ``default``: ``weight`` if the final answer of the trajectory's
            ``final_text`` is correct (:func:`motif.grading.grade_text`; the last round's
            response, or for ``carry_over="tail"`` the whole thought, its chunks joined),
            else 0; a trajectory that cannot be graded
            counts 0 and is logged, and the entry is None only when none of the ``k``
            could be graded. ``paper``: :func:`paper_future_score` (2/1/0), never None.
        weight: score of a correct trajectory in ``default`` mode.
        fallback: also accept a box outside ``<answer>`` (``default`` mode only).
        timeout_s: time bound of each grading.
        stats: also add this call's grading tally to it.
        phi: with rounds the model ends itself (``--round-end model``, ``--efficiency-reward``),
            the cap of rounds: each trajectory's score is multiplied by InftyThink+'s
            :func:`efficiency_factor` of the rounds it used (arXiv 2602.06960).
    """
    _check_mode(mode, weight, fallback)
    if len(groups) != len(golds):
        raise ValueError(f"got {len(groups)} trajectory groups but {len(golds)} golds")
    tally = GradeStats()
    rewards = [
        _group_reward(g, gold, mode, weight, fallback, timeout_s, tally, phi)
        for g, gold in zip(groups, golds, strict=True)
    ]
    if mode == "default":
        tally.log("future_accuracy", logger)
    if stats is not None:
        stats.update(tally)
    return rewards


def _group_reward(
    group: Sequence[Trajectory],
    gold: GoldLike,
    mode: ScoreMode,
    weight: float,
    fallback: Fallback,
    timeout_s: float,
    tally: GradeStats,
    phi: int | None = None,
) -> RewardValue:
    if not group:
        raise ValueError("a round-1 completion has no continuation trajectories (k must be >= 1)")
    factors = [1.0 if phi is None else efficiency_factor(len(t.rounds), phi) for t in group]
    if mode == "paper":
        paper = [paper_future_score(t.final_text, gold) for t in group]
        return sum(s * f for s, f in zip(paper, factors, strict=True)) / len(group)
    scores = [_oracle_score(t.final_text, gold, weight, fallback, timeout_s, tally) for t in group]
    if all(s is None for s in scores):
        return None
    return sum((s or 0.0) * f for s, f in zip(scores, factors, strict=True)) / len(scores)


class AccuracyReward:
    """Single-round accuracy (vanilla GRPO), gold from a dataset column.

    ``default``: ``weight`` if the response's final answer is correct, 0 if not, None if it
    cannot be graded. ``paper``: :func:`paper_accuracy_score` (2.0 if ``\\boxed{gold}`` is in
    the response). The None count goes to the log and, under TRL, to the ``log_metric``
    metric ``<name>/ungraded``.
    """

    def __init__(
        self,
        answer_column: str = "answer",
        mode: ScoreMode = "default",
        weight: float = DEFAULT_WEIGHT,
        fallback: Fallback = "none",
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        _check_mode(mode, weight, fallback)
        self.answer_column = answer_column
        self.mode = mode
        self.weight = weight
        self.fallback = fallback
        self.timeout_s = timeout_s
        self.__name__ = "accuracy_reward_paper" if mode == "paper" else "accuracy_reward"

    def __call__(
        self, prompts: Sequence[Any], completions: Sequence[Completion], **kwargs: Any
    ) -> list[RewardValue]:
        """One reward per completion; golds come from ``kwargs[answer_column]``."""
        golds = column_values(kwargs, self.answer_column, len(completions), self.__name__)
        texts = [completion_text(c) for c in completions]
        if self.mode == "paper":
            return [paper_accuracy_score(t, g) for t, g in zip(texts, golds, strict=True)]
        tally = GradeStats()
        rewards = [
            _oracle_score(t, g, self.weight, self.fallback, self.timeout_s, tally)
            for t, g in zip(texts, golds, strict=True)
        ]
        tally.log(self.__name__, logger)
        log_metric = kwargs.get("log_metric")
        if callable(log_metric):
            log_metric(f"{self.__name__}/ungraded", float(tally.ungraded))
        return rewards

    def __repr__(self) -> str:
        return f"AccuracyReward({self.answer_column!r}, mode={self.mode!r}, weight={self.weight})"


def accuracy_reward(
    answer_column: str = "answer",
    mode: ScoreMode = "default",
    weight: float = DEFAULT_WEIGHT,
    fallback: Fallback = "none",
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> AccuracyReward:
    """Build the single-round accuracy reward (see :class:`AccuracyReward`)."""
    return AccuracyReward(answer_column, mode, weight, fallback, timeout_s)


# --------------------------------------------------------------------------- efficiency


def efficiency_factor(rounds_used: int, max_rounds: int) -> float:
    """InftyThink+'s efficiency term ``1 - ((n - 1) / phi) ** 2`` (arXiv 2602.06960).

    ``rounds_used`` is n, the rounds a trajectory took (1..phi); ``max_rounds`` is phi, the
    cap. 1.0 for one round, falling to ``1 - ((phi - 1) / phi) ** 2 > 0`` at the cap.

    Raises:
        ValueError: ``max_rounds < 1`` or ``rounds_used`` outside ``1..max_rounds``.
    """
    if max_rounds < 1:
        raise ValueError(f"max_rounds (phi) must be >= 1, got {max_rounds}")
    if not 1 <= rounds_used <= max_rounds:
        raise ValueError(f"rounds_used must be in 1..{max_rounds}, got {rounds_used}")
    return 1.0 - ((rounds_used - 1) / max_rounds) ** 2
