"""What a run's results depend on, cheaply fingerprinted, and the one-line mismatch error.

A run's identity (``motif eval`` and ``motif train``) holds the model's weights, the adapter,
the data, the protocol and the sampling and decode settings. The weights are fingerprinted
without reading them (a checkpoint may be many GB): the names, sizes and modification times of
the weight files, their index, the model config and the tokenizer files. A hub model that is
not in the local cache yet has no fingerprint until it is downloaded: the commands record it
after the model loads. Adapters are small and hashed whole.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from motif.errors import ConfigError
from motif.models import model_dir
from motif.textio import clip_middle, plural

WEIGHT_PATTERNS = (
    "*.safetensors",
    "*.safetensors.index.json",
    "*.bin",
    "*.bin.index.json",
    "*.pt",
    "*.gguf",
    "config.json",
    "generation_config.json",
    # the tokenizer and chat template shape every prompt
    "tokenizer.json",
    "tokenizer_config.json",
    "chat_template.*",
    "special_tokens_map.json",
    "vocab.json",
    "merges.txt",
    "tokenizer.model",
)


def files_fingerprint(path: Path | None, patterns: tuple[str, ...] = WEIGHT_PATTERNS) -> str | None:
    """sha256 of (name, size, mtime) of the files matching ``patterns`` (a file: itself)."""
    if path is None or not path.exists():
        return None
    files = [path] if path.is_file() else sorted({f for p in patterns for f in path.glob(p)})
    digest = hashlib.sha256()
    for file in files:
        stat = file.stat()  # follows the hub cache's symlinks to the blobs
        digest.update(json.dumps([file.name, stat.st_size, int(stat.st_mtime)]).encode())
    return digest.hexdigest()


def model_fingerprint(name: str | None) -> str | None:
    """The weights' fingerprint of a model name (None: a hub id not in the local cache)."""
    return files_fingerprint(model_dir(name))


def adapter_fingerprint(adapter: str | None) -> str | None:
    """sha256 of a PEFT adapter's weights and config (None: no adapter)."""
    if adapter is None:
        return None
    digest = hashlib.sha256()
    files = sorted(Path(adapter).glob("adapter_model.*")) + [Path(adapter) / "adapter_config.json"]
    for path in files:
        if path.is_file():
            digest.update(path.name.encode())
            with path.open("rb") as handle:
                for chunk in iter(lambda h=handle: h.read(1 << 20), b""):
                    digest.update(chunk)
    return digest.hexdigest()


def differences(old: dict, new: dict, prefix: str = "") -> list[str]:
    """``key: old -> new`` for every leaf that differs between two identities."""
    diffs = []
    for key in sorted(set(old) | set(new), key=str):
        a, b = old.get(key, "<unset>"), new.get(key, "<unset>")
        if isinstance(a, dict) and isinstance(b, dict):
            diffs.extend(differences(a, b, f"{prefix}{key}."))
        elif a != b:
            diffs.append(f"{prefix}{key}: {_short(a)} -> {_short(b)}")
    return diffs


def _short(value: Any) -> str:
    return clip_middle(json.dumps(value, ensure_ascii=False, default=str), 28)


def mismatch_error(where: str, diffs: list[str], fix: str) -> ConfigError:
    """The one-line error for a run whose identity differs from the stored one."""
    shown = "; ".join(diffs[:6]) + ("; ..." if len(diffs) > 6 else "")
    differ = f"{plural(len(diffs), 'field')} {'differs' if len(diffs) == 1 else 'differ'}"
    return ConfigError(f"{where}: {differ} ({shown}); {fix}")
