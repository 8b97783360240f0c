"""Argument parsing shared by every command: dataclasses + ``--config x.yaml``, the TRL way."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any

from motif.errors import ConfigError


def parse(
    prog: str,
    dataclass_types: Sequence[type],
    argv: Sequence[str],
    description: str = "",
    positional: dict[str, dict[str, Any]] | None = None,
) -> tuple[Any, ...]:
    """Parse ``argv`` into the dataclasses (plus a namespace of positionals, if any).

    ``--config FILE`` sets defaults from a YAML mapping; flags override it. Both
    ``--max_new_tokens`` and ``--max-new-tokens`` are accepted.
    """
    from trl import TrlParser

    parser = TrlParser(list(dataclass_types), prog=prog, description=description)
    parser.add_argument("--config", help="YAML file whose keys set any of the options below.")
    for name, kwargs in (positional or {}).items():
        parser.add_argument(name, **kwargs)
    argv = list(argv)
    if "--config" in argv and argv.index("--config") + 1 < len(argv):
        path = argv[argv.index("--config") + 1]
        if not os.path.isfile(path):
            raise ConfigError(f"config file {path} does not exist")
    out = parser.parse_args_and_config(argv, return_remaining_strings=True)
    *parsed, remaining = out
    if remaining:
        raise ConfigError(f"unknown option(s) for `{prog}`: {' '.join(map(str, remaining))}")
    if positional:
        return tuple(parsed)
    return tuple(p for p in parsed if not _is_namespace(p))


def _is_namespace(obj: Any) -> bool:
    import argparse

    return isinstance(obj, argparse.Namespace)


def quiet_libraries() -> None:
    """Keep library progress bars and chatter off the user's terminal."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
