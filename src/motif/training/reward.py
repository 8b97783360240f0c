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
from typing import Any

from motif.backends.base import GenerationBackend, SamplingParams
from motif.engine import RolloutEngine
from motif.protocol import Protocol
from motif.rewards import column_values, completion_text, future_accuracy
from motif.training.config import MotifArgs

logger = logging.getLogger(__name__)


@contextmanager
def policy_backend(trainer: Any, max_batch_size: int) -> Iterator[GenerationBackend]:
    """A backend that generates with the trainer's *current* policy.

    vLLM runs: TRL's own engine (weights synced for this step). Otherwise the model unwrapped by
    TRL's helper (ZeRO-3 parameters gathered, gradient checkpointing suspended), LoRA active.
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
            policy, trainer.processing_class, max_batch_size=max_batch_size, overflow="skip"
        )


class FutureAccuracyReward:
    """Reward each round-1 completion by the accuracy of its ``k`` continuations (rounds 2..n).

    TRL signature: ``(prompts, completions, **columns) -> list[float | None]``; the question and
    gold come from the dataset columns ``question`` and ``answer``. Logged under ``__name__``
    by TRL, plus ``future_accuracy``, ``continuation_tokens`` and ``continuation_seconds``.
    """

    __name__ = "future_accuracy_reward"

    def __init__(
        self, motif: MotifArgs, question_column: str = "question", answer_column: str = "answer"
    ):
        self.motif = motif
        self.protocol = Protocol(rounds=motif.rounds, summary_rule=motif.summary_rule)
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
        start = time.perf_counter()
        groups = self.rollout(questions, texts)
        seconds = time.perf_counter() - start
        kept = [[t for t in g if not getattr(t, "cut", False)] for g in groups]
        graded = [i for i, g in enumerate(kept) if g]
        rewards: list = [None] * n  # a completion whose every continuation was cut: ungraded
        scores = future_accuracy(
            [kept[i] for i in graded],
            [golds[i] for i in graded],
            self.motif.scoring,
            self._weight(),
        )
        for i, score in zip(graded, scores, strict=True):
            rewards[i] = score
        self._log(kwargs.get("log_metric"), rewards, groups, seconds)
        return rewards

    def rollout(self, questions: Sequence[str], texts: Sequence[str]) -> list[list[Any]]:
        """The ``k`` continuations of every completion, with the live policy, one call a round."""
        with policy_backend(self.trainer, self.motif.continuation_batch_size) as backend:
            engine = RolloutEngine(backend, self.protocol, self.params)
            return engine.continue_from(questions, texts, self.motif.k)

    def _weight(self) -> float:
        return 2.0 if self.motif.scoring == "paper" else self.motif.accuracy_weight

    def _log(self, log_metric: Any, rewards: list, groups: list, seconds: float) -> None:
        graded = [r for r in rewards if r is not None]
        accuracy = sum(graded) / (len(graded) * self._weight()) if graded else 0.0
        tokens = sum(r.completion_tokens for g in groups for t in g for r in t.rounds[1:])
        logger.debug(
            "future accuracy %.3f, %d continuation tokens in %.1fs", accuracy, tokens, seconds
        )
        cut = sum(getattr(t, "cut", False) for g in groups for t in g)
        if cut:
            logger.warning(
                "%d continuation(s) cut: a later round's prompt plus its budget exceeds the "
                "model's context; they are left out of the reward (None if all k are)",
                cut,
            )
        if callable(log_metric):
            log_metric("continuations_cut", float(cut))
            log_metric("future_accuracy", accuracy)
            log_metric("continuation_tokens", float(tokens))
            log_metric("continuation_seconds", seconds)
