"""`make demo`: format cold start, MOTIF training, then a before/after table, on a CPU.

Runs the project's own commands on the offline default model (SmolLM2-135M-Instruct) and the
reasoning-gym chain_sum task:
  1. motif sft   --config recipes/sft_chain_sum_cpu.yaml           (format cold start)
  2. motif train --config recipes/motif_smollm2_chain_sum_cpu.yaml (MOTIF from the cold start)
  3. greedy multi-round rollouts of the same held-out items with the base model, the cold-start
     adapter and the MOTIF adapter: format rate and accuracy.
"""

from __future__ import annotations

import sys
import time

from motif.cli.main import main as motif

OUT = "runs/demo"
SFT_RECIPE = "recipes/sft_chain_sum_cpu.yaml"
TRAIN_RECIPE = "recipes/motif_smollm2_chain_sum_cpu.yaml"


def step(title: str, argv: list[str]) -> None:
    print(f"\n=== {title}: motif {' '.join(argv)}", flush=True)
    start = time.perf_counter()
    code = motif(argv)
    if code != 0:
        sys.exit(f"demo: `motif {' '.join(argv)}` failed with exit code {code}")
    print(f"=== {title}: {time.perf_counter() - start:.0f} s", flush=True)


def held_out_table(sft_dir: str, motif_dir: str) -> list[tuple[str, dict]]:
    """The same held-out items, greedy, for base, cold start and MOTIF."""
    from motif.cli.common import parse
    from motif.config import ModelArgs, ProtocolArgs
    from motif.training.config import LoraArgs
    from motif.training.sft import SftArgs, SftConfig, evaluate_adapter

    parts = parse("demo", (SftArgs, ModelArgs, ProtocolArgs, LoraArgs), ["--config", SFT_RECIPE])
    config = SftConfig(*parts)
    rows = []
    for name, adapter in (("base", None), ("cold start (sft)", sft_dir), ("MOTIF", motif_dir)):
        print(f"evaluating {name} ...", flush=True)
        rows.append((name, evaluate_adapter(config, adapter)))
    return rows


def main() -> None:
    start = time.perf_counter()
    print(
        "motif-rl demo: cold start, MOTIF training and a before/after evaluation on the offline "
        "default model; about 6 minutes on 2 CPU cores (15 at most).",
        flush=True,
    )
    sft_dir, motif_dir = f"{OUT}/sft", f"{OUT}/motif"
    step(
        "1/3 format cold start",
        ["sft", "--config", SFT_RECIPE, "--output-dir", sft_dir, "--overwrite", "--eval-size", "0"],
    )
    step(
        "2/3 MOTIF training",
        [
            "train",
            "--config",
            TRAIN_RECIPE,
            "--init-adapter",
            sft_dir,
            "--output-dir",
            motif_dir,
            "--overwrite",
        ],
    )
    print("\n=== 3/3 held-out evaluation (greedy, same items for every row)", flush=True)
    rows = held_out_table(sft_dir, motif_dir)
    items = rows[0][1]["items"]
    print(f"\nchain_sum, {items} held-out items, 2 rounds, greedy")
    print(f"| {'model':<18} | format rate | all rounds in format | accuracy |")
    print(f"|{'-' * 20}|-------------|----------------------|----------|")
    for name, r in rows:
        print(
            f"| {name:<18} | {r['format_rate']:>10.1%} | {r['trajectory_format_rate']:>19.1%} "
            f"| {r['accuracy']:>7.1%} |"
        )
    print(
        f"\ndemo finished in {(time.perf_counter() - start) / 60:.1f} minutes; "
        f"adapters in {sft_dir} and {motif_dir}"
    )


if __name__ == "__main__":
    main()
