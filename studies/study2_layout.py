"""The second study's layout (studies.study2; docs/results.md, "Second study"): its recipes,
run and eval directories, protocols, the choice file, the evaluations it runs, and where a
published adapter goes.

Read by the stages (studies.study2), the resume state (studies.study2_state) and the tables
(studies.study2_summary). Dependencies go one way: study2 -> study2_summary, study2_state ->
study2_layout -> studies.jobs, studies.wallclock (shared with the replication) -> motif (run
folders read by motif.runs); this module imports no other module of the second study.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import yaml

from motif.runs.layout import (
    ADAPTER_WEIGHTS,
    CHECKPOINT_GLOB,
    SUMMARY_FILE,
    checkpoint_name,
)
from motif.runs.training import logged_steps, training_seconds
from studies.jobs import Job, motif_argv
from studies.keeping import bf16_copies
from studies.publishing import adapter_folder  # noqa: F401 (public here: study2_state, tests)
from studies.wallclock import wall_matched_step

ARMS = ("grpo-B", "grpo-nB", "motif-first", "motif-all")
MOTIF_ARMS = ("motif-first", "motif-all")
PROTOCOLS = ("rounds", "one", "long")
"""n rounds of B new tokens; one round of B; one round of n x B (one pass, the unbounded one)."""
OWN = {"grpo-B": "one", "grpo-nB": "long", "motif-first": "rounds", "motif-all": "rounds"}
"""Each arm's own protocol: the one it trains in."""


EVAL_KERNEL = "onednn_packed"
"""The fp32 linear kernel every evaluation runs (``MOTIF_FP32_KERNEL``, docs/decode.md): the
one seed 1's evaluations measured and used; pinned since, as on a CPU where the two kernels
measure close, each process could pick either, and they round differently."""


Terms = int | list[int]
"""A candidate's chain length: a number of terms, or ``[low, high]`` (each item draws one)."""


def terms_range(terms: Terms) -> tuple[int, int]:
    """(min_terms, max_terms) of a candidate's ``terms``."""
    if isinstance(terms, int):
        return terms, terms
    low, high = terms
    return int(low), int(high)


def terms_label(terms: Terms) -> str:
    """``8`` or ``9-10``: how directories and tables name a chain length."""
    low, high = terms_range(terms)
    return str(low) if low == high else f"{low}-{high}"


@dataclass(frozen=True)
class Study:
    """The study's recipes (``recipes``: study.yaml and one recipe per run) and outputs (``out``)."""

    out: Path
    recipes: Path = Path("recipes/study2")

    @cached_property
    def config(self) -> dict:
        """recipes/study2/study.yaml: model, rounds n, task, candidates, rule, splits."""
        return yaml.safe_load((self.recipes / "study.yaml").read_text())

    def recipe(self, name: str) -> dict:
        """The recipe ``name`` (``sft`` or an arm) as a dict."""
        return yaml.safe_load((self.recipes / f"{name}.yaml").read_text())

    @property
    def rounds(self) -> int:
        """n: MOTIF's rounds (the unbounded reference gets n x B in one round)."""
        return int(self.config["rounds"])

    @property
    def steps(self) -> int:
        """The sample-matched step: the MOTIF arms' last (every arm has a checkpoint there)."""
        return int(self.recipe("motif-first")["max_steps"])

    @property
    def grpo_steps(self) -> int:
        """GRPO-B's last step, its final model (the paper trains its GRPO baseline twice
        MOTIF's steps; here as long as the wall-clock match may need)."""
        return int(self.recipe("grpo-B")["max_steps"])

    @property
    def choice_path(self) -> Path:
        """Where the choose stage writes the chosen task length and budget."""
        return self.out / "choice.json"

    def run(self, arm: str, seed: int) -> Path:
        """The training run of ``arm`` with ``seed``: ``out/<arm>-s<seed>``."""
        return self.out / f"{arm}-s{seed}"

    def trained(self, arm: str, seed: int) -> bool:
        """The run logged every step of its recipe (its metrics.jsonl, kept across sittings)
        and, where its checkpoints are still on disk, saved its final adapter (the last
        step is logged before the last checkpoint is written)."""
        run, steps = self.run(arm, seed), int(self.recipe(arm)["max_steps"])
        if logged_steps(run) < steps:
            return False
        saved = (run / ADAPTER_WEIGHTS).exists()
        return saved or not any(run.glob(CHECKPOINT_GLOB))

    def published(self, model: str) -> Path:
        """The bf16 adapter of ``model`` (``<arm>-s<seed>@<step>``) that is evaluated and
        published: ``out/published/<model>`` (see :func:`published_copies`; its published
        copy: :func:`adapter_folder`)."""
        return self.out / "published" / model

    def eval_dir(self, model: str, protocol: str) -> Path:
        """The held-out evaluation of ``model`` (``sft``, ``<arm>-s<seed>@<step>``) in
        ``protocol``: ``out/eval/<model>-<protocol>``."""
        return self.out / "eval" / f"{model}-{protocol}"

    def model_argv(self) -> list[str]:
        """``--model M`` for every command when study.yaml names a model (else the default)."""
        return ["--model", str(self.config["model"])] if self.config.get("model") else []

    def task_config(self, terms: Terms, size: int | None = None) -> dict:
        """The study's task options with ``terms`` terms (and reasoning-gym's ``size``)."""
        low, high = terms_range(terms)
        config = dict(self.config["task_config"], min_terms=low, max_terms=high)
        return config if size is None else dict(config, size=size)

    def data_argv(self, terms: Terms, split: str) -> list[str]:
        """``motif eval`` data options of a split of study.yaml (``dev`` or ``heldout``)."""
        seed, size = self.config[split]["seed"], self.config[split]["size"]
        options = json.dumps(self.task_config(terms, size))
        source = f"reasoning_gym:{self.config['task']}"
        data = ["--benchmark", source, "--task-config", options]
        return [*data, "--data-seed", str(seed), "--limit", str(size)]


