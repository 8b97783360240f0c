"""One known deprecation inside the libraries we train with, silenced where they emit it.

motif passes transformers' current names (``activation_checkpointing``), so its own calls
emit no FutureWarning. peft 0.21 (``PeftModel.__init__``) and TRL 1.16
(``unwrap_model_for_generation``) still read the deprecated ``model.is_gradient_checkpointing``
property; transformers 5 warns on each read. :func:`library_deprecations` ignores exactly
that message, only around the calls into those libraries; every other warning is shown.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager

LIBRARY_DEPRECATIONS = (r"`is_gradient_checkpointing` is deprecated",)


@contextmanager
def library_deprecations() -> Iterator[None]:
    """Ignore :data:`LIBRARY_DEPRECATIONS` (FutureWarnings raised inside peft/TRL) in the block."""
    with warnings.catch_warnings():
        for message in LIBRARY_DEPRECATIONS:
            warnings.filterwarnings("ignore", message=message, category=FutureWarning)
        yield
