"""GPU check of the transformers backend: bf16 batched generation, both decode paths.

Runs with random weights built from a model config (the device machine has no model hub): the
speed of a decoder does not depend on its weights, and EOS is masked out by using random weights
(a random model almost never emits it), so every row generates ``--tokens`` tokens.

    PYTHONPATH=src python bench/gpu_check.py --model-dir .gpu/smol [--qwen3b]
"""

from __future__ import annotations

import argparse
import json
import time

import torch


def build(config_dir: str, dtype, override: dict | None = None):
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    config = AutoConfig.from_pretrained(config_dir)
    for key, value in (override or {}).items():
        setattr(config, key, value)
    with torch.device("cuda"):
        model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    model.eval()
    tokenizer = AutoTokenizer.from_pretrained(config_dir)
    tokenizer.padding_side = "left"
    return model, tokenizer


def chats(n: int):
    from motif.prompts import round_messages

    qs = [f"Question {i}: what is {i} + {2 * i} times {i % 7}? " * (1 + i % 3) for i in range(n)]
    return [round_messages(q, 1, 3) for q in qs]


def throughput(backend, n: int, tokens: int, samples: int = 1) -> float:
    from motif.backends.base import SamplingParams

    params = SamplingParams(max_new_tokens=tokens, temperature=1.0, top_p=0.95, seed=0)
    backend.generate(chats(min(n, 4)), SamplingParams(max_new_tokens=4))  # warm-up
    torch.cuda.synchronize()
    start = time.perf_counter()
    outs = backend.generate(chats(n // samples), params, num_samples=samples)
    torch.cuda.synchronize()
    return sum(o.completion_tokens for o in outs) / (time.perf_counter() - start)


def greedy_agreement(model, tokenizer, n: int = 16, tokens: int = 32) -> float:
    from motif.backends.base import SamplingParams
    from motif.backends.hf import TransformersBackend

    params = SamplingParams(max_new_tokens=tokens)
    fast = TransformersBackend(model, tokenizer, decode="fast").generate(chats(n), params)
    ref = TransformersBackend(model, tokenizer, decode="generate").generate(chats(n), params)
    return sum(a.token_ids == b.token_ids for a, b in zip(fast, ref, strict=True)) / n


def table(model, tokenizer, batches, tokens) -> dict:
    from motif.backends.hf import TransformersBackend

    rows = {}
    for b in batches:
        row = {}
        for decode in ("generate", "fast"):
            backend = TransformersBackend(model, tokenizer, max_batch_size=256, decode=decode)
            row[decode] = round(throughput(backend, b, tokens), 1)
        row["ratio"] = round(row["fast"] / row["generate"], 2)
        rows[b] = row
        print(
            f"  batch {b:>4}: generate {row['generate']:>9.1f} tok/s   fast {row['fast']:>9.1f}"
            f" tok/s   x{row['ratio']}",
            flush=True,
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model-dir", required=True)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--qwen3b", action="store_true", help="also a Qwen2.5-3B-sized model")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    print(torch.__version__, torch.cuda.get_device_name(0), flush=True)
    import transformers

    print("transformers", transformers.__version__, flush=True)
    report = {"device": torch.cuda.get_device_name(0)}
    model, tokenizer = build(args.model_dir, torch.bfloat16)
    report["smol_greedy_agreement_bf16"] = greedy_agreement(model, tokenizer)
    print("SmolLM2-135M bf16: greedy fast==generate on", report["smol_greedy_agreement_bf16"])
    report["smol_bf16"] = table(model, tokenizer, [1, 8, 32, 64, 128, 256], args.tokens)
    del model
    if args.qwen3b:
        qwen = dict(
            hidden_size=2048,
            intermediate_size=11008,
            num_hidden_layers=36,
            num_attention_heads=16,
            num_key_value_heads=2,
            head_dim=128,
            vocab_size=151936,
            tie_word_embeddings=True,
            max_position_embeddings=32768,
        )
        model, tokenizer = build(args.model_dir, torch.bfloat16, qwen)
        print("3B-sized (Qwen2.5-3B shape, Llama blocks) bf16:", flush=True)
        report["qwen3b_bf16"] = table(model, tokenizer, [8, 64], args.tokens)
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(report, fh, indent=1)


if __name__ == "__main__":
    main()
