"""The third study's layout (studies.study3; docs/results.md, "Third study"): its arms and
protocols, run and eval directories, the evaluations it runs, and the wall-clock match.

The arms are the recipes of recipes/methods/ (one training method each) named in
recipes/study3/study.yaml, with what the study changes passed as options; each arm has its
own protocol (the one it trains in), and every model is also scored in the others'.

Dependencies go one way: study3 -> study3_summary, study3_state -> study3_layout ->
studies.jobs, studies.keeping, studies.wallclock -> motif; this module imports no other
module of the third study, and no other study.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import yaml

from motif.runs.layout import ADAPTER_WEIGHTS, CHECKPOINT_GLOB, SUMMARY_FILE, checkpoint_name
from motif.runs.training import latest_checkpoint, logged_steps, training_seconds
from studies.jobs import Job, motif_argv
from studies.keeping import bf16_copies
from studies.wallclock import wall_matched_step

PROTOCOLS = ("summary", "tail", "model", "short", "long")
"""How a model answers (``units`` rounds or chunks of B new tokens each, B = study.yaml's
``budget``): ``summary``, MOTIF's rounds; ``tail``, Delethink's chunks of C = 2B keeping the
thought's first 8 and last B - 8 tokens, ``units - 1`` of them (a total of ``units`` x B);
``model``, rounds the model ends, at most ``units``; ``short``, one pass of 2B (the summary
arms' largest context); ``long``, one pass of ``units`` x B (the unbounded reference)."""
LABELS = {
    "summary": "{u} rounds x {b}",
    "tail": "tail chunks, {c} + {k} x {b}",
    "model": "model-ended, <= {u} x {b}",
    "short": "1 round x {c}",
    "long": "1 round x {t}",
}
EVAL_KERNEL = "onednn_packed"
"""The fp32 linear kernel every evaluation runs (``MOTIF_FP32_KERNEL``, docs/decode.md), as in
the second study: pinned so that a model scores the same on every machine."""


def protocol_argv(protocol: str, units: int, budget: int) -> list[str]:
    """``motif eval`` options of ``protocol`` (:data:`PROTOCOLS`) at ``units`` rounds or
    chunks of ``budget`` new tokens."""
    per_round = ["--max-new-tokens", str(budget), "--later-max-new-tokens", str(budget)]
    if protocol == "summary":
        return ["--rounds", str(units), *per_round]
    if protocol == "model":
        return ["--round-end", "model", "--max-rounds", str(units), *per_round]
    if protocol == "tail":
        window = ["--tail-chunk", str(2 * budget), "--tail-head", "8"]
        window += ["--tail-keep", str(budget - 8), "--tail-chunks", str(units - 1)]
        return ["--carry-over", "tail", *window]
    tokens = 2 * budget if protocol == "short" else units * budget
    return ["--carry-over", "none", "--max-new-tokens", str(tokens)]


def protocol_label(protocol: str, units: int, budget: int) -> str:
    """How a table heads a protocol: ``3 rounds x 96``, ``1 round x 288``, ..."""
    values = dict(u=units, b=budget, c=2 * budget, k=units - 2, t=units * budget)
    return LABELS[protocol].format(**values)


MULTI_ROUND = ("summary", "tail", "model")
"""The protocols of several rounds or chunks: those with a per-round table."""


def scaled(protocol: str) -> str:
    """The protocol a model is given more rounds in: its own, one pass for both one-pass
    protocols (a pass of ``units`` x B: the long context extended)."""
    return "long" if protocol == "short" else protocol


@dataclass(frozen=True)
class Study:
    """The study's settings (``recipes``/study.yaml), the method recipes of its arms
    (``methods``) and its outputs (``out``)."""

    out: Path
    recipes: Path = Path("recipes/study3")
    methods: Path = Path("recipes/methods")

    @cached_property
    def config(self) -> dict:
        """study.yaml: model, n, B, task, held-out and scaling splits, steps, arms."""
        return yaml.safe_load((self.recipes / "study.yaml").read_text())

    @property
    def arms(self) -> list[str]:
        """The arms, in study.yaml's order."""
        return list(self.config["arms"])

    def arm(self, name: str) -> dict:
        """study.yaml's entry of arm ``name``: recipe, protocol, max_steps, options."""
        return self.config["arms"][name]

    def recipe(self, arm: str) -> dict:
        """The method recipe of ``arm`` (recipes/methods/<recipe>.yaml) as a dict."""
        path = self.methods / f"{self.arm(arm)['recipe']}.yaml"
        return yaml.safe_load(path.read_text())

    def own(self, arm: str) -> str:
        """The protocol ``arm`` trains in (``cold start``: none of its own)."""
        return self.arm(arm)["protocol"]

    @property
    def rounds(self) -> int:
        return int(self.config["rounds"])

    @property
    def budget(self) -> int:
        return int(self.config["budget"])

    @property
    def steps(self) -> int:
        """The sample-matched step: every arm's model at the same round-1 samples."""
        return int(self.config["steps"])

    @property
    def save_steps(self) -> int:
        return int(self.config["save_steps"])

    def max_steps(self, arm: str) -> int:
        """Steps ``arm`` trains (beyond :attr:`steps` for the wall-clock match)."""
        return int(self.arm(arm)["max_steps"])

    def run(self, arm: str, seed: int) -> Path:
        """The training run of ``arm`` with ``seed``: ``out/<arm>-s<seed>``."""
        return self.out / f"{arm}-s{seed}"

    def trained(self, arm: str, seed: int) -> bool:
        """The run logged every step and, where its checkpoints are still on disk, saved its
        final adapter (as the second study's :meth:`~studies.study2_layout.Study.trained`)."""
        run = self.run(arm, seed)
        if logged_steps(run) < self.max_steps(arm):
            return False
        return (run / ADAPTER_WEIGHTS).exists() or not any(run.glob(CHECKPOINT_GLOB))

    def published(self, model: str) -> Path:
        """The bf16 adapter of ``model`` (``<arm>-s<seed>@<step>``) that is evaluated."""
        return self.out / "published" / model

    def eval_dir(self, model: str, protocol: str) -> Path:
        """``model`` on the held-out items in ``protocol`` at n units."""
        return self.out / "eval" / f"{model}-{protocol}"

    def watch_dir(self, protocol: str) -> Path:
        """The cold start on the training-time held-out check's own items in ``protocol``."""
        return self.out / "watch" / f"sft-{protocol}"

    def scaling_dir(self, model: str, protocol: str, units: int) -> Path:
        """``model`` on the longer scaling items in ``protocol`` at ``units`` units."""
        return self.out / "scaling" / f"{model}-{protocol}-{units}"

    def model_argv(self) -> list[str]:
        """``--model M`` for every command when study.yaml names a model (else the default)."""
        return ["--model", str(self.config["model"])] if self.config.get("model") else []

    def task_config(self, terms: tuple[int, int] | None = None) -> dict:
        """The study's task options (``terms``: other min and max terms)."""
        config = dict(self.config["task_config"])
        if terms is not None:
            config.update(min_terms=terms[0], max_terms=terms[1])
        return config

    def data_argv(self, split: str) -> list[str]:
        """``motif eval`` data options of ``heldout`` (the task's chains), ``watch`` (the
        training-time check's items) or ``scaling`` (the longer chains of ``scaling.terms``)."""
        spec = self.config[split]
        terms = tuple(spec["terms"]) if "terms" in spec else None
        options = json.dumps(self.task_config(terms))
        data = ["--benchmark", f"reasoning_gym:{self.config['task']}", "--task-config", options]
        return [*data, "--data-seed", str(spec["seed"]), "--limit", str(spec["size"])]


# --------------------------------------------------------------------------- jobs


def train_job(study: Study, arm: str, seed: int) -> Job:
    """``motif train`` of ``arm`` with ``seed`` from the mixed cold start; done when every
    step is logged (metrics.jsonl is kept across sittings; checkpoints are not)."""
    target = study.run(arm, seed)
    argv = motif_argv("train", "--config", str(study.methods / f"{study.arm(arm)['recipe']}.yaml"))
    argv += ["--seed", str(seed), "--output-dir", str(target)]
    argv += ["--init-adapter", str(study.out / "sft"), "--max-steps", str(study.max_steps(arm))]
    argv += ["--save-steps", str(study.save_steps)]
    argv += ["--heldout-every", str(study.config["heldout_every"])]
    for key, value in (study.arm(arm).get("options") or {}).items():
        argv += [f"--{key.replace('_', '-')}", str(value)]
    argv += study.model_argv()
    resume = latest_checkpoint(target) is not None  # a checkpoint cut off while saved: not one
    argv.append("--resume" if resume else "--overwrite")
    return Job(f"{arm}-s{seed}", argv, target / "metrics.jsonl", study.max_steps(arm))


def eval_job(
    study: Study, adapter: Path | None, protocol: str, units: int, split: str, target: Path
) -> Job:
    """``motif eval`` of one model (None: the base model) in ``protocol`` at ``units``, greedy,
    on ``split``; done when summary.json exists. Decoding in the model's own dtype (fp32), as
    the second study (a bf16 copy on an AMX CPU would score differently elsewhere)."""
    argv = motif_argv("eval", *study.data_argv(split))
    argv += [*protocol_argv(protocol, units, study.budget), "--decode-dtype", "model"]
    argv += ["--batch-size", "50", "--max-batch-size", "64", "--output-dir", str(target)]
    argv += study.model_argv() + (["--adapter", str(adapter)] if adapter else [])
    return Job(f"eval {target.name}", argv, target / SUMMARY_FILE)


# --------------------------------------------------------------------------- models


def wall_step(study: Study, arm: str, seed: int) -> int:
    """``arm``'s last checkpoint whose training time fits in the reference arm's (study.yaml's
    ``wall_reference``) whole time: the model of the same wall-clock."""
    reference = study.run(study.config["wall_reference"], seed)
    return wall_matched_step(study.run(arm, seed), reference, study.save_steps)


def wall_capped(study: Study, arm: str, seed: int) -> bool:
    """All of ``arm``'s steps took less than the reference's time: more would have fit."""
    reference = study.config["wall_reference"]
    return training_seconds(study.run(arm, seed)) < training_seconds(study.run(reference, seed))


def wall_pending(study: Study, seeds: list[int]) -> list[str]:
    """The runs (``<arm>-s<seed>``) whose wall-clock match cannot be chosen yet: it or the
    reference run has not finished."""
    reference = study.config["wall_reference"]
    return [
        f"{arm}-s{seed}"
        for seed in seeds
        for arm in study.arms
        if not (study.trained(arm, seed) and study.trained(reference, seed))
    ]


Model = tuple[str, Path | None, tuple[str, ...]]
"""(name, adapter, protocols) of a model to evaluate on the held-out items."""


def models(study: Study, seeds: list[int], plan: bool = False) -> list[Model]:
    """Every model of the main comparison whose run has finished (``plan``: as if all had):
    the cold start in every protocol; each arm at the sample-matched step in every protocol;
    each arm at the reference's wall-clock in its own protocol (once both runs finished).
    Trained models are scored from their bf16 copies (:meth:`Study.published`)."""
    found: list[Model] = [("sft", study.out / "sft", PROTOCOLS)]
    reference = study.config["wall_reference"]
    for seed in seeds:
        for arm in study.arms:
            if not (plan or study.trained(arm, seed)):
                continue
            name = f"{arm}-s{seed}@{study.steps}"
            found.append((name, study.published(name), PROTOCOLS))
            if study.trained(arm, seed) and study.trained(reference, seed):
                name = f"{arm}-s{seed}@{wall_step(study, arm, seed)}"
                found.append((name, study.published(name), (study.own(arm),)))
    names = [name for name, _, _ in found]
    return [m for i, m in enumerate(found) if m[0] not in names[:i]]


def scaling_models(study: Study, seeds: list[int], plan: bool = False) -> list[Model]:
    """The models of the scaling curve, each with the one protocol it is given more units
    in (:func:`scaled`): every arm's model at the sample-matched step, and the cold start in
    each arm's protocol."""
    own = sorted({scaled(study.own(a)) for a in study.arms}, key=PROTOCOLS.index)
    found: list[Model] = [("sft", study.out / "sft", tuple(own))]
    for seed in seeds:
        for arm in study.arms:
            if plan or study.trained(arm, seed):
                name = f"{arm}-s{seed}@{study.steps}"
                found.append((name, study.published(name), (scaled(study.own(arm)),)))
    return found


def model_parts(model: str) -> tuple[str, int, int]:
    """``(arm, seed, step)`` of a trained model's name, ``<arm>-s<seed>@<step>``."""
    run, step = model.rsplit("@", 1)
    arm, seed = run.rsplit("-s", 1)
    return arm, int(seed), int(step)


def checkpoint(study: Study, model: str) -> Path:
    """The training checkpoint of ``model`` (``<arm>-s<seed>@<step>``)."""
    arm, seed, step = model_parts(model)
    return study.run(arm, seed) / checkpoint_name(step)


def published_copies(study: Study, seeds: list[int]) -> list[Path]:
    """Write the missing bf16 copies of the models to evaluate from their checkpoints (run as
    soon as runs finish: checkpoints do not outlive a sitting); the copies written. A
    checkpoint that is gone is skipped with a note."""
    wanted = [
        (name, adapter, checkpoint(study, name))
        for name, adapter, _ in models(study, seeds)
        if name != "sft" and adapter is not None
    ]
    return bf16_copies(wanted, "study3")
