"""Wiring shared by the commands: configs in, a ready backend and rollout engine out."""

from __future__ import annotations

from typing import Any

from motif.config import GenerationArgs, ModelArgs, ProtocolArgs


def load_backend(args: ModelArgs) -> Any:
    """Load the model named by ``args`` and wrap it in the transformers backend.

    ``--context-overflow`` maps onto the backend's ``overflow`` mode (:data:`OVERFLOW_MODES`).
    """
    from motif.backends.hf import TransformersBackend
    from motif.config import OVERFLOW_MODES
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
        overflow=OVERFLOW_MODES[args.context_overflow],
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
