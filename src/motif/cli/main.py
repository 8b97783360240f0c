"""The ``motif`` command: a thin dispatcher; each subcommand imports what it needs."""

from __future__ import annotations

import importlib
import sys
import traceback

from motif import __version__
from motif.cli.common import PENDING_NOTES, print_notes
from motif.errors import MotifError
from motif.progress import debug

COMMANDS = {
    "infer": "answer questions over several rounds",
    "eval": "evaluate a model on a benchmark (multi- or single-round)",
    "report": "side-by-side tables and plots from eval and training runs",
    "compare": "paired differences with standard errors between eval runs on the same items",
    "train": "MOTIF or vanilla GRPO training (TRL, LoRA)",
    "sft": "format cold start: supervised warm-up on multi-round demonstrations",
    "view": "a trajectory viewer: one HTML page from eval runs, rounds side by side",
}

USAGE = "usage: motif <command> [options]   (motif <command> --help for its options)\n\ncommands:\n"


def _usage() -> str:
    return USAGE + "".join(f"  {name:<8} {text}\n" for name, text in COMMANDS.items())


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit code (2 for user errors)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage(), end="")
        return 0 if argv else 2
    if argv[0] == "--version":
        print(f"motif-rl {__version__}")
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        known = ", ".join(COMMANDS)
        print(
            f"motif: error: unknown command {name!r}; use one of {known} (motif --help)",
            file=sys.stderr,
        )
        return 2
    try:
        module = importlib.import_module(f"motif.cli.{name}")
    except ModuleNotFoundError as exc:
        if exc.name != f"motif.cli.{name}":
            raise
        print(f"motif: `{name}` is not available in this version", file=sys.stderr)
        return 2
    return _run(module, rest)


def _run(module, rest: list[str]) -> int:

    try:
        code = int(module.run(rest) or 0)
        print_notes()  # notes the command had no earlier place to print
        return code
    except (MotifError, ValueError, FileNotFoundError) as exc:
        PENDING_NOTES.clear()  # an error stays one line

        if debug():
            traceback.print_exc()
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"motif: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("motif: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
