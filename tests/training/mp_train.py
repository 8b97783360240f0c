"""Run by `accelerate launch` in the multi-process test: train, then record this rank's weights."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import motif.training.trainer as trainer_module
from motif.cli.train import parse_config
from motif.training.rundir import prepare_run_dir


def length_reward(prompts, completions, **kwargs):
    """Variance inside every group, so both steps update the weights (random models never format)."""
    return [float(len(c[0]["content"] if isinstance(c, list) else c)) for c in completions]


def weights_digest(model) -> tuple[str, bool]:
    """sha256 over the trainable parameters, and whether any LoRA B left its zero start."""
    digest, moved = hashlib.sha256(), False
    for name, param in sorted(model.named_parameters()):
        if param.requires_grad:
            digest.update(name.encode())
            digest.update(param.detach().cpu().float().numpy().tobytes())
            moved |= "lora_B" in name and bool(param.detach().abs().sum() > 0)
    return digest.hexdigest(), moved


def main() -> None:
    config = parse_config(sys.argv[1:])
    real = trainer_module.build_rewards
    trainer_module.build_rewards = lambda *a: [*real(*a), length_reward]
    trainer = trainer_module.build_trainer(config, trainer_module.build_dataset(config))
    if trainer.accelerator.is_main_process:
        prepare_run_dir(config.run.output_dir, config.to_dict(), False, True)
    trainer.accelerator.wait_for_everyone()
    trainer.train()
    digest, moved = weights_digest(trainer.accelerator.unwrap_model(trainer.model))
    rank = trainer.accelerator.process_index
    out = Path(config.run.output_dir) / f"rank{rank}.sha256"
    out.write_text(f"{trainer.state.global_step} {digest} {int(moved)}\n")


if __name__ == "__main__":
    main()
