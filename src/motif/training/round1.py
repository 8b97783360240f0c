"""Round 1 of training sampled by motif's decode path (TRL's ``rollout_func`` hook).

TRL 1.16 samples the trained replies with ``model.generate`` unless ``GRPOTrainer`` is given a
``rollout_func`` (its documented, experimental hook). :func:`round1_rollout` is one: the same
prompts, rendered with the same chat template, sampled from the same distribution
(temperature, then top-k, then top-p, as transformers' warpers:
:func:`motif.backends.fast.sample_tokens`) by the run's
:class:`motif.training.policy.TrainingPolicy`, the backend the continuations use: prompts
shared by a group are prefilled once and finished rows leave the batch. On 2 CPU cores
``model.generate`` spent 18-20 s of a 31.7 s GRPO step on 8 replies of 96 tokens
(docs/performance.md).

Besides TRL's ``prompt_ids`` and ``completion_ids``, the rollout returns each reply's prompt
length (:data:`PROMPT_TOKENS_KEY`) and whether it stopped at its budget (:data:`TRUNCATED_KEY`):
TRL hands extra keys of a ``rollout_func`` to the reward functions as keyword arguments, so
the future-accuracy reward stores round 1 as it was generated.

Only for settings the decode path has: :func:`round1_params` returns None (TRL's own
``generate`` then runs) for ``min_p``, a repetition penalty, ``generation_kwargs``,
``chat_template_kwargs``, ``top_k`` or ``top_p`` left as None (``generate`` then takes them
from the model's generation config) and vLLM; motif passes TRL no tools or environments.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from motif.backends.base import SamplingParams
from motif.training.policy import TrainingPolicy

logger = logging.getLogger(__name__)

PROMPT_TOKENS_KEY = "reply_prompt_tokens"
"""Reward keyword (one int per row): the reply's prompt tokens, chat template included."""
TRUNCATED_KEY = "reply_truncated"
"""Reward keyword (one bool per row): the reply stopped at its budget, not at an EOS."""


def round1_params(args: Any) -> SamplingParams | None:
    """The round-1 sampling settings of a ``GRPOConfig`` as :class:`SamplingParams`, or None
    when they need TRL's own generation (see the module docstring)."""
    unsupported = (
        getattr(args, "use_vllm", False)
        or getattr(args, "min_p", None)
        or getattr(args, "repetition_penalty", 1.0) not in (None, 1.0)
        or getattr(args, "generation_kwargs", None)
        or getattr(args, "chat_template_kwargs", None)
        # None lets generate fill them from the model's generation config (top_k 50 by
        # default): only TRL's own path reproduces that
        or getattr(args, "top_k", None) is None
        or getattr(args, "top_p", None) is None
    )
    if unsupported:
        return None
    return SamplingParams(
        max_new_tokens=int(args.max_completion_length),
        temperature=float(args.temperature),
        top_p=float(args.top_p),
        top_k=int(args.top_k),
    )


def round1_rollout(params: SamplingParams, policy: TrainingPolicy) -> Callable[[list, Any], dict]:
    """A ``rollout_func`` sampling one reply per prompt row with ``params`` through ``policy``
    (bound to the trainer TRL passes).

    TRL passes the process's prompts (each repeated ``num_generations`` times by its sampler)
    and the trainer; the result holds, per row, the prompt's token ids, the reply's token ids
    (ending with the EOS token when the reply ended, as TRL's own path), the prompt's length
    (:data:`PROMPT_TOKENS_KEY`) and whether the reply was cut at its budget
    (:data:`TRUNCATED_KEY`), and no logprobs (TRL computes them itself outside vLLM).

    Raises:
        ValueError: a prompt plus ``params.max_new_tokens`` exceeds the model's context.
    """

    def rollout(prompts: list, trainer: Any) -> dict:
        if policy.trainer is not trainer:
            policy.bind(trainer)
        with policy.backend() as backend:
            prompt_ids = backend.render(prompts)
            outputs = backend.generate(prompts, params)
        if any(out.context_overflow for out in outputs):
            raise ValueError(
                "a round-1 prompt plus its budget does not fit the model's context; shorten "
                "the questions or lower round 1's budget (--max-completion-length; "
                "--tail-chunk under --carry-over tail)"
            )
        return {
            "prompt_ids": prompt_ids,
            "completion_ids": [list(out.token_ids) for out in outputs],
            "logprobs": None,
            PROMPT_TOKENS_KEY: [out.prompt_tokens for out in outputs],
            TRUNCATED_KEY: [bool(out.truncated) for out in outputs],
        }

    return rollout


def rollout_func(
    config: Any, args: Any, policy: TrainingPolicy
) -> Callable[[list, Any], dict] | None:
    """The ``rollout_func`` for ``GRPOTrainer`` sampling through ``policy`` (None: TRL
    generates), and logs the choice."""
    if config.motif.round1_generation == "trl":
        return None
    params = round1_params(args)
    if params is None:
        logger.info("round 1: TRL's generate (settings motif's decode path does not have)")
        return None
    logger.info("round 1: motif's decode path (%s)", params)
    return round1_rollout(params, policy)
