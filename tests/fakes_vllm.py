"""A faithful fake of the vLLM 0.31.0 surface motif uses, for CPU machines (vLLM needs a GPU).

Read from the vLLM 0.31.0 wheel (vllm-0.31.0-cp38-abi3-manylinux_2_28_x86_64.whl, the version
pinned in the ``vllm`` extra); paths are inside the ``vllm`` package:

- ``__init__.py:21-36``: ``LLM``, ``TokensPrompt``, ``SamplingParams``, ``RequestOutput``,
  ``CompletionOutput`` are exported; ``LoRARequest`` is not (``lora/request.py``).
- ``entrypoints/llm.py:180-225``: ``LLM.__init__(model, *, runner, convert, tokenizer, ...,
  trust_remote_code, ..., tensor_parallel_size=1, dtype="auto", ..., seed=0,
  gpu_memory_utilization=0.92, ..., enforce_eager=False, ..., **kwargs)``; ``kwargs`` go to
  ``EngineArgs`` (``engine/arg_utils.py:494-495, 667-673``: ``max_model_len``, ``enable_lora``,
  ``max_loras``, ``max_lora_rank``, ...), an unknown one is a ``TypeError``.
  ``llm.py:344-347``: ``self.llm_engine`` and ``self.model_config`` (``.max_model_len``).
- ``entrypoints/llm.py:420-484``: ``generate(prompts, sampling_params=None, *, use_tqdm=True,
  lora_request=None, priority=None, tokenization_kwargs=None, mm_processor_kwargs=None)``;
  ``sampling_params=None`` uses the default ``SamplingParams()`` (the model's
  generation_config diff is not modelled: motif always passes one).
- ``entrypoints/offline_utils.py:566-569, 634``: results are final-only, in prompt order.
- ``inputs/llm.py:111-127``: ``TokensPrompt`` is a TypedDict with ``prompt_token_ids``.
- ``sampling_params.py:225-380`` fields (defaults: ``n=1, temperature=1.0, top_p=1.0, top_k=0,
  seed=None, stop_token_ids=None, ignore_eos=False, max_tokens=16, min_tokens=0,
  detokenize=True, skip_special_tokens=True``), ``:493-566`` ``__post_init__`` (temperature
  below 1e-2 raised to 1e-2, ``seed=-1`` is None, greedy resets top_p/top_k/min_p),
  ``:568-640`` ``_verify_args`` (``VLLMValidationError``: temperature in [0, 2], top_p in
  (0, 1], top_k >= -1, max_tokens >= 1, ...).
- ``v1/engine/parallel_sampling.py:58-81``: sample ``i`` of a seeded request uses ``seed + i``.
- ``v1/core/sched/utils.py:98-119``: stop on EOS or a ``stop_token_ids`` token (kept in
  ``token_ids``; ``stop_reason`` = the token for the latter), else "length" at ``max_tokens``
  or when the sequence reaches ``max_model_len``. EOS = the tokenizer's, plus the model's
  generation_config ones (``sampling_params.py:709-737``).
- ``v1/engine/detokenizer.py:107-126``: the stop token is left out of ``text``.
- ``v1/engine/input_processor.py:244-253`` (a LoRA request without ``enable_lora``),
  ``:516-550`` (empty prompt, prompt of ``max_model_len`` or more: ``VLLMValidationError``).
- ``lora/request.py``: ``LoRARequest(lora_name, lora_int_id, lora_path="", ...)``, id >= 1,
  non-empty path; ``lora/peft_helper.py:41-56, 123-136``: rank above ``max_lora_rank``, bias,
  DoRA, ``modules_to_save`` refused (``ValueError``); ``config/lora.py:27-37``: ranks allowed.
- ``outputs.py:33-70`` ``CompletionOutput`` (index, text, token_ids, cumulative_logprob,
  logprobs, ..., finish_reason, stop_reason, lora_request); ``:139-160`` ``RequestOutput``.
- ``config/model.py:99`` dtypes; ``:2600-2606`` ``max_model_len`` above the model's context.
- ``exceptions.py:10-28``: ``VLLMValidationError(VLLMClientError(VLLMError(Exception)))``.

The engine generates from a real (tiny) transformers checkpoint, token by token with a KV cache
in float32 on CPU (vLLM's sampler order: temperature, then top-k, then top-p), or from a script
registered in :data:`SCRIPTS` for the checkpoint path: ``script(prompt_ids, sample_index, seed)
-> token ids``, emitted one by one (the last one repeated if the script runs out) under the
same stop rules. LoRA requests load the PEFT adapter on a copy of the model. Every ``generate``
call is recorded in ``LLM.calls``; every engine in :data:`ENGINES`.
"""

