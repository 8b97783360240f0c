"""Generation with a transformers causal LM (plain or PEFT-wrapped), batched with left padding.

Two decode paths sit behind the same interface: ``fast`` (default, :mod:`motif.backends.fast`:
shared prefill, in-place KV cache, partial-sort sampling, finished rows dropped) and
``generate`` (``model.generate``, the reference). In the same dtype, their greedy output is
the same token for token; sampled output follows the same distribution.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Literal

import torch

from motif.backends import (  # called through the modules: tests replace their functions
    fast,
    kernels,
)
from motif.backends.base import ContextOverflow as ContextOverflow  # re-exported
from motif.backends.base import (
    GenerationBackend,
    GenerationOutput,
    SamplingParams,
    overflow_error,
)
from motif.backends.template import continue_prompts, render_chat
from motif.prompts import Chat

logger = logging.getLogger(__name__)

Overflow = Literal["error", "truncate_left", "skip"]
OVERFLOW_MODES = ("error", "truncate_left", "skip")

Decode = Literal["fast", "generate"]
DecodeDtype = Literal["model", "bfloat16", "auto"]


def eos_token_ids(model: Any, tokenizer: Any) -> list[int]:
    """Every token id that ends a reply: the tokenizer's EOS and the model's generation EOS."""
    ids: list[int] = []
    config_eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    for value in (tokenizer.eos_token_id, config_eos):
        for item in value if isinstance(value, (list, tuple)) else [value]:
            if item is not None and item not in ids:
                ids.append(int(item))
    if not ids:
        raise ValueError("the tokenizer and the model define no EOS token; cannot stop generation")
    return ids


def context_limit(model: Any) -> int | None:
    """The model's maximum sequence length, when its config states one."""
    config = getattr(model, "config", None)
    for name in ("max_position_embeddings", "n_positions", "max_sequence_length"):
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


def render_ids(
    tokenizer: Any, chats: Sequence[Chat], add_generation_prompt: bool = True
) -> list[list[int]]:
    """Each chat as the prompt token ids the backend feeds the model: the chat template (with
    the generation prompt unless ``add_generation_prompt`` is False, for a chat that already
    holds its reply), tokenized without added special tokens (the template holds them).

    A template that refuses a system message gets it folded into the first user turn
    (:func:`motif.backends.template.render_chat`).

    Raises:
        ConfigError: the template opens no assistant turn (see ``render_chat``).
    """

    texts = [
        render_chat(tokenizer, chat, add_generation_prompt=add_generation_prompt) for chat in chats
    ]
    return [tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]


def decode_ids(tokenizer: Any, ids: Sequence[int]) -> str:
    """Generated token ids as text, decoded as one sequence, special tokens removed."""
    return tokenizer.decode(list(ids), skip_special_tokens=True)


@contextmanager
def eval_mode(model: Any):
    """Switch dropout off for generation and restore the caller's mode afterwards."""
    was_training = bool(getattr(model, "training", False))
    model.eval()
    try:
        yield
    finally:
        if was_training:
            model.train()


@contextmanager
def plain_forward(model: Any):
    """Run ``model`` without the mixed-precision wrapper of accelerate's ``prepare_model``.

    With ``bf16``/``fp16`` training, accelerate replaces a prepared model's ``forward`` by an
    autocast-wrapped one and keeps the original as ``_original_forward``
    (accelerate/accelerator.py, ``prepare_model``); TRL's generation helper returns the model
    with that wrapper on. Decoding through it would mix bf16 activations with a cache and
    kernels in the model's dtype, so the original ``forward`` is put back for the call and the
    wrapper restored after.
    """
    original = getattr(model, "_original_forward", None)
    if original is None or "forward" not in vars(model):
        yield
        return
    wrapped = model.forward
    model.forward = original
    try:
        yield
    finally:
        model.forward = wrapped


