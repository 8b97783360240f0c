"""The live policy of ``motif train``: every training rollout generates through one object.

:class:`TrainingPolicy` is built once per trainer (:func:`motif.training.trainer.build_trainer`)
and bound to it. Round 1 (:mod:`motif.training.round1`, TRL's ``rollout_func``), the
future-accuracy reward's continuations (:mod:`motif.training.reward`) and the held-out check
(:mod:`motif.training.watch`) all roll out through :meth:`TrainingPolicy.backend` (or
:meth:`TrainingPolicy.engine`), so they sample the same weights the same way: the trainer's
*current* policy, LoRA active, in ``--rollout-decode-dtype``, at
``--continuation-batch-size`` sequences per batch.

One generation batch of TRL (round 1, then its rewards) runs inside :meth:`TrainingPolicy.step`:
the weights do not move there, so the first rollout's backend, with its bf16 copy of the
policy and its cached shared prompt prefix, serves every rollout until the batch is scored
(one copy per step, not one per rollout).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from motif.backends.base import GenerationBackend, SamplingParams
from motif.compat import library_deprecations
from motif.engine import RolloutEngine
from motif.protocol import Protocol

if TYPE_CHECKING:
    from motif.training.config import MotifArgs

STEP_METHOD = "_generate_and_score_completions"
"""TRL's ``GRPOTrainer`` method that generates one batch and scores it (TRL 1.16)."""


@contextmanager
def live_model(trainer: Any) -> Iterator[Any]:
    """The model of ``trainer`` ready to generate with: unwrapped by TRL's helper (ZeRO-3
    parameters gathered unless ``ds3_gather_for_generation`` is off, gradient checkpointing
    suspended), under ``torch.no_grad()``; the same module object on every call outside ZeRO-3."""
    import torch  # heavy: kept out of `import motif`
    from trl.models import unwrap_model_for_generation

    gather = getattr(trainer.args, "ds3_gather_for_generation", True)
    with (
        library_deprecations(),  # TRL's helper reads a deprecated transformers property
        unwrap_model_for_generation(
            trainer.model_wrapped, trainer.accelerator, gather_deepspeed3_params=gather
        ) as model,
        torch.no_grad(),
    ):
        yield model


def _zero3(trainer: Any) -> bool:
    """Whether DeepSpeed ZeRO-3 partitions the weights (they exist whole only while gathered)."""
    state = getattr(trainer.accelerator, "state", None)
    plugin = getattr(state, "deepspeed_plugin", None)
    return plugin is not None and getattr(plugin, "zero_stage", None) == 3


