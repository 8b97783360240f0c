"""The private hooks of TRL's ``GRPOTrainer`` that ``--credit all`` and ``--credit trajectory``
override, checked against the installed TRL before any model loads.

TRL makes no promise about private methods: each credit scheme that overrides one names the
methods and the leading parameters it was written against, and a release outside
:data:`TESTED_TRL`, or a method that changed, is refused in one line.
"""

from __future__ import annotations

import inspect

from motif.errors import ConfigError

TESTED_TRL = ("1.16", "2.0")
"""TRL releases the private hooks are known to fit: >= the first, < the second."""


def require_hooks(feature: str, hooks: dict[str, list[str]]) -> None:
    """Refuse a TRL whose ``GRPOTrainer`` lacks a hook ``feature`` overrides.

    Args:
        feature: what needs them, as the error names it (``--credit all reads per-round
            rewards``).
        hooks: method name -> its parameters after ``self``, as many as the override relies on.

    Raises:
        ConfigError: TRL is outside :data:`TESTED_TRL`, or a method is missing or different.
    """
    import trl  # TRL only where a scheme that overrides it is checked
    from packaging.version import Version

    fits = True
    for name, params in hooks.items():
        method = getattr(trl.GRPOTrainer, name, None)
        got = list(inspect.signature(method).parameters)[1 : 1 + len(params)] if method else None
        fits = fits and got == params
    low, high = (Version(v) for v in TESTED_TRL)
    if not (low <= Version(trl.__version__) < high and fits):
        methods = ", ".join(f"GRPOTrainer.{name}({', '.join(p)})" for name, p in hooks.items())
        raise ConfigError(
            f"{feature} through TRL's private {methods}, known to fit trl >= {TESTED_TRL[0]}, "
            f"< {TESTED_TRL[1]}; this is trl {trl.__version__}: install trl==1.16.0 (the pinned "
            "version) or use --credit first"
        )
