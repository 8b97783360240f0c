"""Argument parsing shared by every command: dataclasses + ``--config x.yaml``, the TRL way."""

from __future__ import annotations

import argparse
import logging
import os
import re
import sys
from collections.abc import Sequence
from typing import Any

from motif.errors import ConfigError
from motif.textio import read_text

PENDING_NOTES: list[str] = []
"""Notes found while parsing (a repeated option), printed by the next :func:`print_notes`,
after the command's checks, so that a user error stays one line."""


def print_notes(notes: Sequence[str | None] = ()) -> None:
    """Print the pending parse notes, then each note (e.g. options set that the run does not
    use), to stderr."""
    pending = list(PENDING_NOTES)
    PENDING_NOTES.clear()
    for note in filter(None, [*pending, *notes]):
        print(f"note: {note}", file=sys.stderr)


def parse(
    prog: str,
    dataclass_types: Sequence[type],
    argv: Sequence[str],
    description: str = "",
    positional: dict[str, dict[str, Any]] | None = None,
) -> tuple[Any, ...]:
    """Parse ``argv`` into the dataclasses (plus a namespace of positionals, if any).

    ``--config FILE`` (or ``--config=FILE``, once) sets defaults from a YAML mapping; flags
    override it. Both ``--max_new_tokens`` and ``--max-new-tokens`` are accepted, in flags and
    YAML keys alike. Every spelling accepted means what it says: options are never
    abbreviated (``--conf`` is unknown, not ``--config``); a list option given twice keeps
    both values (``--x a --x b`` is ``--x a b``); any other option given twice with different
    values keeps the last, as argparse does (a script may append overrides), and a note names
    both (:data:`PENDING_NOTES`); a YAML key that is not an option is refused.

    Raises:
        ConfigError: one line naming the option, key or file.
    """
    from trl import TrlParser

    parser = TrlParser(
        list(dataclass_types),
        prog=prog,
        description=description,
        allow_abbrev=False,
        formatter_class=_HelpFormatter,
    )
    parser.add_argument("--config", metavar="FILE", help=CONFIG_HELP)
    for name, kwargs in (positional or {}).items():
        parser.add_argument(name, **kwargs)

    def one_line(message: str) -> None:  # argparse's own errors (bad types, missing values)
        raise ConfigError(f"{message} (see `{prog} --help`)")

    parser.error = one_line  # argparse would print its whole usage first
    PENDING_NOTES.clear()  # one command, one parse: nothing left from an earlier one
    _record_uses(parser)
    argv, config_path = take_config(argv)
    unknown: list[str] = []
    if config_path is not None:
        config = read_config(config_path)
        _refuse_foreign_keys(parser, config, config_path)
        config = typed_config(parser, config, config_path)
        unknown = parser.set_defaults_with_config(**config)
    *parsed, remaining = parser.parse_args_into_dataclasses(argv, return_remaining_strings=True)
    remaining = [*unknown, *remaining]
    if remaining:
        raise ConfigError(f"unknown option(s) for `{prog}`: {' '.join(map(str, remaining))}")
    lists = frozenset(a.dest for a in parser._actions if a.nargs in ("+", "*"))
    PENDING_NOTES.extend(repeat_notes(parser.motif_uses, lists))
    if positional:
        return tuple(parsed)
    return tuple(p for p in parsed if not _is_namespace(p))


CONFIG_HELP = (
    "YAML file whose keys set any option of this command (dashed or underscored names); flags "
    "override it. Give it once. A list option repeated on the command line keeps every value; "
    "any other option repeated keeps the last value (a note names both)."
)


def _options(argv: Sequence[str]) -> list[tuple[int, str]]:
    """(position, name) of each option-like token before a bare ``--`` (``--x=1`` -> ``--x``)."""
    found = []
    for at, arg in enumerate(argv):
        if arg == "--":
            break
        if arg.startswith("--"):
            found.append((at, arg.split("=", 1)[0]))
    return found


def take_config(argv: Sequence[str]) -> tuple[list[str], str | None]:
    """``argv`` without its ``--config FILE`` / ``--config=FILE``, and that FILE (or None).

    Raises:
        ConfigError: ``--config`` is given twice, or without a file.
    """
    argv = list(argv)
    given = [at for at, name in _options(argv) if name == "--config"]
    if len(given) > 1:
        raise ConfigError(
            "--config is given more than once; put the options in one YAML file and override "
            "single options with flags"
        )
    if not given:
        return argv, None
    at = given[0]
    if argv[at].startswith("--config="):
        path, end = argv[at].split("=", 1)[1], at + 1
    else:
        path, end = (argv[at + 1] if at + 1 < len(argv) else ""), at + 2
    if not path.strip() or path.startswith("--"):
        raise ConfigError("--config needs a YAML file path")
    return argv[:at] + argv[end:], path


