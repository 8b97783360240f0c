"""Argument parsing shared by every command: dataclasses + ``--config x.yaml``, the TRL way."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

from motif.errors import ConfigError


def print_notes(notes: Sequence[str | None]) -> None:
    """Print each note (e.g. options set that the run does not use) to stderr."""
    for note in filter(None, notes):
        print(f"note: {note}", file=sys.stderr)


def parse(
    prog: str,
    dataclass_types: Sequence[type],
    argv: Sequence[str],
    description: str = "",
    positional: dict[str, dict[str, Any]] | None = None,
) -> tuple[Any, ...]:
    """Parse ``argv`` into the dataclasses (plus a namespace of positionals, if any).

    ``--config FILE`` sets defaults from a YAML mapping; flags override it. Both
    ``--max_new_tokens`` and ``--max-new-tokens`` are accepted, in flags and YAML keys alike.
    """
    from trl import TrlParser

    parser = TrlParser(list(dataclass_types), prog=prog, description=description)
    parser.add_argument(
        "--config",
        help="YAML file whose keys set any option of this command (dashed or underscored names); flags override it.",
    )
    for name, kwargs in (positional or {}).items():
        parser.add_argument(name, **kwargs)

    def one_line(message: str) -> None:  # argparse's own errors (bad types, missing values)
        raise ConfigError(f"{message} (see `{prog} --help`)")

    parser.error = one_line  # argparse would print its whole usage first
    argv = list(argv)
    unknown: list[str] = []
    if "--config" in argv:
        at = argv.index("--config")
        if at + 1 >= len(argv):
            raise ConfigError("--config needs a YAML file path")
        config = read_config(argv[at + 1])
        del argv[at : at + 2]
        unknown = parser.set_defaults_with_config(**config)
    *parsed, remaining = parser.parse_args_into_dataclasses(argv, return_remaining_strings=True)
    remaining = [*unknown, *remaining]
    if remaining:
        raise ConfigError(f"unknown option(s) for `{prog}`: {' '.join(map(str, remaining))}")
    if positional:
        return tuple(parsed)
    return tuple(p for p in parsed if not _is_namespace(p))


def read_config(path: str) -> dict[str, Any]:
    """A YAML config as option values: keys may use dashes or underscores, like the flags.

    An ``env`` mapping sets environment variables (as TRL's parser does).
    """
    import yaml

    from motif.textio import read_text

    if not os.path.isfile(path):
        raise ConfigError(f"config file {path} does not exist")
    try:
        data = yaml.safe_load(read_text(path))
    except yaml.YAMLError as exc:
        first = str(exc).splitlines()[0]
        raise ConfigError(f"config file {path} is not valid YAML: {first}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a YAML mapping of option: value")
    env = data.pop("env", None) or {}
    if not isinstance(env, dict):
        raise ConfigError(f"config file {path}: `env` must be a mapping of NAME: value")
    for key, value in env.items():
        os.environ[str(key)] = str(value)
    config: dict[str, Any] = {}
    for key, value in data.items():
        name = str(key).replace("-", "_")
        if name in config:
            raise ConfigError(f"config file {path} sets {name} twice ({key!r} and another)")
        config[name] = value
    return config


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