def protocol_argv(protocol: str, rounds: int, budget: int) -> list[str]:
    """``motif eval`` options of a protocol: n rounds of B, one round of B, one of n x B."""
    if protocol == "rounds":
        per_round = ["--max-new-tokens", str(budget), "--later-max-new-tokens", str(budget)]
        return ["--rounds", str(rounds), *per_round]
    tokens = budget if protocol == "one" else rounds * budget
    return ["--carry-over", "none", "--max-new-tokens", str(tokens)]


def protocol_label(protocol: str, rounds: int, budget: int) -> str:
    """How a table heads a protocol: ``3 rounds x 96``, ``1 round x 96``, ``1 round x 288``."""
    return {"rounds": f"{rounds} rounds x {budget}", "one": f"1 round x {budget}"}.get(
        protocol, f"1 round x {rounds * budget}"
    )


def eval_job(
    study: Study, adapter: Path | None, protocol: str, data: list[str], budget: int, target: Path
) -> Job:
    """``motif eval`` of one model in one protocol, greedy; done when summary.json exists.

    Decoding is pinned to the model's own dtype (fp32): ``auto`` would decode with a bf16
    copy on a CPU with AMX (seen on this study's machines), so the same model would score
    differently from one machine to the next."""
    argv = motif_argv("eval", *data, *protocol_argv(protocol, study.rounds, budget))
    argv += ["--decode-dtype", "model"]
    argv += ["--batch-size", "50", "--max-batch-size", "64", "--output-dir", str(target)]
    argv += study.model_argv() + (["--adapter", str(adapter)] if adapter else [])
    return Job(f"eval {target.name}", argv, target / SUMMARY_FILE)


Model = tuple[str, Path, tuple[str, ...]]