def repeat_notes(
    uses: dict[str, list[tuple[str, Any]]], lists: frozenset = frozenset()
) -> list[str]:
    """A note for each option given more than once with different values (the last is kept).

    ``uses`` maps an option's destination to each (spelling, value after that use), in order;
    the options in ``lists`` add their values up when repeated, so they get no note.
    """
    notes = []
    for dest, seen in uses.items():
        values = [value for _, value in seen]
        if dest in lists:
            continue  # its values add up: nothing is dropped
        if len(seen) > 1 and any(v != values[-1] for v in values):
            given = " and ".join(f"{name} {_shown(value)}" for name, value in seen)
            every = "both" if len(seen) == 2 else "all"
            notes.append(f"{given} {every} set {dest}: the last, {_shown(values[-1])}, is used")
    return notes


def _shown(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _refuse_foreign_keys(parser: Any, config: dict[str, Any], path: str) -> None:
    """A YAML key must name an option of the command (not ``config`` or ``help``)."""
    for key in ("config", "help"):
        if key in config:
            raise ConfigError(f"config file {path}: `{key}` is not an option of this command")


def typed_config(parser: Any, config: dict[str, Any], path: str) -> dict[str, Any]:
    """The YAML values as the options' types, as argparse makes a flag's text.

    argparse converts a string default (``rounds: "3"``) but takes any other YAML value as it
    is, so ``rounds: 2.5``, ``rounds: true`` or ``extra_rounds: [2, "²"]`` would reach the run
    as a float, a bool or a string: whole numbers must be integers, numbers numbers, switches
    true/false, and a list option's items of its type. A number for a text option becomes
    its text (``output_dir: 2024``). Unknown keys are left to the caller.

    Raises:
        ConfigError: naming the file, the key and the value.
    """
    by_dest = {a.dest: a for a in parser._actions if a.option_strings}
    typed = dict(config)
    for key, value in config.items():
        action = by_dest.get(key)
        if action is None or value is None:
            continue
        if action.nargs in ("+", "*") and isinstance(value, list):
            typed[key] = [_typed(action.type, path, key, item) for item in value]
        elif action.nargs not in ("+", "*"):
            typed[key] = _typed(action.type, path, key, value)
    return typed


def _typed(kind: Any, path: str, key: str, value: Any) -> Any:
    name = getattr(kind, "__name__", "")
    wrong = ConfigError(
        f"config file {path}: {key} must be {_TYPE_WORDS.get(name, name)}; got {value!r}"
    )
    if isinstance(value, str):
        if name not in ("int", "float"):
            return value  # argparse converts text itself (switches, choices)
        try:
            return kind(value) if value.strip().isascii() else _raise(wrong)
        except ValueError:
            raise wrong from None
    if name == "int":
        ok = isinstance(value, int) and not isinstance(value, bool)
        return value if ok else _raise(wrong)
    if name == "float":
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        return float(value) if ok else _raise(wrong)
    if name == "string_to_bool":
        return value if isinstance(value, bool) else _raise(wrong)
    if name == "str" and isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return value


_TYPE_WORDS = {"int": "a whole number", "float": "a number", "string_to_bool": "true or false"}


def _raise(error: Exception) -> Any:
    raise error


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Adds "(default: X)" only where the help does not state the default itself ("Default")
    and there is a value to show: a help saying "Default: twice --max-new-tokens" must not end
    with "(default: None)", nor "Default 1." with "(default: 1)"."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if re.search(r"\bDefault\b", text) or action.default is None:
            return text
        return super()._get_help_string(action)


class _Recording:
    """Mixed into each option's argparse action: records every use of the option on the parser
    (``parser.motif_uses``: dest -> [(spelling, value after it)]); a list option
    (``nargs="+"``) used again adds its values to the earlier ones instead of replacing them."""

    def __call__(self, parser: Any, namespace: Any, values: Any, option_string: Any = None) -> None:
        uses = parser.motif_uses.setdefault(self.dest, [])
        if uses and self.nargs in ("+", "*") and isinstance(self, argparse._StoreAction):
            values = [*getattr(namespace, self.dest), *values]
        super().__call__(parser, namespace, values, option_string)  # type: ignore[misc]
        uses.append((option_string, getattr(namespace, self.dest, None)))


def _record_uses(parser: Any) -> None:
    parser.motif_uses = {}
    kinds: dict[type, type] = {}
    for action in parser._actions:
        if not action.option_strings or isinstance(action, argparse._HelpAction):
            continue
        kind = type(action)
        if kind not in kinds:
            kinds[kind] = type(f"_Recording{kind.__name__}", (_Recording, kind), {})
        action.__class__ = kinds[kind]


def read_config(path: str) -> dict[str, Any]:
    """A YAML config as option values: keys may use dashes or underscores, like the flags.

    An ``env`` mapping sets environment variables (as TRL's parser does).
    """
    import yaml

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
    return isinstance(obj, argparse.Namespace)


def quiet_libraries() -> None:
    """Keep library progress bars and chatter off the user's terminal."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
