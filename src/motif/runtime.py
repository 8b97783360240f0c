"""Wiring shared by the commands: configs in, a ready backend and rollout engine out."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from motif import models  # called through the module: tests replace its functions
from motif.backends.template import check_continuation, folds_system
from motif.backends.vllm_options import VllmArgs, budget_option, plan_backend
from motif.config import OVERFLOW_MODES, GenerationArgs, ModelArgs, ProtocolArgs
from motif.engine import RolloutEngine
from motif.errors import ConfigError, MotifError
from motif.models import load_tokenizer, resolve_model


def protocol_generation(generation: GenerationArgs, protocol: ProtocolArgs) -> GenerationArgs:
    """The sampling a protocol actually runs: its budgets as its carry-over sets them
    (:meth:`motif.carryover.CarryOver.max_new_tokens`).

    ``tail``: round 1 writes ``C`` tokens, later chunks ``C - h - m``
    (:class:`motif.carryover.TailWindow`); ``none`` and ``summary``: ``generation`` as given.
    """
    carry = protocol.strategy()
    first, later = generation.max_new_tokens, generation.later_max_new_tokens
    budgets = carry.max_new_tokens(1, first, later), carry.max_new_tokens(2, first, later)
    if budgets == (first, later or first):
        return generation
    return replace(generation, max_new_tokens=budgets[0], later_max_new_tokens=budgets[1])


def check_protocol_fits(
    model: ModelArgs, generation: GenerationArgs, protocol: ProtocolArgs
) -> None:
    """Checks that need the model's config and tokenizer but not its weights.

    A per-round budget the carry-over cannot run (:meth:`CarryOver.check_budgets`:
    ``--round-end model`` needs room for its tags and its hand-over) or at least as large as
    the model's context (no room for any prompt); the
    chat template (:func:`motif.backends.template.folds_system`: a template that opens no
    assistant turn is refused, one that refuses the system role gets it folded into the user
    turn, with a note line); and ``--carry-over tail`` with a chat template that cannot
    continue an assistant turn (:func:`motif.backends.template.check_continuation`). A config
    or tokenizer that cannot be read here is left to the model load, which names the problem
    (``tail`` needs the tokenizer here: its load error is raised).

    Raises:
        ConfigError: naming the option and the fix. MotifError: ``tail`` and the tokenizer
            cannot be loaded.
    """
    strategy = protocol.strategy()
    strategy.check_budgets(generation.max_new_tokens, generation.later_max_new_tokens)
    budget, option = budget_option(generation, protocol)
    limit = model_context(model)
    if limit is not None and budget >= limit:
        raise ConfigError(
            f"{option} {budget} is a per-round budget at least as large as the model's context "
            f"of {limit} tokens, leaving no room for the prompt: lower {option}"
        )
    continues = strategy.continues_turn
    try:
        tokenizer = load_tokenizer(model.model, model.trust_remote_code)
    except MotifError:
        if continues:
            raise
        return
    folds_system(tokenizer)
    if continues:
        check_continuation(tokenizer)


def model_context(model: ModelArgs) -> int | None:
    """The model's context in tokens from its config alone (no weights load); None when the
    config states none or cannot be read here (the model load then names the problem)."""
    from motif.backends.hf import context_limit  # torch: loaded only when a model runs

    return context_limit(_read_config(model))


def _read_config(model: ModelArgs) -> Any:
    """A holder of the model's config (``.config``), or None when it cannot be read here."""
    from types import SimpleNamespace

    from transformers import AutoConfig

    try:
        source, local_only = resolve_model(model.model)
        config = AutoConfig.from_pretrained(
            source, local_files_only=local_only, trust_remote_code=model.trust_remote_code
        )
    except Exception:  # the model load reports it properly
        return None
    return SimpleNamespace(config=config)


def load_backend(
    args: ModelArgs,
    vllm: Any = None,
    generation: GenerationArgs | None = None,
    protocol: ProtocolArgs | None = None,
) -> Any:
    """Load the model named by ``args`` in the backend ``args.backend`` resolves to.

    ``vllm``: the :class:`motif.backends.vllm_options.VllmArgs` (default: their defaults);
    ``generation``: the sampling the run uses (temperature and per-round budgets are checked);
    ``protocol``: the protocol it runs (its budgets and template needs are checked before the
    weights load, :func:`check_protocol_fits`). Every check that needs no model runs first
    (:func:`~motif.backends.vllm_options.plan_backend`); with ``--backend auto`` the choice is
    printed to stderr. ``--context-overflow`` maps onto the backend's ``overflow`` mode
    (:data:`OVERFLOW_MODES`) for both backends.
    """
    import sys

    vllm = vllm if vllm is not None else VllmArgs()
    generation = generation if generation is not None else GenerationArgs()
    if protocol is not None:
        generation = protocol_generation(generation, protocol)
    backend, line = plan_backend(args, vllm, generation, protocol=protocol)
    if args.backend == "auto":
        print(line, file=sys.stderr)
    if protocol is not None:
        check_protocol_fits(args, generation, protocol)
    overflow = OVERFLOW_MODES[args.context_overflow]
    budget, option = budget_option(generation, protocol)
    if backend == "vllm":
        from motif.backends.vllm import (
            load_vllm_backend,  # vLLM and torch: loaded only with --backend vllm
        )

        return load_vllm_backend(
            args.model,
            args.adapter,
            vllm,
            dtype=args.dtype,
            trust_remote_code=args.trust_remote_code,
            budget=budget,
            overflow=overflow,
            budget_option=option,
        )
    from motif.backends.hf import TransformersBackend  # torch: loaded only when a model runs

    model, tokenizer = models.load_model(
        args.model, args.adapter, args.dtype, args.device, args.trust_remote_code
    )
    return TransformersBackend(
        model,
        tokenizer,
        max_batch_size=args.max_batch_size,
        decode=args.decode,
        decode_dtype=args.decode_dtype,
        overflow=overflow,
    )


def build_engine(backend: Any, generation: GenerationArgs, protocol: ProtocolArgs) -> Any:
    """A rollout engine with round-1 and later-round sampling taken from ``generation``."""

    return RolloutEngine(
        backend,
        protocol.protocol(),
        first_round=generation.sampling(),
        later_rounds=generation.sampling(later=True),
        early_stop=protocol.early_stop,
    )
