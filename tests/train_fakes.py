"""Tiny training runs: the ``motif train`` flags of a run small enough for CPU tests, a reward
with variance, and readers of what a run wrote (adapter tensors, metrics rows)."""

from __future__ import annotations

import json
from pathlib import Path

TINY_RUN = [
    "--dataset",
    "reasoning_gym:chain_sum",
    "--dataset-size",
    "6",
    "--num-generations",
    "2",
    "--max-completion-length",
    "6",
    "--continuation-max-new-tokens",
    "6",
    "--k",
    "2",
    "--rounds",
    "2",
    "--save-steps",
    "1",
    "--lora-r",
    "4",
    "--lora-alpha",
    "8",
    "--lora-target-modules",
    "q_proj",
    "v_proj",
    "--learning-rate",
    "0.05",
    "--report-to",
    "none",
    "--warmup-ratio",
    "0.0",
]
"""``motif train`` flags (no model or output dir) of a 2-round, 2-generation LoRA run."""


def length_reward(prompts, completions, **kwargs):
    """A reward with variance inside every group, so a step has a non-zero policy gradient."""
    return [float(len(c[0]["content"] if isinstance(c, list) else c)) for c in completions]


def adapter_tensors(path: Path) -> dict:
    """The LoRA adapter tensors saved in directory ``path``, by name."""
    # safetensors.torch imports torch: kept out of `import train_fakes`
    from safetensors.torch import load_file

    return load_file(str(path / "adapter_model.safetensors"))


def read_metrics(out: Path) -> list[dict]:
    """The metrics rows a run logged in ``out/metrics.jsonl``, in file order."""
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
