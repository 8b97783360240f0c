"""motif-rl: multi-round reasoning (MOTIF) and its reinforcement fine-tuning.

Importing the package does no work: public names are resolved lazily, so ``motif --help``
stays instant and torch is only imported by what needs it.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "is_correct": "motif.grading",
    "Protocol": "motif.protocol",
    "SamplingParams": "motif.backends.base",
    "GenerationBackend": "motif.backends.base",
    "TransformersBackend": "motif.backends.hf",
    "RolloutEngine": "motif.engine",
    "Trajectory": "motif.engine",
    "load_model": "motif.models",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'motif' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
