"""The MOTIF future-accuracy reward: continuations of each trained reply by the live policy.

TRL's reward signature passes the batch's columns, not the policy, so the reward holds the run's
:class:`motif.training.policy.TrainingPolicy` (the trainer bound to it after construction) and
rolls its continuations out through it, as round 1 and the held-out check do. Round 1's real
outputs reach it as keyword arguments: TRL's ``completion_ids`` and, when motif's
``rollout_func`` sampled round 1 (:mod:`motif.training.round1`), each reply's prompt length and
truncation (:data:`motif.training.round1.PROMPT_TOKENS_KEY`, ``TRUNCATED_KEY``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

from motif.backends.base import SamplingParams
from motif.errors import MotifError
from motif.protocol import Protocol
from motif.rewards import column_values, completion_text, efficiency_factor, future_accuracy
from motif.training.config import MotifArgs
from motif.training.credit import HISTORY_KEY, ROUND_KEY, Credit, harvest, share_states
from motif.training.policy import TrainingPolicy
from motif.training.round1 import PROMPT_TOKENS_KEY, TRUNCATED_KEY

logger = logging.getLogger(__name__)


class FutureAccuracyReward:
    """Reward each round-1 completion by the accuracy of its ``k`` continuations (rounds 2..n).

    TRL signature: ``(prompts, completions, **columns) -> list[float | None]``; the question and
    gold come from the dataset columns ``question`` and ``answer``. Logged under ``__name__``
    by TRL, plus ``future_accuracy``, ``continuation_tokens`` and ``continuation_seconds``.

    Args:
        motif: the run's MOTIF settings (protocol, ``k``, continuation sampling, scoring).
        question_column, answer_column: the dataset columns of the question and the gold.
        credit: the run's credit state (:mod:`motif.training.credit_schemes`): a
            :class:`motif.training.credit.Credit` under ``--credit all``, a
            :class:`motif.training.trajectory.TrajectoryBatch` under ``--credit trajectory``
            (each row's trajectory rolled out once and rewarded by its final accuracy); its
            ``score(reward, questions, golds, texts, kwargs)`` scores the batch.
        policy: the run's :class:`motif.training.policy.TrainingPolicy` (default: one made
            from ``motif``; bind it, or call :meth:`bind`, before the first call).

    Round 1 is stored as it was generated: TRL's ``completion_ids`` (its token count) and, from
    motif's ``rollout_func``, the keywords ``reply_prompt_tokens`` and ``reply_truncated``.
    When TRL generated round 1 itself (``--round1-generation trl`` or a setting motif's decode
    path lacks), those two are absent: the prompt is recorded as 0 tokens and, under
    ``tail``, a reply is cut when its ids do not end in an end-of-sequence id.

    ``--carry-over tail`` (Delethink, arXiv 2510.06557): a round-1 completion is chunk 1 of a
    thought. One cut at its budget is continued from its token ids, chunks 2..I of the same
    assistant turn, ``k`` times; one that ended is not continued, and its ``k`` trajectories
    are graded on chunk 1 alone. The ids come from TRL's ``completion_ids`` argument, never
    from re-tokenising the text; a trainer that does not pass them is an error. Also logs
    ``continued_completions``.

    ``--credit all`` (``credit`` given, :mod:`motif.training.credit`): rows carry the round
    their reply answers and the rounds before it (columns ``credit_round``,
    ``credit_history``); a reply of round ``r < n`` is continued ``k`` times over rounds
    ``r+1..n``, one of the last round is graded itself; the new states go to the buffer, and
    ``round{r}/future_accuracy``, ``/continuation_tokens``, ``/continuation_seconds`` are logged.
    """

    __name__ = "future_accuracy_reward"

    def __init__(
        self,
        motif: MotifArgs,
        question_column: str = "question",
        answer_column: str = "answer",
        credit: Any = None,
        policy: TrainingPolicy | None = None,
    ):
        self.motif = motif
        self.credit = credit
        self.policy = policy if policy is not None else TrainingPolicy.from_args(motif)
        self.protocol: Protocol = motif.protocol()
        self.params = SamplingParams(
            max_new_tokens=motif.continuation_max_new_tokens,
            temperature=motif.continuation_temperature,
            top_p=motif.continuation_top_p,
        )
        self.question_column = question_column
        self.answer_column = answer_column

    @property
    def trainer(self) -> Any:
        """The trainer the policy generates with (None until bound)."""
        return self.policy.trainer

    def bind(self, trainer: Any) -> FutureAccuracyReward:
        """Bind the policy to the trainer whose weights generate the continuations."""
        self.policy.bind(trainer)
        return self

    def __call__(self, prompts: Sequence[Any], completions: Sequence[Any], **kwargs: Any) -> list:
        if self.trainer is None:
            raise RuntimeError("FutureAccuracyReward is not bound to a trainer; call bind(trainer)")
        n = len(completions)
        questions = column_values(kwargs, self.question_column, n, self.__name__)
        golds = column_values(kwargs, self.answer_column, n, self.__name__)
        texts = [completion_text(c) for c in completions]
        if self.credit is not None:  # the credit scheme's hook (motif.training.credit_schemes)
            return self.credit.score(self, questions, golds, texts, kwargs)
        ids, truncated, prompt_tokens = self._first_round(kwargs, n)
        start = time.perf_counter()
        groups = self.rollout(questions, texts, ids, truncated, prompt_tokens)
        seconds = time.perf_counter() - start
        rewards = self._scores(groups, golds)
        tokens = sum(r.completion_tokens for g in groups for t in g for r in t.rounds[1:])
        self._log(kwargs.get("log_metric"), rewards, groups, tokens, seconds, golds)
        if self.protocol.continues_turn and callable(kwargs.get("log_metric")):
            kwargs["log_metric"]("continued_completions", float(sum(truncated or [])))
        return rewards

    def _scores(self, groups: list[list[Any]], golds: Sequence[Any], discount: bool = True) -> list:
        """Mean score of each reply's trajectories; None where every one was cut (ungraded).
        ``discount``: times InftyThink+'s efficiency term under ``--efficiency-reward``."""
        kept = [[t for t in g if not getattr(t, "cut", False)] for g in groups]
        graded = [i for i, g in enumerate(kept) if g]
        rewards: list = [None] * len(groups)
        scores = future_accuracy(
            [kept[i] for i in graded],
            [golds[i] for i in graded],
            self.motif.scoring,
            self.motif.accuracy_reward_weight(),
            phi=self.motif.rounds if self.motif.efficiency_reward and discount else None,
        )
        for i, score in zip(graded, scores, strict=True):
            rewards[i] = score
        return rewards

    def _all_rounds(
        self, credit: Credit, questions: list, golds: list, texts: list, kwargs: dict
    ) -> list:
        """``--credit all``: each reply by the accuracy of ``k`` continuations from its state.

        Rows of one round are continued together (one rollout per round present, the same
        rounds on every process); a reply of the last round is graded itself. The rollouts'
        new states go to the buffer (:func:`motif.training.credit.share_states`).
        """
        n, log_metric = len(texts), kwargs.get("log_metric")
        rounds = list(kwargs.get(ROUND_KEY) or [1] * n)
        histories = list(kwargs.get(HISTORY_KEY) or [None] * n)
        partials = [
            credit.reply(histories[i] or [], questions[i], texts[i], *reply)
            for i, reply in enumerate(self._replies(kwargs, n))
        ]
        rewards: list = [None] * n
        every, found, seconds, tokens = [], [], 0.0, 0
        for r in sorted(set(rounds)):
            rows = [i for i in range(n) if rounds[i] == r]
            start = time.perf_counter()
            groups = self.rollout_partials([partials[i] for i in rows])
            spent = time.perf_counter() - start
            scores = self._scores(groups, [golds[i] for i in rows])
            for i, score in zip(rows, scores, strict=True):
                rewards[i] = score
            made = sum(x.completion_tokens for g in groups for t in g for x in t.rounds[r:])
            self._log_round(log_metric, r, scores, made, spent)
            found += harvest(
                groups, [golds[i] for i in rows], [r] * len(rows), credit.protocol.rounds
            )
            every += groups
            seconds, tokens = seconds + spent, tokens + made
        credit.buffer.add(share_states(found, credit.buffer.size, self.trainer.accelerator))
        order = [i for r in sorted(set(rounds)) for i in range(n) if rounds[i] == r]
        graded = [rewards[i] for i in order]  # in the order of `every`
        self._log(log_metric, graded, every, tokens, seconds, [golds[i] for i in order])
        return rewards

    @staticmethod
    def _replies(kwargs: dict, n: int) -> list[tuple[int, int, bool]]:
        """(completion tokens, prompt tokens, truncated) of each reply: TRL's
        ``completion_ids`` and motif's round-1 keywords (0 and False when TRL generated)."""
        lengths = [len(c) for c in kwargs.get("completion_ids") or [[]] * n]
        prompts = list(kwargs.get(PROMPT_TOKENS_KEY) or [0] * n)
        cut = list(kwargs.get(TRUNCATED_KEY) or [False] * n)
        return list(zip(lengths, prompts, map(bool, cut), strict=True))

    def rollout_partials(self, partials: Sequence[Any]) -> list[list[Any]]:
        """``k`` continuations of each partial trajectory to the last round, with the live
        policy; a partial already at its last round is its own (only) trajectory."""
        if all(len(p.rounds) >= self.protocol.rounds for p in partials):
            return [[p] for p in partials]
        with self.policy.engine(self.protocol, self.params) as engine:
            return engine.continue_partials(partials, self.motif.k)

    def _first_round(self, kwargs: dict, n: int) -> tuple[list | None, list | None, list | None]:
        """Round 1's (token ids, cut at the budget?, prompt tokens) per completion.

        From motif's ``rollout_func``: TRL's ``completion_ids`` and the round-1 keywords.
        When TRL generated round 1 (no keywords): under ``tail`` the ids, and a cut where
        they do not end in an end-of-sequence id, prompt tokens unknown (None); otherwise
        (None, None, None), as round 1 is then only its text.

        Raises:
            MotifError: ``tail`` and the trainer passed no ``completion_ids`` (TRL >= 1.0 does).
            ValueError: a keyword's length is not ``n``.
        """
        given = kwargs.get("completion_ids")
        ids = None if given is None else [list(c) for c in given]
        if ids is not None and len(ids) != n:
            raise ValueError(f"got {len(ids)} completion_ids for {n} completions")
        if kwargs.get(TRUNCATED_KEY) is not None and ids is not None:
            truncated = [bool(t) for t in kwargs[TRUNCATED_KEY]]
            prompt_tokens = [int(p) for p in kwargs[PROMPT_TOKENS_KEY]]
            if not len(truncated) == len(prompt_tokens) == n:
                raise ValueError(f"got round-1 keywords for other than {n} completions")
            return ids, truncated, prompt_tokens
        if not self.protocol.continues_turn:
            return None, None, None
        if ids is None:
            raise MotifError(
                f"{self.__name__} with --carry-over {self.protocol.carry_over} continues each "
                "completion from its token ids, and the trainer passed no completion_ids (TRL's "
                "GRPOTrainer does)"
            )
        eos = self.policy.eos_ids()
        return ids, [bool(c) and c[-1] not in eos for c in ids], None

    def rollout(
        self,
        questions: Sequence[str],
        texts: Sequence[str],
        token_ids: Sequence[Sequence[int]] | None = None,
        truncated: Sequence[bool] | None = None,
        prompt_tokens: Sequence[int] | None = None,
    ) -> list[list[Any]]:
        """The ``k`` continuations of every completion, with the live policy, one call a round.

        ``token_ids``, ``truncated`` and ``prompt_tokens``: each completion's ids, whether it
        was cut at its budget and its prompt's length (:meth:`RolloutEngine.continue_from`;
        ``tail`` needs the first two).
        """
        with self.policy.engine(self.protocol, self.params) as engine:
            return engine.continue_from(
                questions,
                texts,
                self.motif.k,
                first_token_ids=token_ids,
                first_truncated=truncated,
                first_prompt_tokens=prompt_tokens,
            )

    def _budget_option(self) -> str:
        """The option that sets the continuations' per-round budget (a cut's fix)."""
        if self.protocol.continues_turn:
            return "--tail-chunk (every chunk's carried plus new tokens)"
        return (
            "--continuation-max-new-tokens, or --max-completion-length (round 1's reply, "
            "whose summary round 2 carries)"
        )

    def _log_round(
        self, log_metric: Any, r: int, scores: list, tokens: int, seconds: float
    ) -> None:
        """``--credit all``: the future accuracy, continuation tokens and seconds of round ``r``."""
        if not callable(log_metric):
            return
        graded = [s for s in scores if s is not None]
        weight = self.motif.accuracy_reward_weight()
        accuracy = sum(graded) / (len(graded) * weight) if graded else 0.0
        log_metric(f"round{r}/future_accuracy", accuracy)
        log_metric(f"round{r}/continuation_tokens", float(tokens))
        log_metric(f"round{r}/continuation_seconds", seconds)

    def _log(
        self,
        log_metric: Any,
        rewards: list,
        groups: list,
        tokens: int,
        seconds: float,
        golds: Sequence[Any],
    ) -> None:
        """Log the batch's future accuracy (never discounted: under ``--efficiency-reward``
        the trajectories are graded again without the term, which is logged as
        ``efficiency``, the mean over trajectories), cut continuations, tokens and time.
        ``rewards``, ``groups`` and ``golds``: one per reply, in one order."""
        if self.motif.efficiency_reward:
            rewards = self._scores(groups, golds, discount=False)
        graded = [r for r in rewards if r is not None]
        weight = self.motif.accuracy_reward_weight()
        accuracy = sum(graded) / (len(graded) * weight) if graded else 0.0
        logger.debug(
            "future accuracy %.3f, %d continuation tokens in %.1fs", accuracy, tokens, seconds
        )
        cut = sum(getattr(t, "cut", False) for g in groups for t in g)
        if cut:
            logger.warning(
                "%d continuation(s) cut: a later round's prompt plus its budget exceeds the "
                "model's context; they are left out of the reward (None if all k are); "
                "lower %s",
                cut,
                self._budget_option(),
            )
        if callable(log_metric):
            log_metric("continuations_cut", float(cut))
            log_metric("future_accuracy", accuracy)
            if self.motif.efficiency_reward:
                log_metric("efficiency", _mean_efficiency(groups, self.motif.rounds))
            log_metric("continuation_tokens", float(tokens))
            log_metric("continuation_seconds", seconds)


def _mean_efficiency(groups: list[list[Any]], phi: int) -> float:
    """The mean of InftyThink+'s efficiency term over the trajectories that were not cut."""
    kept = [t for g in groups for t in g if not getattr(t, "cut", False)]
    return sum(efficiency_factor(len(t.rounds), phi) for t in kept) / max(1, len(kept))