from __future__ import annotations

import importlib.machinery
import itertools
import json
import sys
import types
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict

import pytest

VERSION = "0.31.0"
Script = Callable[[list[int], int, "int | None"], list[int]]
SCRIPTS: dict[str, Script] = {}
ENGINES: list[LLM] = []
LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)
DTYPES = ("auto", "half", "float16", "bfloat16", "float", "float32")
ENGINE_ARGS = {  # EngineArgs fields this fake accepts through **kwargs
    "max_model_len",
    "enable_lora",
    "max_loras",
    "max_lora_rank",
    "max_cpu_loras",
    "max_num_seqs",
    "max_num_batched_tokens",
    "disable_log_stats",
    "enable_prefix_caching",
    "distributed_executor_backend",
    "enable_sleep_mode",
    "model_impl",
    "logprobs_mode",
}
_MAX_TEMP = 1e-2
_SAMPLING_EPS = 1e-5


class VLLMError(Exception):
    """vllm.exceptions.VLLMError."""


class VLLMClientError(VLLMError):
    """vllm.exceptions.VLLMClientError."""


class VLLMValidationError(VLLMClientError):
    """vllm.exceptions.VLLMValidationError."""


class TokensPrompt(TypedDict, total=False):
    """vllm.inputs.TokensPrompt."""

    prompt_token_ids: list[int]
    prompt: str


@dataclass
class LoRARequest:
    """vllm.lora.request.LoRARequest (a msgspec Struct there)."""

    lora_name: str
    lora_int_id: int
    lora_path: str = ""
    base_model_name: str | None = None
    tensorizer_config_dict: dict | None = None
    load_inplace: bool = False
    is_3d_lora_weight: bool = False

    def __post_init__(self) -> None:
        if self.lora_int_id < 1:
            raise ValueError(f"id must be > 0, got {self.lora_int_id}")
        assert self.lora_path, "lora_path cannot be empty"


@dataclass
class CompletionOutput:
    """vllm.outputs.CompletionOutput."""

    index: int
    text: str
    token_ids: Sequence[int]
    cumulative_logprob: float | None
    logprobs: Any
    routed_experts: Any = None
    finish_reason: str | None = None
    stop_reason: int | str | None = None
    lora_request: LoRARequest | None = None
    sampling_mask: Any = None
    spec_decode_metrics: Any = None

    def finished(self) -> bool:
        return self.finish_reason is not None


class RequestOutput:
    """vllm.outputs.RequestOutput (the fields the constructor sets)."""

    def __init__(
        self,
        request_id: str,
        prompt: str | None,
        prompt_token_ids: list[int] | None,
        prompt_logprobs: Any,
        outputs: list[CompletionOutput],
        finished: bool,
        metrics: Any = None,
        lora_request: LoRARequest | None = None,
        encoder_prompt: str | None = None,
        encoder_prompt_token_ids: list[int] | None = None,
        num_cached_tokens: int | None = None,
        num_cache_creation_tokens: int | None = None,
        **kwargs: Any,
    ) -> None:
        self.request_id, self.prompt, self.prompt_token_ids = request_id, prompt, prompt_token_ids
        self.prompt_logprobs, self.outputs, self.finished = prompt_logprobs, outputs, finished
        self.metrics, self.lora_request = metrics, lora_request
        self.encoder_prompt, self.encoder_prompt_token_ids = (
            encoder_prompt,
            encoder_prompt_token_ids,
        )
        self.num_cached_tokens = num_cached_tokens
        self.num_cache_creation_tokens = num_cache_creation_tokens


