"""The identity of an evaluation run: what must match for results to share one directory.

:func:`run_identity` is written to an eval directory's config and compared on every resume
(:class:`motif.eval.store.ResultStore`); :func:`run_label` names a run by it in reports, and
:func:`package_versions` records the versions that shape the results in ``summary.json``.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from motif import identity as weights  # fingerprints looked up per call: replaceable
from motif.backends.vllm_options import resolve_backend
from motif.carryover import carry_over_class, protocol_carry_over
from motif.config import GenerationArgs, ModelArgs, ProtocolArgs
from motif.data import Problem, display_name, fingerprint
from motif.eval.args import EvalArgs
from motif.models import DEFAULT_MODEL_NAME
from motif.runtime import protocol_generation

FORMAT_VERSION = 1
ANSWER_RULE = (
    "final_answer_boxes(text, fallback='response') per round (several boxes graded together); "
    "motif.grading.is_correct"
)
VERSIONED = ("motif-rl", "torch", "transformers", "trl", "peft", "datasets", "math-verify")


def model_identity(model: ModelArgs) -> dict:
    """The model part of a run's identity: resolved paths, weight and adapter fingerprints.

    ``model_weights`` fingerprints the weight files (names, sizes, modification times; see
    :mod:`motif.identity`), so new weights under the same path are a different run.
    """
    name = model.model
    if name is None:
        name = f"default:{DEFAULT_MODEL_NAME}"
    elif Path(name).expanduser().exists():
        name = str(Path(name).expanduser().resolve())
    adapter = str(Path(model.adapter).expanduser().resolve()) if model.adapter else None
    return {
        "model": name,
        "model_weights": weights.model_fingerprint(model.model),
        "adapter": adapter,
        "adapter_sha256": weights.adapter_fingerprint(adapter),
        # the backend generates differently (kernels, sampler): never mixed in one directory
        "backend": resolve_backend(model.backend)[0],
        "dtype": model.dtype,
        # the decode path and its compute dtype change greedy outputs (bf16 vs fp32)
        "decode": model.decode,
        "decode_dtype": model.decode_dtype,
        "context_overflow": model.context_overflow,
    }


def run_identity(
    args: EvalArgs,
    model: ModelArgs,
    gen: GenerationArgs,
    proto: ProtocolArgs,
    problems: Sequence[Problem],
) -> dict:
    """Everything that must match for results to be mixed in one output directory.

    Not part of it: ``--limit`` (the fingerprint covers the full set), ``--batch-size``,
    device and batch sizes, where the data came from (hub or local copy, same content).
    """
    source = args.benchmark or ""
    return {
        "format": FORMAT_VERSION,
        **model_identity(model),
        "protocol": protocol_identity(proto),
        "sampling": {
            **_budgets(gen, proto),
            "temperature": gen.temperature,
            "top_p": gen.top_p,
            "top_k": gen.top_k,
            "seed": gen.seed,
            "samples": args.samples,
        },
        "data": {
            "benchmark": display_name(source),
            "split": args.split,
            "size": len(problems),
            "fingerprint": fingerprint(list(problems)),
            "task_config": args.task_options(),
            "data_seed": args.data_seed if source.startswith("reasoning_gym:") else None,
        },
        "answer_rule": ANSWER_RULE,
    }


def protocol_identity(proto: ProtocolArgs) -> dict:
    """The protocol part of a run's identity.

    ``carry_over`` (and the strategy's own parameters, :meth:`CarryOver.identity`: ``tail``'s
    window C/h/m/I) is only written for strategies other than the legacy ``summary``, so
    directories written before carry-overs existed still resume.
    """
    out: dict = {
        "rounds": proto.rounds,
        "summary_rule": proto.summary_rule,
        "early_stop": proto.early_stop,
    }
    carry = proto.strategy()
    if not carry.legacy:
        out["carry_over"] = proto.carry_over
    return {**out, **carry.identity()}


def run_label(identity: dict) -> str:
    """A short row label: model (+ adapter), rounds (or tail chunks, or one pass), K when sampling."""
    name = Path(identity["model"].removeprefix("default:")).name
    if identity.get("adapter"):
        name += f" + {Path(identity['adapter']).name}"
    protocol = identity["protocol"]
    rounds = protocol["rounds"]
    carry = protocol_carry_over(protocol)
    chunk = (protocol.get("window") or {}).get("chunk")
    label = f"{name}, {carry.label(rounds, chunk)}"
    samples = identity["sampling"]["samples"]
    return label + (f", avg@{samples}" if samples > 1 else "")


def package_versions() -> dict[str, str | None]:
    """Installed versions of the packages that shape the results."""
    out: dict[str, str | None] = {}
    for name in VERSIONED:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


def _budgets(gen: GenerationArgs, proto: ProtocolArgs) -> dict:
    """The per-round budgets a run actually uses (its identity holds these, not the flags).

    ``tail``: C and C - h - m from the window (``--max-new-tokens`` does not apply); ``none``:
    one pass, no later rounds. ``summary`` records both flags as given, as it always has (so
    earlier directories resume).
    """
    used = protocol_generation(gen, proto)
    later = used.later_max_new_tokens if carry_over_class(proto.carry_over).later_rounds else None
    return {"max_new_tokens": used.max_new_tokens, "later_max_new_tokens": later}