class TransformersBackend(GenerationBackend):
    """Batched generation with a transformers causal LM.

    Args:
        model: a causal LM, possibly a PEFT model (the active adapter is used).
        tokenizer: its tokenizer; it must carry a chat template.
        max_batch_size: most sequences per forward batch.
        overflow: what to do with a prompt that does not fit the context with
            ``max_new_tokens``: ``error`` (default) raises :class:`ContextOverflow` naming
            it; ``truncate_left`` cuts the oldest tokens of the summary carried from the
            previous round, never the system prompt, the chat template, the question or the
            round instructions (a prompt that still does not fit raises); ``skip`` generates
            nothing for it and returns an output flagged ``context_overflow``.
        decode: ``fast`` (default) runs motif's own decode loop (see :mod:`motif.backends.fast`);
            ``generate`` calls ``model.generate``.
        decode_dtype: ``auto`` (default) generates with a bf16 copy of a float32 model when
            the device's bf16 matrix products are faster (CUDA with bf16, CPUs with AMX, such
            as this project's CPU machines), else in the model's own dtype; ``model`` always
            uses the model's dtype (bit-exact with fp32 ``generate``); ``bfloat16`` always
            uses a bf16 copy. The copy is made at each ``generate`` call, so it follows the
            latest weights and adapter state; the model itself is untouched.
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        max_batch_size: int = 64,
        overflow: Overflow = "error",
        decode: Decode = "fast",
        decode_dtype: DecodeDtype = "auto",
    ) -> None:
        super().__init__(max_batch_size)
        if overflow not in OVERFLOW_MODES:
            raise ValueError(
                f"overflow must be one of {', '.join(OVERFLOW_MODES)}; got {overflow!r}"
            )
        if decode not in ("fast", "generate"):
            raise ValueError(f"decode must be 'fast' or 'generate', got {decode!r}")
        if decode_dtype not in ("model", "bfloat16", "auto"):
            raise ValueError(
                f"decode_dtype must be 'model', 'bfloat16' or 'auto', got {decode_dtype!r}"
            )
        if not getattr(tokenizer, "chat_template", None):
            raise ValueError("the tokenizer has no chat template; motif needs a chat model")
        self.model = model
        self.tokenizer = tokenizer
        self.overflow = overflow
        self.decode = decode
        self.decode_dtype = decode_dtype
        self.eos_ids = eos_token_ids(model, tokenizer)
        pad = tokenizer.pad_token_id
        self.pad_id = int(pad) if pad is not None else self.eos_ids[0]
        self._compute: Any = None  # the model that generates during one generate call
        self._frozen: dict | None = None  # work kept inside frozen_weights()

    @property
    def device(self) -> torch.device:
        """Where the model's parameters live."""
        return next(self.model.parameters()).device

    def seed(self, seed: int) -> None:
        torch.manual_seed(seed)

    def generate(
        self,
        chats: Sequence[Chat],
        params: SamplingParams,
        num_samples: int = 1,
        prefixes: Sequence[Sequence[int]] | None = None,
    ) -> list[GenerationOutput]:
        """See :meth:`GenerationBackend.generate`; a bf16 copy, if used, lives for this call.

        Generation runs in the dtype ``decode_dtype`` chose even inside mixed-precision
        training: a caller's autocast is switched off for the call, and so is the autocast
        wrapper accelerate puts around a prepared model's forward (:func:`plain_forward`).
        """
        if num_samples < 1 or not chats:  # the base class answers; no copy needed
            return super().generate(chats, params, num_samples, prefixes)
        with plain_forward(self.model), torch.autocast(self.device.type, enabled=False):
            self._compute = self._compute_model()
            try:
                return super().generate(chats, params, num_samples, prefixes)
            finally:
                self._compute = None

    @contextmanager
    def frozen_weights(self) -> Iterator[None]:
        """See :meth:`GenerationBackend.frozen_weights`. Kept from call to call inside the
        block: the bf16 compute copy, the fast path's packed fp32 weights and the KV cache
        of the prompts' shared prefix (the system prompt; keyed by its token ids)."""
        if self._frozen is not None:
            yield
            return
        self._frozen = {}
        try:
            yield
        finally:
            self._frozen = None

    def compute_dtype(self) -> torch.dtype:
        """The dtype generation runs in (see ``decode_dtype``)."""

        own = next(self.model.parameters()).dtype
        if self.decode_dtype == "bfloat16":
            return torch.bfloat16
        if self.decode_dtype == "auto" and own == torch.float32:
            return torch.bfloat16 if fast.bf16_matmul_is_fast(self.device) else own
        return own

    def machine_plan(self) -> dict:
        """The machine-dependent choices this backend makes, JSON-able (recorded in eval summaries).

        ``decode``, ``compute_dtype`` (what ``decode_dtype`` resolved to, e.g. ``auto`` -> fp32
        on a CPU without AMX) and, for the fast path, ``decode_plan``: the fp32 kernel choice and
        the measured GEMM rates (:func:`motif.backends.kernels.decode_plan`, printed once per
        process).
        """
        plan: dict = {"decode": self.decode, "compute_dtype": str(self.compute_dtype())}
        if self.decode == "fast":
            plan["decode_plan"] = kernels.decode_plan(self.device)
        return plan

    def _compute_model(self) -> Any:
        # A fresh copy per call (or per frozen_weights block): it follows the policy's latest
        # weights and adapter state.
        dtype = self.compute_dtype()
        if dtype == next(self.model.parameters()).dtype:
            return self.model
        if self._frozen is not None and "compute" in self._frozen:
            return self._frozen["compute"]

        logger.debug("generating with a %s copy of the model", dtype)
        copy = fast.cast_copy(self.model, dtype)
        if self._frozen is not None:
            self._frozen["compute"] = copy
        return copy

    def continue_prompts(
        self, chats: Sequence[Chat], prompts: list, prefixes: Sequence[Sequence[int]]
    ) -> list[list[int]]:
        """Token-id prompts continuing the assistant turn (:mod:`motif.backends.template`)."""

        return continue_prompts(self.tokenizer, chats, prompts, prefixes)

    def render(self, chats: Sequence[Chat]) -> list[list[int]]:
        """Apply the chat template (with the generation prompt) and tokenize."""
        return render_ids(self.tokenizer, chats)

    def detokenize(self, token_ids: Sequence[int]) -> str:
        """See :meth:`GenerationBackend.detokenize` (the tokenizer, special tokens removed)."""
        return decode_ids(self.tokenizer, token_ids)

    def _fit_context(self, ids: list[int], index: int, params: SamplingParams) -> list[int] | None:
        """``ids`` if they fit the context with the budget; else per ``overflow`` (None: skip)."""
        limit = context_limit(self.model)
        if limit is None or len(ids) + params.max_new_tokens <= limit:
            return ids
        if self.overflow == "skip":
            return None
        carried = self._carried(index)
        if self.overflow == "truncate_left" and carried is not None:
            cut = self._cut_summary(carried, limit - params.max_new_tokens)
            if cut is not None:
                return cut
        where = f"the model's context of {limit} tokens"
        raise overflow_error(self, ids, index, params, limit, where)

    def _generate_chunk(
        self, prompts: list, params: SamplingParams, num_samples: int, offset: int
    ) -> list[GenerationOutput]:
        fitted = [self._fit_context(p, offset + i, params) for i, p in enumerate(prompts)]
        live = [p for p in fitted if p is not None]
        outputs = iter(self._decode(live, params, num_samples) if live else [])
        result: list[GenerationOutput] = []
        for i, (original, prompt) in enumerate(zip(prompts, fitted, strict=True)):
            carried = self._carried_tokens(offset + i, prompt) if prompt is not None else 0
            for _ in range(num_samples):
                out = next(outputs) if prompt is not None else _skipped(len(original))
                out.carried_tokens = carried
                result.append(out)
        return result

    def _decode(
        self, fitted: list[list[int]], params: SamplingParams, num_samples: int
    ) -> list[GenerationOutput]:
        if self.decode == "fast":
            return self._fast_chunk(fitted, params, num_samples)
        expanded = [p for p in fitted for _ in range(num_samples)]
        outputs: list[GenerationOutput] = []
        for start in range(0, len(expanded), self.max_batch_size):
            outputs.extend(
                self._generate_batch(expanded[start : start + self.max_batch_size], params)
            )
        return outputs

    def _fast_chunk(
        self, fitted: list[list[int]], params: SamplingParams, num_samples: int
    ) -> list[GenerationOutput]:

        model = self._compute if self._compute is not None else self.model
        outputs: list[GenerationOutput] = []
        for group, samples in self._fast_batches(fitted, num_samples):
            with torch.no_grad(), eval_mode(model):
                ids = fast.fast_decode(
                    model, group, samples, params, self.eos_ids, self.pad_id, reuse=self._frozen
                )
            lengths = [len(p) for p in group for _ in range(samples)]
            outputs.extend(self._to_output(i, n, params) for i, n in zip(ids, lengths, strict=True))
        return outputs

    def _fast_batches(
        self, prompts: list[list[int]], num_samples: int
    ) -> list[tuple[list[list[int]], int]]:
        """(prompts, samples) batches of at most ``max_batch_size`` rows, prompt-major."""
        if num_samples <= self.max_batch_size:
            per = self.max_batch_size // num_samples
            return [(prompts[i : i + per], num_samples) for i in range(0, len(prompts), per)]
        # One prompt's samples overflow a batch: its prefill is repeated per batch.
        size = self.max_batch_size
        return [
            ([p], min(size, num_samples - start))
            for p in prompts
            for start in range(0, num_samples, size)
        ]

    def _generation_kwargs(self, params: SamplingParams) -> dict[str, Any]:
        # An explicit config: a model's own generation_config (Qwen ships top_k=20 and a
        # repetition penalty) must not leak into the protocol's sampling settings. generate
        # fills every None from the model's config, then from global defaults (top_k=50), so
        # "off" must be spelled out: top_k=0, repetition_penalty=1.0.
        from transformers import GenerationConfig

        sample = not params.greedy
        config = GenerationConfig(
            max_new_tokens=params.max_new_tokens,
            do_sample=sample,
            temperature=params.temperature if sample else None,
            top_p=params.top_p if sample else None,
            top_k=params.top_k if sample else None,
            repetition_penalty=1.0,
            pad_token_id=self.pad_id,
            eos_token_id=self.eos_ids,
            use_cache=True,
        )
        return {"generation_config": config}

    def _left_pad(self, batch: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        width = max(len(ids) for ids in batch)
        input_ids = torch.full((len(batch), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for row, ids in enumerate(batch):
            input_ids[row, width - len(ids) :] = torch.tensor(ids, dtype=torch.long)
            mask[row, width - len(ids) :] = 1
        return input_ids.to(self.device), mask.to(self.device)

    def _generate_batch(
        self, batch: list[list[int]], params: SamplingParams
    ) -> list[GenerationOutput]:
        input_ids, mask = self._left_pad(batch)
        model = self._compute if self._compute is not None else self.model
        with torch.no_grad(), eval_mode(model):
            out = model.generate(
                input_ids=input_ids, attention_mask=mask, **self._generation_kwargs(params)
            )
        generated = out[:, input_ids.shape[1] :].tolist()
        return [
            self._to_output(ids, len(p), params) for ids, p in zip(generated, batch, strict=True)
        ]

    def _to_output(
        self, ids: list[int], prompt_len: int, params: SamplingParams
    ) -> GenerationOutput:
        return make_output(ids, prompt_len, params.max_new_tokens, self.eos_ids, self.tokenizer)


def _skipped(prompt_tokens: int) -> GenerationOutput:
    """The output of a prompt that did not fit the context (``overflow="skip"``)."""
    return GenerationOutput("", prompt_tokens, 0, truncated=False, context_overflow=True)


def make_output(
    ids: list[int], prompt_len: int, max_new_tokens: int, eos_ids: Sequence[int], tokenizer: Any
) -> GenerationOutput:
    """Cut generated ids after the first EOS, decode them and flag truncation."""
    end = next((i for i, t in enumerate(ids) if t in eos_ids), None)
    kept = ids[: end + 1] if end is not None else ids[:max_new_tokens]
    return GenerationOutput(
        text=decode_ids(tokenizer, kept),
        prompt_tokens=prompt_len,
        completion_tokens=len(kept),
        truncated=end is None and len(kept) >= max_new_tokens,
        token_ids=kept,
    )
