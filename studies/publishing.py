"""What every study's `publish` stage does alike (docs/results/README.md's rule): copy a
file, write an evaluation's summary with its replies gzipped, name a published adapter's
folder, and replace a study's generated block of docs/results.md.

Imports no study (motif.runs.layout: the eval folder's file names).
"""

from __future__ import annotations

import gzip
import shutil
import sys
from pathlib import Path

from motif.runs.layout import SAMPLES_FILE, SUMMARY_FILE


def copy(source: Path, target: Path) -> Path:
    """Copy a file, creating the target's folder."""
    target.parent.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copy2(source, target))


def publish_eval(folder: Path, dest: Path) -> list[Path]:
    """An eval folder's summary.json as ``dest/<folder name>.json`` and its samples.jsonl
    gzipped as ``dest/<folder name>.samples.jsonl.gz`` (no timestamp in the archive: the same
    replies give the same bytes); the files written."""
    written = [copy(folder / SUMMARY_FILE, dest / f"{folder.name}.json")]
    if (folder / SAMPLES_FILE).exists():
        target = dest / f"{folder.name}.samples.jsonl.gz"
        target.write_bytes(gzip.compress((folder / SAMPLES_FILE).read_bytes(), mtime=0))
        written.append(target)
    return written


def adapter_folder(adapters: Path, model: str) -> Path:
    """Where ``model``'s adapter (``sft`` or ``<arm>-s<seed>@<step>``) is published under
    ``adapters``: ``sft``, ``<arm>-s<seed>-step<step>`` (no ``@`` in a path)."""
    return adapters / model.replace("@", "-step")


def replace_block(page: str, body: str, begin: str, end: str, prog: str) -> str:
    """``page`` with the text between the markers ``begin`` and ``end`` replaced by ``body``;
    exits naming ``prog`` when the page lacks them."""
    if begin not in page or end not in page:
        sys.exit(f"{prog}: the results page lacks the markers {begin} ... {end}")
    head, rest = page.split(begin, 1)
    return f"{head}{begin}\n{body.strip()}\n{end}{rest.split(end, 1)[1]}"
