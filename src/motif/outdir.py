"""The run directory of every command that writes one (``train``, ``sft``, ``eval``).

Two steps, so that nothing is deleted or written before everything has been checked:

* :func:`check_output_dir` only looks: it refuses the working directory, the home directory,
  ``/`` and any parent of them or of the project, a path that is a file, an existing
  directory that holds something without ``--overwrite``/``--resume``, and ``--overwrite`` of
  a directory that does not carry the marker file :data:`MARKER` (so it was not created by
  this tool). It returns the :class:`OutputDir` plan; ``--dry-run`` prints its ``describe()``.
* :meth:`OutputDir.claim` acts, once the run has started successfully: it deletes the old
  run (``overwrite``; the marker is checked again right before), creates the directory and
  writes the marker.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from motif.errors import MotifError
from motif.runs.layout import MARKER

__all__ = ["MARKER", "OutputDir", "check_output_dir", "is_run_dir", "protected_dirs"]


def protected_dirs() -> list[Path]:
    """Directories a run may never be written to or deleted: cwd, home, ``/``, the project."""
    package = Path(__file__).resolve().parent  # this module is in the package's folder
    project = package.parent.parent if package.parent.name == "src" else package.parent
    return [Path.cwd().resolve(), Path.home().resolve(), Path("/").resolve(), project]


def _refuse_protected(out: Path, flag: str) -> None:
    resolved = out.resolve()
    for protected in protected_dirs():
        if resolved == protected or resolved in protected.parents:
            what = "the working directory" if resolved == Path.cwd().resolve() else None
            what = what or ("your home directory" if resolved == Path.home().resolve() else None)
            what = what or f"{protected} or one of its parents"
            raise MotifError(
                f"{flag} {out} is {what}; a run needs a directory of its own (e.g. runs/NAME)"
            )


@dataclass(frozen=True)
class OutputDir:
    """What a run will do with its directory (see :func:`check_output_dir`).

    ``state`` is ``new`` (missing or empty), ``overwrite`` (an old run is deleted first) or
    ``resume`` (an existing run is continued or added to).
    """

    path: Path
    state: str
    kind: str

    def describe(self) -> str:
        """One line for a plan: what a real run would do with the directory."""
        return {
            "new": f"{self.path} (new)",
            "overwrite": f"{self.path} (an old {self.kind} run: deleted first, --overwrite)",
            "resume": f"{self.path} (existing {self.kind} run: continued)",
        }[self.state]

    def claim(self) -> Path:
        """Delete the old run (``overwrite``), create the directory, write the marker."""
        if self.state == "overwrite":
            if not (self.path / MARKER).is_file():  # checked again: never delete user files
                raise MotifError(f"refusing to delete {self.path}: it has no {MARKER} marker")
            shutil.rmtree(self.path)
        self.path.mkdir(parents=True, exist_ok=True)
        marker = self.path / MARKER
        if not marker.exists():
            marker.write_text(json.dumps({"tool": "motif-rl", "kind": self.kind}) + "\n")
        return self.path


def is_run_dir(path: Path, legacy_files: tuple[str, ...] = ()) -> bool:
    """Whether ``path`` carries the marker (or, for runs made before it existed, a legacy file)."""
    return (path / MARKER).is_file() or any((path / name).is_file() for name in legacy_files)


def check_output_dir(
    path: str | Path,
    *,
    kind: str,
    overwrite: bool = False,
    resume: bool = False,
    flag: str = "--output-dir",
    legacy_files: tuple[str, ...] = (),
    resume_hint: str | None = None,
) -> OutputDir:
    """Check ``path`` as the directory of a ``kind`` run; deletes and writes nothing.

    Args:
        kind: ``train``, ``sft`` or ``eval`` (named in messages and in the marker).
        overwrite: the old run may be deleted (only when it carries the marker).
        resume: an existing run is continued (it must carry the marker or a legacy file).
        legacy_files: files that identify a run written before the marker existed; such a run
            may be resumed, not deleted.
        resume_hint: how to continue an existing run (named in the refusal), when it can be.

    Raises:
        MotifError: one line naming the path and what to do instead.
    """
    out = Path(path).expanduser()
    if out.exists() and not out.is_dir():
        raise MotifError(f"{flag} {out} exists and is not a directory")
    _refuse_protected(out, flag)
    if not out.exists() or not any(out.iterdir()):
        return OutputDir(out, "resume" if resume and out.exists() else "new", kind)
    if overwrite:
        if not (out / MARKER).is_file():
            raise MotifError(
                f"{flag} {out} was not created by motif (no {MARKER} file), so --overwrite "
                "will not delete it; pick another directory or remove it yourself"
            )
        return OutputDir(out, "overwrite", kind)
    if resume:
        if not is_run_dir(out, legacy_files):
            raise MotifError(f"{flag} {out} holds no motif {kind} run (no {MARKER} file)")
        return OutputDir(out, "resume", kind)
    if not is_run_dir(out, legacy_files):  # --overwrite would refuse it too: do not offer it
        raise MotifError(
            f"{flag} {out} is not empty and was not created by motif (no {MARKER} file); pick "
            "another directory or empty it yourself"
        )
    if (out / MARKER).is_file():
        advice = f"{resume_hint} or --overwrite" if resume_hint else "pass --overwrite"
        advice += " to replace it"
    else:  # a run from before the marker: it may be resumed, never deleted
        advice = (
            f"{resume_hint}, or pick another directory" if resume_hint else "pick another directory"
        )
    raise MotifError(f"{flag} {out} already holds a motif {kind} run; {advice}")
