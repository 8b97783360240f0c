"""The MOTIF future-accuracy reward, bound to the trainer whose live policy rolls out continuations.

Why a bound reward object and not TRL's ``rollout_func``: ``rollout_func`` replaces TRL's own
round-1 generation, and with it TRL's vLLM and transformers paths, EOS handling and importance
sampling. A reward object leaves round 1 to TRL; it only needs the policy, which TRL's reward
signature does not pass, so :meth:`FutureAccuracyReward.bind` hands it the trainer explicitly
after construction (no module globals).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from motif.backends.base import GenerationBackend, SamplingParams
from motif.engine import RolloutEngine
from motif.errors import MotifError
from motif.protocol import Protocol
from motif.rewards import column_values, completion_text, future_accuracy
from motif.training.config import MotifArgs

if TYPE_CHECKING:
    from motif.training.credit import Credit

logger = logging.getLogger(__name__)


@contextmanager
def policy_backend(
    trainer: Any, max_batch_size: int, decode_dtype: str = "auto"
) -> Iterator[GenerationBackend]:
    """A backend that generates with the trainer's *current* policy.

    vLLM runs: TRL's own engine (weights synced for this step). Otherwise the model unwrapped by
    TRL's helper (ZeRO-3 parameters gathered, gradient checkpointing suspended), LoRA active,
    generating in ``decode_dtype`` (``--rollout-decode-dtype``; see ``TransformersBackend``).
    """
    if getattr(trainer, "use_vllm", False):
        from motif.backends.vllm import VLLMBackend

        yield VLLMBackend.from_trainer(trainer)
        return
    import torch
    from trl.models import unwrap_model_for_generation

    from motif.backends.hf import TransformersBackend
    from motif.compat import library_deprecations

    gather = getattr(trainer.args, "ds3_gather_for_generation", True)
    with (
        library_deprecations(),  # TRL's helper reads a deprecated transformers property
        unwrap_model_for_generation(
            trainer.model_wrapped, trainer.accelerator, gather_deepspeed3_params=gather
        ) as policy,
        torch.no_grad(),
    ):
        yield TransformersBackend(
            policy,
            trainer.processing_class,
            max_batch_size=max_batch_size,
            decode_dtype=decode_dtype,  # type: ignore[arg-type]  # checked by MotifArgs
            overflow="skip",
        )


class FutureAccuracyReward:
    """Reward each round-1 completion by the accuracy of its ``k`` continuations (rounds 2..n).

    TRL signature: ``(prompts, completions, **columns) -> list[float | None]``; the question and
    gold come from the dataset columns ``question`` and ``answer``. Logged under ``__name__``
    by TRL, plus ``future_accuracy``, ``continuation_tokens`` and ``continuation_seconds``.

    ``--carry-over tail`` (Delethink, arXiv 2510.06557): a round-1 completion is chunk 1 of a
    thought. One cut at its budget (its ``completion_ids`` do not end in an end-of-sequence id)
    is continued from its token ids, chunks 2..I of the same assistant turn, ``k`` times; one
    that ended is not continued, and its ``k`` trajectories are graded on chunk 1 alone. The
    ids come from TRL's ``completion_ids`` argument, never from re-tokenising the text; a
    trainer that does not pass them is an error. Also logs ``continued_completions``.

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
        credit: Credit | None = None,
    ):
        self.motif = motif
        self.credit = credit
        self.protocol: Protocol = motif.protocol()
        self.params = SamplingParams(
            max_new_tokens=motif.continuation_max_new_tokens,
            temperature=motif.continuation_temperature,
            top_p=motif.continuation_top_p,
        )
        self.question_column = question_column
        self.answer_column = answer_column
        self.trainer: Any = None

    def bind(self, trainer: Any) -> FutureAccuracyReward:
        """Attach the trainer whose policy generates the continuations."""
        self.trainer = trainer
        return self

    def __call__(self, prompts: Sequence[Any], completions: Sequence[Any], **kwargs: Any) -> list:
        if self.trainer is None:
            raise RuntimeError("FutureAccuracyReward is not bound to a trainer; call bind(trainer)")
        n = len(completions)
        questions = column_values(kwargs, self.question_column, n, self.__name__)
        golds = column_values(kwargs, self.answer_column, n, self.__name__)
        texts = [completion_text(c) for c in completions]
        if self.credit is not None:
            return self._all_rounds(questions, golds, texts, kwargs)
        ids, truncated = self._first_ids(kwargs, n)
        start = time.perf_counter()
        groups = self.rollout(questions, texts, ids, truncated)
        seconds = time.perf_counter() - start
        rewards = self._scores(groups, golds)
        tokens = sum(r.completion_tokens for g in groups for t in g for r in t.rounds[1:])
        self._log(kwargs.get("log_metric"), rewards, groups, tokens, seconds)
        if truncated is not None and callable(kwargs.get("log_metric")):
            kwargs["log_metric"]("continued_completions", float(sum(truncated)))
        return rewards

    def _scores(self, groups: list[list[Any]], golds: Sequence[Any]) -> list:
        """Mean score of each reply's trajectories; None where every one was cut (ungraded)."""
        kept = [[t for t in g if not getattr(t, "cut", False)] for g in groups]
        graded = [i for i, g in enumerate(kept) if g]
        rewards: list = [None] * len(groups)
        scores = future_accuracy(
            [kept[i] for i in graded],
            [golds[i] for i in graded],
            self.motif.scoring,
            self._weight(),
        )
        for i, score in zip(graded, scores, strict=True):
            rewards[i] = score
        return rewards

    def _all_rounds(self, questions: list, golds: list, texts: list, kwargs: dict) -> list:
        """``--credit all``: each reply by the accuracy of ``k`` continuations from its state.

        Rows of one round are continued together (one rollout per round present, the same
        rounds on every process); a reply of the last round is graded itself. The rollouts'
        new states go to the buffer (:func:`motif.training.credit.share_states`).
        """
        from motif.training.credit import HISTORY_KEY, ROUND_KEY, harvest, share_states

        n, credit, log_metric = len(texts), self.credit, kwargs.get("log_metric")
        rounds = list(kwargs.get(ROUND_KEY) or [1] * n)
        histories = list(kwargs.get(HISTORY_KEY) or [None] * n)
        lengths = [len(c) for c in kwargs.get("completion_ids") or [[]] * n]
        rewards: list = [None] * n
        every, found, seconds, tokens = [], [], 0.0, 0
        for r in sorted(set(rounds)):
            rows = [i for i in range(n) if rounds[i] == r]
            partials = [
                credit.reply(histories[i] or [], questions[i], texts[i], lengths[i]) for i in rows
            ]
            start = time.perf_counter()
            groups = self.rollout_partials(partials)
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
        self._log(log_metric, rewards, every, tokens, seconds)
        return rewards

    def _policy(self) -> Any:
        """:func:`policy_backend` at the continuations' batch size and rollout dtype."""
        motif = self.motif
        return policy_backend(
            self.trainer, motif.continuation_batch_size, motif.rollout_decode_dtype
        )

    def rollout_partials(self, partials: Sequence[Any]) -> list[list[Any]]:
        """``k`` continuations of each partial trajectory to the last round, with the live
        policy; a partial already at its last round is its own (only) trajectory."""
        if all(len(p.rounds) >= self.protocol.rounds for p in partials):
            return [[p] for p in partials]
        with self._policy() as backend:
            engine = RolloutEngine(backend, self.protocol, self.params)
            return engine.continue_partials(partials, self.motif.k)

    def _first_ids(self, kwargs: dict, n: int) -> tuple[list | None, list | None]:
        """``tail``: (token ids, cut at the budget?) of each round-1 completion; else (None, None).

        Raises:
            MotifError: ``tail`` and the trainer passed no ``completion_ids`` (TRL >= 1.0 does).
        """
        if not self.protocol.continues_turn:
            return None, None
        if kwargs.get("completion_ids") is None:
            raise MotifError(
                f"{self.__name__} with --carry-over tail continues each completion from its "
                "token ids, and the trainer passed no completion_ids (TRL's GRPOTrainer does)"
            )
        ids = [list(c) for c in kwargs["completion_ids"]]
        if len(ids) != n:
            raise ValueError(f"got {len(ids)} completion_ids for {n} completions")
        from motif.backends.hf import eos_token_ids

        eos = set(eos_token_ids(self.trainer.model, self.trainer.processing_class))
        return ids, [bool(c) and c[-1] not in eos for c in ids]

    def rollout(
        self,
        questions: Sequence[str],
        texts: Sequence[str],
        token_ids: Sequence[Sequence[int]] | None = None,
        truncated: Sequence[bool] | None = None,
    ) -> list[list[Any]]:
        """The ``k`` continuations of every completion, with the live policy, one call a round.

        ``token_ids`` and ``truncated`` (``tail`` only): each completion's ids and whether it
        was cut at its budget (:meth:`RolloutEngine.continue_from`).
        """
        with self._policy() as backend:
            engine = RolloutEngine(backend, self.protocol, self.params)
            return engine.continue_from(
                questions, texts, self.motif.k, first_token_ids=token_ids, first_truncated=truncated
            )

    def _budget_option(self) -> str:
        """The option that sets the continuations' per-round budget (a cut's fix)."""
        if self.protocol.continues_turn:
            return "--tail-chunk (every chunk's carried plus new tokens)"
        return (
            "--continuation-max-new-tokens, or --max-completion-length (round 1's reply, "
            "whose summary round 2 carries)"
        )

    def _weight(self) -> float:
        return 2.0 if self.motif.scoring == "paper" else self.motif.accuracy_weight

    def _log_round(
        self, log_metric: Any, r: int, scores: list, tokens: int, seconds: float
    ) -> None:
        """``--credit all``: the future accuracy, continuation tokens and seconds of round ``r``."""
        if not callable(log_metric):
            return
        graded = [s for s in scores if s is not None]
        accuracy = sum(graded) / (len(graded) * self._weight()) if graded else 0.0
        log_metric(f"round{r}/future_accuracy", accuracy)
        log_metric(f"round{r}/continuation_tokens", float(tokens))
        log_metric(f"round{r}/continuation_seconds", seconds)

    def _log(
        self, log_metric: Any, rewards: list, groups: list, tokens: int, seconds: float
    ) -> None:
        graded = [r for r in rewards if r is not None]
        accuracy = sum(graded) / (len(graded) * self._weight()) if graded else 0.0
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
            log_metric("continuation_tokens", float(tokens))
            log_metric("continuation_seconds", seconds)