class SamplingParams:
    """vllm.SamplingParams: the fields motif can set, with vLLM's defaults and validation.

    Any other keyword is refused with TypeError (msgspec's behaviour for unknown fields; here
    also for real fields this fake does not model, so a new use shows up in the tests).
    """

    FIELDS = {
        "n": 1,
        "presence_penalty": 0.0,
        "frequency_penalty": 0.0,
        "repetition_penalty": 1.0,
        "temperature": 1.0,
        "top_p": 1.0,
        "top_k": 0,
        "min_p": 0.0,
        "seed": None,
        "stop": None,
        "stop_token_ids": None,
        "ignore_eos": False,
        "max_tokens": 16,
        "min_tokens": 0,
        "logprobs": None,
        "detokenize": True,
        "skip_special_tokens": True,
        "spaces_between_special_tokens": True,
        "include_stop_str_in_output": False,
    }

    def __init__(self, **kwargs: Any) -> None:
        unknown = set(kwargs) - set(self.FIELDS)
        if unknown:
            raise TypeError(f"Unexpected keyword argument {sorted(unknown)[0]!r}")
        for name, default in self.FIELDS.items():
            setattr(self, name, kwargs.get(name, default))
        self._post_init()

    def _post_init(self) -> None:
        if 0 < self.temperature < _MAX_TEMP:
            self.temperature = _MAX_TEMP
        if self.seed == -1:
            self.seed = None
        self.stop = (
            [] if self.stop is None else [self.stop] if isinstance(self.stop, str) else self.stop
        )
        self.stop_token_ids = list(dict.fromkeys(self.stop_token_ids or []))
        self._verify_args()
        if self.temperature < _SAMPLING_EPS:
            self.top_p, self.top_k, self.min_p = 1.0, 0, 0.0

    def _verify_args(self) -> None:
        checks = [
            (isinstance(self.n, int) and self.n >= 1, f"n must be at least 1, got {self.n}."),
            (
                0.0 <= self.temperature <= 2.0,
                f"temperature must be in [0, 2], got {self.temperature}.",
            ),
            (0.0 < self.top_p <= 1.0, f"top_p must be in (0, 1], got {self.top_p}."),
            (
                isinstance(self.top_k, int),
                f"top_k must be an integer, got {type(self.top_k).__name__}",
            ),
            (self.top_k >= -1, f"top_k must be 0 (disable), or at least 1, got {self.top_k}."),
            (0.0 <= self.min_p <= 1.0, f"min_p must be in [0, 1], got {self.min_p}."),
            (self.repetition_penalty > 0, "repetition_penalty must be greater than zero"),
            (
                self.max_tokens is None or self.max_tokens >= 1,
                f"max_tokens must be at least 1, got {self.max_tokens}.",
            ),
            (
                self.min_tokens >= 0,
                f"min_tokens must be greater than or equal to 0, got {self.min_tokens}.",
            ),
            (
                all(isinstance(t, int) for t in self.stop_token_ids),
                "stop_token_ids must contain only integers",
            ),
            (
                not (self.stop and not self.detokenize),
                "stop strings are only supported when detokenize is True.",
            ),
        ]
        for ok, message in checks:
            if not ok:
                raise VLLMValidationError(message)
        if (
            self.stop
            or self.logprobs
            or self.min_p
            or self.presence_penalty
            or self.frequency_penalty
        ):
            raise NotImplementedError("this fake models no stop strings, logprobs or penalties")
        if self.repetition_penalty != 1.0:
            raise NotImplementedError("this fake models no repetition penalty")


