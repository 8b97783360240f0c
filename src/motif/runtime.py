"""Wiring shared by the commands: configs in, a ready backend and rollout engine out."""

from __future__ import annotations

from typing import Any

from motif.config import GenerationArgs, ModelArgs, ProtocolArgs


def load_backend(
    args: ModelArgs, vllm: Any = None, generation: GenerationArgs | None = None
) -> Any:
    """Load the model named by ``args`` in the backend ``args.backend`` resolves to.

    ``vllm``: the :class:`motif.backends.vllm_options.VllmArgs` (default: their defaults);
    ``generation``: the sampling the run uses (temperature and per-round budgets are checked).
    Every check that needs no model runs first (:func:`~motif.backends.vllm_options.plan_backend`);
    with ``--backend auto`` the choice is printed to stderr. ``--context-overflow`` maps onto
    the backend's ``overflow`` mode (:data:`OVERFLOW_MODES`) for both backends.
    """
    import sys

    from motif.backends.vllm_options import VllmArgs, plan_backend, round_budget
    from motif.config import OVERFLOW_MODES

    vllm = vllm if vllm is not None else VllmArgs()
    generation = generation if generation is not None else GenerationArgs()
    backend, line = plan_backend(args, vllm, generation)
    if args.backend == "auto":
        print(line, file=sys.stderr)
    overflow = OVERFLOW_MODES[args.context_overflow]
    if backend == "vllm":
        from motif.backends.vllm import load_vllm_backend

        return load_vllm_backend(
            args.model,
            args.adapter,
            vllm,
            dtype=args.dtype,
            trust_remote_code=args.trust_remote_code,
            budget=round_budget(generation),
            overflow=overflow,
        )
    from motif.backends.hf import TransformersBackend
    from motif.models import load_model

    model, tokenizer = load_model(
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
    from motif.engine import RolloutEngine

    return RolloutEngine(
        backend,
        protocol.protocol(),
        first_round=generation.sampling(),
        later_rounds=generation.sampling(later=True),
        early_stop=protocol.early_stop,
    )
