"""What the studies keep between sittings, shared by them (studies.study2, studies.study3): the
copy of a resume state's files, and the bf16 copy of a LoRA adapter that a study evaluates and
publishes.

Imports no study.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from motif.runs.layout import ADAPTER_CONFIG, ADAPTER_WEIGHTS


def bf16_copy(source: Path, target: Path) -> Path:
    """``source``'s LoRA adapter with its float tensors rounded to bf16 (half the file: 9.8
    instead of 19.6 MB at r=16 on SmolLM2-135M), written to ``target`` via a temporary folder
    so that a cut-off copy is never taken for a finished one."""
    import torch  # heavy: only a stage that writes the bf16 copies needs it
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    weights = source / ADAPTER_WEIGHTS
    with safe_open(weights, framework="pt") as f:
        metadata = f.metadata()
    tensors = {
        k: v.to(torch.bfloat16) if v.is_floating_point() else v
        for k, v in load_file(weights).items()
    }
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    save_file(tensors, partial / ADAPTER_WEIGHTS, metadata=metadata)
    shutil.copy2(source / ADAPTER_CONFIG, partial / ADAPTER_CONFIG)
    shutil.rmtree(target, ignore_errors=True)  # an incomplete copy (e.g. a cut-off restore)
    partial.rename(target)
    return target


def bf16_copies(wanted: list[tuple[str, Path, Path]], prog: str) -> list[Path]:
    """Write each ``(model, target, checkpoint)`` of ``wanted`` whose ``target`` lacks a
    complete adapter as a bf16 copy of ``checkpoint``; the copies written. A checkpoint that
    is gone (a sitting's machine took it) is skipped with a note naming ``prog``."""
    from motif.runs.training import complete_adapter

    written = []
    for model, target, source in wanted:
        if complete_adapter(target):
            continue
        if complete_adapter(source):
            written.append(bf16_copy(source, target))
        else:
            print(f"{prog}: {source} is gone; {model} cannot be copied or evaluated")
    return written


def copy_kept(
    source_root: Path,
    target_root: Path,
    replace_changed: bool,
    patterns: tuple[str, ...],
    skip: Callable[[Path], bool] = lambda relative: False,
) -> list[Path]:
    """Copy the files under ``source_root`` that match ``patterns`` to the same place under
    ``target_root``: a missing one, or (``replace_changed``) one that differs; never one in a
    ``*.partial`` folder or one ``skip`` (given the relative path) refuses; the copies."""
    copies = []
    for pattern in patterns:
        for source in sorted(p for p in source_root.glob(pattern) if p.is_file()):
            relative = source.relative_to(source_root)
            if any(part.endswith(".partial") for part in relative.parts) or skip(relative):
                continue
            target = target_root / relative
            if target.exists() and (
                not replace_changed or target.read_bytes() == source.read_bytes()
            ):
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            copies.append(Path(shutil.copy2(source, target)))
    return copies
