"""TRL's colocate engine on vLLM's CPU platform: its KV cache and its weight sync.

TRL 1.16 builds the colocated engine itself (``VLLMGeneration``): a KV cache of
``--vllm-gpu-memory-utilization`` of the machine's memory on a CPU, unless
``VLLM_CPU_KVCACHE_SPACE`` (GiB) says otherwise; :func:`cpu_engine_env` sets that variable to
the size ``--backend vllm`` uses on a CPU (``motif.backends.vllm_options.cpu_kv_cache_bytes``).

After loading, vLLM's CPU platform packs every linear weight into a kernel handle and drops the
parameter (vLLM 0.31.0: ``UnquantizedLinearMethod.process_weights_after_loading`` ->
``dispatch_cpu_unquantized_gemm(layer, remove_weight=True)``,
vllm/model_executor/layers/linear.py:206-216, layers/utils.py:466). TRL 1.16's colocate sync
loads each trained tensor in place (``model.load_weights([(name, param)])``,
trl/generation/vllm_generation.py:509-511), which then fails: ``'Parameter' object has no
attribute 'weight_loader'``; were the parameter there, the packed copy would still be stale.

vLLM's own in-place reload (vllm/model_executor/model_loader/reload/layerwise.py, what its
``GPUModelRunner.reload_weights`` runs) puts each layer back in checkpoint format, loads into it
and packs it again once the layer is whole. :func:`reload_on_cpu` runs TRL's sync inside it, so
TRL still chooses what is sent (the LoRA merged, names fixed) and vLLM how it is stored.
"""

from __future__ import annotations

import functools
import math
import os
from typing import Any

from motif.backends.vllm_options import cpu_kv_cache_bytes, vllm_platform

KV_ENV = "VLLM_CPU_KVCACHE_SPACE"
"""vLLM's CPU KV cache size in GiB (vllm/platforms/cpu.py:307-310)."""


def cpu_engine_env(model: Any) -> str | None:
    """Set :data:`KV_ENV` for a colocated engine on vLLM's CPU platform, unless it is set:
    the GiB of :func:`~motif.backends.vllm_options.cpu_kv_cache_bytes` for ``model``'s config
    in float32 at its context (:func:`motif.backends.hf.context_limit`, the length TRL's
    engine runs at). Returns the value set, or None (a GPU build of vLLM, or the user's own
    value)."""
    from motif.backends.hf import context_limit  # torch: loaded only in vLLM runs

    if vllm_platform() != "cpu" or os.environ.get(KV_ENV):
        return None
    size = cpu_kv_cache_bytes(model.config, "float32", context_limit(model) or 0)
    os.environ[KV_ENV] = str(math.ceil(size / (1 << 30)))
    return os.environ[KV_ENV]


def reload_on_cpu(trainer: Any) -> bool:
    """Wrap ``trainer.vllm_generation.sync_weights`` in vLLM's layerwise reload when TRL's
    engine is colocated on vLLM's CPU platform. Returns whether it did (False: no vLLM, server
    mode, whose server loads the weights itself, or a GPU build, whose weights load in place).
    """
    generation = getattr(trainer, "vllm_generation", None)
    if not getattr(trainer, "use_vllm", False) or generation is None:
        return False
    if generation.mode != "colocate" or vllm_platform() != "cpu":
        return False
    original = generation.sync_weights

    @functools.wraps(original)
    def sync_weights() -> None:
        from vllm.model_executor.model_loader.reload import (  # vLLM: only in vLLM runs
            finalize_layerwise_reload,
            initialize_layerwise_reload,
        )

        runner = generation.llm.llm_engine.model_executor.driver_worker.model_runner
        initialize_layerwise_reload(runner.model)
        try:
            original()
        finally:
            finalize_layerwise_reload(runner.model, runner.model_config)

    generation.sync_weights = sync_weights
    return True