class LLM:
    """vllm.LLM over a CPU transformers checkpoint (or a script); see the module docstring."""

    def __init__(
        self,
        model: str,
        *,
        runner: str = "auto",
        convert: str = "auto",
        tokenizer: str | None = None,
        tokenizer_mode: str = "auto",
        skip_tokenizer_init: bool = False,
        trust_remote_code: bool = False,
        allowed_local_media_path: str = "",
        allowed_media_domains: list[str] | None = None,
        tensor_parallel_size: int = 1,
        dtype: str = "auto",
        quantization: str | None = None,
        revision: str | None = None,
        tokenizer_revision: str | None = None,
        chat_template: str | None = None,
        seed: int = 0,
        gpu_memory_utilization: float = 0.92,
        cpu_offload_gb: float = 0,
        offload_group_size: int = 0,
        offload_num_in_group: int = 1,
        offload_prefetch_step: int = 1,
        offload_params: set[str] | None = None,
        enforce_eager: bool = False,
        enable_return_routed_experts: bool = False,
        return_sampling_mask: bool = False,
        disable_custom_all_reduce: bool = False,
        hf_token: bool | str | None = None,
        hf_overrides: Any = None,
        mm_processor_kwargs: dict[str, Any] | None = None,
        pooler_config: Any = None,
        structured_outputs_config: Any = None,
        profiler_config: Any = None,
        attention_config: Any = None,
        kv_cache_memory_bytes: int | None = None,
        compilation_config: Any = None,
        quantization_config: Any = None,
        logits_processors: Any = None,
        spec_method: str | None = None,
        spec_model: str | None = None,
        spec_tokens: int | None = None,
        **kwargs: Any,
    ) -> None:
        unknown = set(kwargs) - ENGINE_ARGS
        if unknown:
            raise TypeError(
                f"EngineArgs.__init__() got an unexpected keyword argument {sorted(unknown)[0]!r}"
            )
        if dtype not in DTYPES:
            raise ValueError(f"Unknown dtype: {dtype!r}")
        rank = kwargs.get("max_lora_rank", 16)
        if rank not in LORA_RANKS:
            raise ValueError(f"max_lora_rank must be one of {LORA_RANKS}, got {rank}")
        if not 0 < gpu_memory_utilization <= 1:
            raise ValueError(
                f"gpu_memory_utilization must be in (0, 1], got {gpu_memory_utilization}"
            )
        self.init_kwargs = {
            "model": model,
            "tokenizer": tokenizer,
            "trust_remote_code": trust_remote_code,
            "tensor_parallel_size": tensor_parallel_size,
            "dtype": dtype,
            "seed": seed,
            "gpu_memory_utilization": gpu_memory_utilization,
            "enforce_eager": enforce_eager,
            **kwargs,
        }
        self.enable_lora = bool(kwargs.get("enable_lora", False))
        self.max_lora_rank = rank
        self.calls: list[dict] = []
        self._load(model, tokenizer or model, kwargs.get("max_model_len"), seed)
        ENGINES.append(self)

    def _load(self, model: str, tokenizer: str, max_model_len: int | None, seed: int) -> None:
        import torch
        from transformers import AutoConfig, AutoTokenizer, GenerationConfig

        self.tokenizer = AutoTokenizer.from_pretrained(tokenizer)
        config = AutoConfig.from_pretrained(model)
        derived = config.max_position_embeddings
        if max_model_len is not None and max_model_len > derived:
            raise ValueError(
                f"User-specified max_model_len ({max_model_len}) is greater than the derived "
                f"max_model_len (max_position_embeddings={derived} or model_max_length=None in "
                "model's config.json)."
            )
        self.model_config = types.SimpleNamespace(
            model=model, max_model_len=max_model_len or derived, runner_type="generate"
        )
        self.llm_engine = types.SimpleNamespace(model_config=self.model_config)
        try:
            eos = GenerationConfig.from_pretrained(model).eos_token_id
        except OSError:
            eos = None
        self.generation_eos = set(eos if isinstance(eos, list) else [] if eos is None else [eos])
        self.script = SCRIPTS.get(str(model))
        self.model_path = model
        self.models: dict[int, Any] = {}
        if self.script is None:
            self.models[0] = _load_model(model)
        self.generator = torch.Generator().manual_seed(seed)
        self._request_ids = itertools.count()

    def get_tokenizer(self) -> Any:
        return self.tokenizer

    def generate(
        self,
        prompts: Any,
        sampling_params: SamplingParams | Sequence[SamplingParams] | None = None,
        *,
        use_tqdm: Any = True,
        lora_request: Sequence[LoRARequest] | LoRARequest | None = None,
        priority: list[int] | None = None,
        tokenization_kwargs: dict[str, Any] | None = None,
        mm_processor_kwargs: dict[str, Any] | None = None,
    ) -> list[RequestOutput]:
        single = isinstance(prompts, (str, dict))
        prompts = [prompts] if single else list(prompts)
        params = sampling_params if sampling_params is not None else SamplingParams()
        params = list(params) if isinstance(params, (list, tuple)) else [params] * len(prompts)
        loras = (
            lora_request
            if isinstance(lora_request, (list, tuple))
            else [lora_request] * len(prompts)
        )
        if len(params) != len(prompts) or len(loras) != len(prompts):
            raise ValueError(
                "The lengths of prompts and sampling_params/lora_request must be the same."
            )
        self.calls.append(
            {
                "prompts": prompts,
                "sampling_params": params,
                "lora_request": lora_request,
                "use_tqdm": use_tqdm,
            }
        )
        requests = [
            (self._prompt_ids(p), sp, lo) for p, sp, lo in zip(prompts, params, loras, strict=True)
        ]
        for ids, _, lora in requests:  # every request is validated before any runs
            self._validate(ids, lora)
        return [self._run(ids, sp, lora) for ids, sp, lora in requests]

    def _prompt_ids(self, prompt: Any) -> list[int]:
        if isinstance(prompt, str):
            return self.tokenizer(prompt)["input_ids"]
        if not isinstance(prompt, dict) or "prompt_token_ids" not in prompt:
            raise TypeError(
                f"this fake takes str or TokensPrompt prompts, got {type(prompt).__name__}"
            )
        return list(prompt["prompt_token_ids"])

    def _validate(self, ids: list[int], lora: LoRARequest | None) -> None:
        if not ids:
            raise VLLMValidationError("The decoder prompt cannot be empty")
        limit = self.model_config.max_model_len
        if len(ids) >= limit:
            raise VLLMValidationError(
                f"The decoder prompt (length {len(ids)}) is longer than the maximum model length "
                f"of {limit}. Make sure that `max_model_len` is no smaller than the number of text tokens."
            )
        if lora is not None and not self.enable_lora:
            raise VLLMValidationError(f"Got lora_request {lora} but LoRA is not enabled!")
        if lora is not None and lora.lora_int_id not in self.models:
            self._load_lora(lora)

    def _load_lora(self, lora: LoRARequest) -> None:
        config = json.loads((Path(lora.lora_path) / "adapter_config.json").read_text())
        errors = []
        if config.get("use_dora"):
            errors.append("vLLM does not yet support DoRA.")
        if config["r"] > self.max_lora_rank:
            errors.append(
                f"LoRA rank {config['r']} is greater than max_lora_rank {self.max_lora_rank}."
            )
        if config.get("bias", "none") != "none":
            errors.append("Adapter bias is not supported.")
        if errors:
            raise ValueError(" ".join(errors))
        if self.script is None:
            from peft import PeftModel

            self.models[lora.lora_int_id] = PeftModel.from_pretrained(
                _load_model(self.model_path), lora.lora_path
            ).eval()
        else:
            self.models[lora.lora_int_id] = lora.lora_path

    def _run(self, ids: list[int], sp: SamplingParams, lora: LoRARequest | None) -> RequestOutput:
        outputs = [self._complete(ids, sp, lora, i) for i in range(sp.n)]
        return RequestOutput(
            request_id=str(next(self._request_ids)),
            prompt=None,
            prompt_token_ids=ids,
            prompt_logprobs=None,
            outputs=outputs,
            finished=True,
            lora_request=lora,
        )

    def _stops(self, sp: SamplingParams) -> tuple[set[int], set[int]]:
        eos = set() if sp.ignore_eos else {self.tokenizer.eos_token_id} | self.generation_eos
        return eos, set(sp.stop_token_ids)

    def _complete(
        self, ids: list[int], sp: SamplingParams, lora: LoRARequest | None, index: int
    ) -> CompletionOutput:
        import torch

        seed = None if sp.seed is None else sp.seed + index
        generator = torch.Generator().manual_seed(seed) if seed is not None else self.generator
        source = self._source(ids, sp, lora, index, seed, generator)
        eos, stop_ids = self._stops(sp)
        max_tokens = (
            sp.max_tokens
            if sp.max_tokens is not None
            else self.model_config.max_model_len - len(ids)
        )
        out: list[int] = []
        finish, reason = "length", None
        while True:
            token = next(source)
            out.append(token)
            if len(out) >= sp.min_tokens and token in eos:
                finish = "stop"
                break
            if len(out) >= sp.min_tokens and token in stop_ids:
                finish, reason = "stop", token
                break
            if len(ids) + len(out) >= self.model_config.max_model_len or len(out) >= max_tokens:
                break
        text_ids = out[:-1] if finish == "stop" and not sp.include_stop_str_in_output else out
        text = (
            self.tokenizer.decode(text_ids, skip_special_tokens=sp.skip_special_tokens)
            if sp.detokenize
            else ""
        )
        return CompletionOutput(
            index=index,
            text=text,
            token_ids=out,
            cumulative_logprob=None,
            logprobs=None,
            finish_reason=finish,
            stop_reason=reason,
            lora_request=lora,
        )

    def _source(self, ids, sp, lora, index, seed, generator):
        if self.script is not None:
            scripted = list(self.script(ids, index, seed))
            return itertools.chain(scripted, itertools.repeat(scripted[-1]))
        return _decode(self.models[lora.lora_int_id if lora else 0], ids, sp, generator)


