"""What differs between the transformers releases motif supports, and one library deprecation.

pyproject allows transformers 5.17.0 (the release vLLM 0.31's extra resolves to) to 5.24.0 (the
one ``make setup`` installs; ``make test-lower`` runs the suite on 5.17.0). Each function below
names the release that changed what it chooses; every call site asks here, none tests versions.

peft 0.21 (``PeftModel.__init__``) and TRL 1.16 (``unwrap_model_for_generation``) still read the
deprecated ``model.is_gradient_checkpointing`` property; transformers 5 warns on each read.
:func:`library_deprecations` ignores exactly that message, only around the calls into those
libraries; every other warning is shown.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.metadata import version as installed_version
from typing import Any

from packaging.version import Version

LIBRARY_DEPRECATIONS = (r"`is_gradient_checkpointing` is deprecated",)


@contextmanager
def library_deprecations() -> Iterator[None]:
    """Ignore :data:`LIBRARY_DEPRECATIONS` (FutureWarnings raised inside peft/TRL) in the block."""
    with warnings.catch_warnings():
        for message in LIBRARY_DEPRECATIONS:
            warnings.filterwarnings("ignore", message=message, category=FutureWarning)
        yield


@functools.cache
def transformers_version() -> Version:
    """The installed transformers release, from its package metadata (transformers not imported)."""
    return Version(installed_version("transformers"))


@functools.cache  # asked on every decode step (cache_keyword)
def _at_least(release: str, version: str | None) -> bool:
    """Whether ``version`` (default: the installed transformers) is ``release`` or later."""
    return (Version(version) if version else transformers_version()) >= Version(release)


def checkpointing_keyword(version: str | None = None) -> str:
    """``TrainingArguments``' (and so TRL configs') activation-checkpointing flag for ``version``.

    transformers 5.23.0 renamed ``gradient_checkpointing`` to ``activation_checkpointing`` (the
    old name warns there); earlier releases, and TRL configs on them, reject the new name.
    """
    return "activation_checkpointing" if _at_least("5.23.0", version) else "gradient_checkpointing"


def cache_keyword(version: str | None = None) -> str:
    """The keyword a model's ``forward`` takes its KV cache under, for ``version``.

    transformers 5.24.0 renamed ``past_key_values`` to ``cache`` (the old name warns there).
    Earlier releases swallow an unknown ``cache=`` into ``**kwargs``: the cache stays empty and
    decoding goes on with no error and wrong text, so the name must follow the release.
    """
    return "cache" if _at_least("5.24.0", version) else "past_key_values"


def gguf_tokenizer_misread(version: str | None = None) -> bool:
    """Whether ``version`` reads a GGUF tokenizer's special tokens wrong (before 5.18.0).

    transformers 5.17.0 takes the GGUF's BOS (``<|im_start|>`` in SmolLM2) as the tokenizer's
    EOS and sets no pad token; the model config's ids are right. 5.18.0 rewrote that reader.
    A checkpoint converted by such a release without :func:`align_special_tokens` is faulty.
    """
    return not _at_least("5.18.0", version)


def align_special_tokens(tokenizer: Any, config: Any) -> None:
    """Set ``tokenizer``'s EOS and pad tokens to ``config``'s ``eos_token_id``/``pad_token_id``.

    The fix for :func:`gguf_tokenizer_misread`, in place; a no-op where they already agree (any
    release from 5.18.0). An id that is unset or a list leaves that token as it is.
    """
    for name in ("eos", "pad"):
        token_id = getattr(config, f"{name}_token_id", None)
        if isinstance(token_id, int):
            setattr(tokenizer, f"{name}_token", tokenizer.convert_ids_to_tokens(token_id))
