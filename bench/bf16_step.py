"""fp32 vs bf16-autocast training step on the default model, side by side in one process.

A LoRA step shaped like `motif sft`'s CPU recipe (r 16 on the seven projections of the last 8
layers, 4 rows of 320 tokens), timed alternately so a busy moment hits both; prints the best of
three for each and their ratio, plus what ``bf16: auto`` decides here.

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python bench/bf16_step.py
"""

from __future__ import annotations

import time

import torch
from peft import LoraConfig, get_peft_model

from motif.backends.fast import bf16_training_is_fast
from motif.models import load_model

PROJECTIONS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def main() -> None:
    torch.manual_seed(0)
    model, _ = load_model(None, None, "float32", "cpu", False)
    layers = model.config.num_hidden_layers
    lora = LoraConfig(
        r=16,
        lora_alpha=32,
        target_modules=PROJECTIONS,
        layers_to_transform=list(range(layers - 8, layers)),
    )
    model = get_peft_model(model, lora)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    ids = torch.randint(0, model.config.vocab_size, (4, 320))

    def step(bf16: bool) -> float:
        start = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        return time.perf_counter() - start

    step(False), step(True)  # warm-up
    times: dict[bool, list[float]] = {False: [], True: []}
    for _ in range(3):
        for bf16 in (False, True):
            times[bf16].append(step(bf16))
    fp32, bf16 = min(times[False]), min(times[True])
    print(f"step fp32 {fp32:.2f} s, bf16 autocast {bf16:.2f} s: bf16 is {fp32 / bf16:.2f}x")
    fast, why = bf16_training_is_fast("cpu")
    print(f"bf16: auto here -> {fast} ({why})")


if __name__ == "__main__":
    main()