def models(study: Study, seeds: list[int], plan: bool = False) -> list[Model]:
    """(name, adapter, protocols) of every model to evaluate whose training has finished
    (``plan``: as if every run had finished; the wall-clock matches still need the runs).
    The main table's models (two protocols or more: every arm at the sample-matched step,
    GRPO-B's final model and its wall-clock matches) are evaluated from their bf16 copies
    (:meth:`Study.published`), MOTIF's curve from the checkpoints. A model is listed once."""
    steps, every = study.steps, int(study.config["curve_every"])
    found: list[Model] = [("sft", study.out / "sft", PROTOCOLS)]
    for seed in seeds:
        done = {a: study.trained(a, seed) for a in ARMS}
        for arm in ARMS:
            if done[arm] or plan:
                name = f"{arm}-s{seed}@{steps}"
                found.append((name, study.published(name), PROTOCOLS))
        if done["grpo-B"] or plan:
            name = f"grpo-B-s{seed}@{study.grpo_steps}"
            found.append((name, study.published(name), ("rounds", "one")))
        for arm in MOTIF_ARMS:
            if done[arm] or plan:
                run = study.run(arm, seed)
                found += [
                    (f"{arm}-s{seed}@{s}", run / checkpoint_name(s), ("rounds",))
                    for s in range(every, steps, every)
                ]
            if done[arm] and done["grpo-B"]:
                name = f"grpo-B-s{seed}@{wall_step(study, arm, seed)}"
                found.append((name, study.published(name), ("rounds", "one")))
    names = [name for name, _, _ in found]
    return [m for i, m in enumerate(found) if m[0] not in names[:i]]


def trained_seeds(study: Study) -> list[int]:
    """The seeds of which at least one arm's run is trained (under ``out`` or restored)."""
    found = {
        int(run.name.rsplit("-s", 1)[1])
        for arm in ARMS
        for run in study.out.glob(f"{arm}-s*")
        if run.name.rsplit("-s", 1)[1].isdigit()
    }
    return sorted(s for s in found if any(study.trained(a, s) for a in ARMS))


def checkpoint(study: Study, model: str) -> Path:
    """The training checkpoint of ``model`` (``<arm>-s<seed>@<step>``)."""
    run, step = model.rsplit("@", 1)
    return study.out / run / checkpoint_name(int(step))


def published_copies(study: Study, seeds: list[int]) -> list[Path]:
    """Write the missing bf16 copies of the main table's models from their checkpoints; the
    copies written. Run as soon as a seed's runs are trained (the train stage) and again
    before the evaluations, so that the published files are the ones scored and outlive the
    checkpoints. A checkpoint that is gone is skipped with a note (its evaluations then
    cannot run)."""
    wanted = [
        (name, adapter, checkpoint(study, name))
        for name, adapter, _ in models(study, seeds)
        if adapter == study.published(name)
    ]
    return bf16_copies(wanted, "study2")


def wall_step(study: Study, arm: str, seed: int) -> int:
    """GRPO-B's last checkpoint whose training time fits in MOTIF ``arm``'s whole time
    (GRPO-B's last step when all of its steps fit: see :func:`wall_capped`)."""
    every = int(study.recipe("grpo-B")["save_steps"])
    return wall_matched_step(study.run("grpo-B", seed), study.run(arm, seed), every)


def wall_capped(study: Study, arm: str, seed: int) -> bool:
    """GRPO-B's whole run took less than MOTIF ``arm``'s time: the match stopped at GRPO-B's
    last step, and more GRPO-B steps would have fit (the recipe's max_steps is too low)."""
    return training_seconds(study.run("grpo-B", seed)) < training_seconds(study.run(arm, seed))


def load_choice(study: Study) -> dict:
    """The chosen ``{terms, budget}``; exits when the choose stage has not picked one."""
    if not study.choice_path.exists():
        sys.exit(
            f"study2: no {study.choice_path}: run --stage choose first (the task and "
            "budget are fixed on the development split before any RL run)"
        )
    chosen = json.loads(study.choice_path.read_text())["chosen"]
    if chosen is None:
        sys.exit(
            f"study2: no candidate met the rule ({study.choice_path}); add candidates to "
            f"{study.recipes / 'study.yaml'} and run --stage choose again"
        )
    return chosen


def adapter_model(folder: Path) -> str | None:
    """The trained model whose published adapter ``folder`` is (the inverse of
    :func:`adapter_folder`: ``<arm>-s<seed>-step<step>`` -> ``<arm>-s<seed>@<step>``); None
    for a folder that is not one (the cold start, a README)."""
    run, _, step = folder.name.rpartition("-step")
    arm, _, seed = run.rpartition("-s")
    return f"{run}@{step}" if arm in ARMS and seed.isdigit() and step.isdigit() else None