def _load_model(path: str) -> Any:
    import torch
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()


def _decode(model: Any, ids: list[int], sp: SamplingParams, generator: Any):
    """Next tokens of one sequence with a KV cache: greedy, or temperature, top-k, top-p."""
    import torch
    from transformers import DynamicCache

    from motif.compat import cache_keyword

    cache, inputs = DynamicCache(config=model.config), torch.tensor([ids])
    with torch.no_grad():
        while True:
            step = model(input_ids=inputs, **{cache_keyword(): cache}, use_cache=True)
            logits = step.logits[0, -1].float()
            token = _sample(logits, sp, generator)
            inputs = torch.tensor([[token]])
            yield token


def _sample(logits: Any, sp: SamplingParams, generator: Any) -> int:
    import torch

    if sp.temperature < _SAMPLING_EPS:
        return int(torch.argmax(logits))
    logits = logits / sp.temperature
    if sp.top_k > 0:
        kth = torch.topk(logits, min(sp.top_k, logits.numel())).values[-1]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if sp.top_p < 1.0:
        order = torch.sort(logits, descending=True)
        mass = torch.softmax(order.values, -1).cumsum(-1)
        drop = mass - torch.softmax(order.values, -1) >= sp.top_p
        logits[order.indices[drop]] = float("-inf")
    probs = torch.softmax(logits, -1)
    return int(torch.multinomial(probs, 1, generator=generator))