class TrainingPolicy:
    """The trainer's current policy as a generation backend, for every rollout of training.

    Args:
        max_batch_size: most sequences per generate batch (``--continuation-batch-size``).
        decode_dtype: ``auto``, ``model`` or ``bfloat16`` (``--rollout-decode-dtype``; see
            :class:`motif.backends.hf.TransformersBackend`). vLLM runs use vLLM's own.

    Bind it to the trainer (:meth:`bind`) before a rollout; TRL's ``rollout_func`` binds the
    trainer it is handed. Not thread-safe: one trainer, one process.
    """

    def __init__(self, max_batch_size: int = 64, decode_dtype: str = "auto") -> None:
        self.max_batch_size = max_batch_size
        self.decode_dtype = decode_dtype
        self.trainer: Any = None
        self._step: contextlib.ExitStack | None = None  # open inside step()
        self._held: Any = None  # the step's transformers backend, kept until step() ends

    @classmethod
    def from_args(cls, motif: MotifArgs) -> TrainingPolicy:
        """The policy of a run's :class:`motif.training.config.MotifArgs`."""
        return cls(motif.continuation_batch_size, motif.rollout_decode_dtype)

    def bind(self, trainer: Any) -> TrainingPolicy:
        """Generate with ``trainer``'s policy from now on; returns self."""
        self.trainer = trainer
        return self

    def _bound(self) -> Any:
        if self.trainer is None:
            raise RuntimeError("TrainingPolicy is not bound to a trainer; call bind(trainer)")
        return self.trainer

    @contextmanager
    def step(self) -> Iterator[None]:
        """One generation batch: the weights stand still until the block ends, so the first
        transformers backend opened in it (and its bf16 copy and prefix cache) serves every
        :meth:`backend` call inside it. Nested blocks are one block. Under ZeRO-3 each call
        opens its own (the weights are whole only while gathered)."""
        if self._step is not None:
            yield
            return
        with contextlib.ExitStack() as stack:
            self._step, self._held = stack, None
            try:
                yield
            finally:
                self._step = self._held = None

    def hold_steps(self, trainer: Any) -> bool:
        """Run each of ``trainer``'s generation batches (:data:`STEP_METHOD`) inside
        :meth:`step`. Returns False, and every rollout opens its own backend, when this TRL
        release has no such method."""
        original = getattr(trainer, STEP_METHOD, None)
        if original is None:
            return False

        @functools.wraps(original)
        def held(*args: Any, **kwargs: Any) -> Any:
            with self.step():
                return original(*args, **kwargs)

        setattr(trainer, STEP_METHOD, held)
        return True

    @contextmanager
    def backend(self) -> Iterator[GenerationBackend]:
        """A backend generating with the bound trainer's *current* policy.

        vLLM runs: TRL's own engine (weights synced for this step). Otherwise the model of
        :func:`live_model`, LoRA active, through a ``TransformersBackend`` in
        ``decode_dtype`` whose prompts that do not fit the context come back cut
        (``overflow="skip"``), inside its ``frozen_weights`` block.

        Raises:
            RuntimeError: not bound to a trainer.
        """
        trainer = self._bound()
        if getattr(trainer, "use_vllm", False):
            from motif.backends.vllm import (
                VLLMBackend,  # vLLM and torch: loaded only with --backend vllm
            )

            yield VLLMBackend.from_trainer(trainer)
            return
        with live_model(trainer) as model:
            backend = self._transformers(model)
            with backend.frozen_weights():
                yield backend

    def _transformers(self, model: Any) -> Any:
        """The step's backend when it generates with ``model``, else a new one (kept for the
        rest of the step when a step is open)."""
        if self._held is not None and self._held.model is model:
            return self._held
        from motif.backends.hf import TransformersBackend  # torch: loaded only when a model runs

        backend = TransformersBackend(
            model,
            self.trainer.processing_class,
            max_batch_size=self.max_batch_size,
            decode_dtype=self.decode_dtype,  # type: ignore[arg-type]  # checked by MotifArgs
            overflow="skip",
        )
        if self._step is not None and not _zero3(self.trainer):
            self._step.enter_context(backend.frozen_weights())
            self._held = backend
        return backend

    @contextmanager
    def engine(
        self, protocol: Protocol, first: SamplingParams, later: SamplingParams | None = None
    ) -> Iterator[RolloutEngine]:
        """A :class:`motif.engine.RolloutEngine` over :meth:`backend` (``first``: round 1's
        sampling, ``later``: rounds 2..n's, default ``first``)."""
        with self.backend() as backend:
            yield RolloutEngine(backend, protocol, first, later)

    def eos_ids(self) -> set[int]:
        """The end-of-sequence token ids of the bound trainer's model and tokenizer."""
        from motif.backends.hf import eos_token_ids  # torch: loaded only when a model runs

        trainer = self._bound()
        return set(eos_token_ids(trainer.model, trainer.processing_class))

    def sync_weights(self) -> None:
        """vLLM runs: load this step's weights into TRL's engine (it holds the step's start).

        What TRL 1.16 does before its next generation (``GRPOTrainer._generate_single_turn``:
        ``vllm_generation.sync_weights()`` once per ``global_step``), so TRL does not do it
        twice. Nothing to do without vLLM (the transformers backend reads the live weights).
        """
        trainer = self._bound()
        if not getattr(trainer, "use_vllm", False):
            return
        if getattr(trainer, "_last_loaded_step", None) == trainer.state.global_step:
            return
        trainer.vllm_generation.sync_weights()
        trainer._last_loaded_step = trainer.state.global_step