def install(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    """Put the fake into ``sys.modules`` as ``vllm`` (and the submodules motif imports)."""
    root = types.ModuleType("vllm")
    root.__version__ = VERSION
    root.__path__ = []  # a package, so "vllm.lora.request" imports resolve
    # importlib.util.find_spec("vllm") (transformers' and TRL's availability checks) reads it
    root.__spec__ = importlib.machinery.ModuleSpec("vllm", None, is_package=True)
    members = {
        "LLM": LLM,
        "SamplingParams": SamplingParams,
        "TokensPrompt": TokensPrompt,
        "RequestOutput": RequestOutput,
        "CompletionOutput": CompletionOutput,
    }
    for name, value in members.items():
        setattr(root, name, value)
    subs = {
        "vllm.inputs": {"TokensPrompt": TokensPrompt},
        "vllm.outputs": {"RequestOutput": RequestOutput, "CompletionOutput": CompletionOutput},
        "vllm.sampling_params": {"SamplingParams": SamplingParams},
        "vllm.lora": {},
        "vllm.lora.request": {"LoRARequest": LoRARequest},
        "vllm.exceptions": {
            "VLLMError": VLLMError,
            "VLLMClientError": VLLMClientError,
            "VLLMValidationError": VLLMValidationError,
        },
    }
    monkeypatch.setitem(sys.modules, "vllm", root)
    for name, attrs in subs.items():
        module = types.ModuleType(name)
        module.__spec__ = importlib.machinery.ModuleSpec(name, None, is_package=name == "vllm.lora")
        module.__dict__.update(attrs)
        monkeypatch.setitem(sys.modules, name, module)
        parent, _, child = name.rpartition(".")
        setattr(sys.modules[parent], child, module)
    return root


def use_fake_vllm(monkeypatch: pytest.MonkeyPatch):
    """Body of a ``fake_vllm`` fixture (``yield from use_fake_vllm(monkeypatch)``): the fake
    ``vllm`` installed, a GPU reported visible, no scripts or engines left over."""
    import motif.backends.vllm_options as options

    module = install(monkeypatch)
    monkeypatch.setattr(options, "gpu_visible", lambda: True)
    monkeypatch.setattr(options, "vllm_platform", lambda: "cuda")  # the fake stands for CUDA vLLM
    SCRIPTS.clear()
    ENGINES.clear()
    yield module
    SCRIPTS.clear()
    ENGINES.clear()
