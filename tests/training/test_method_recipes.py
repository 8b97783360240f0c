"""recipes/methods: the equal-budget training comparison (issue 33, item 4) as one recipe family.

Every recipe passes its command's dry run, and the family shares what makes the comparison
fair: the questions and their order, the format rewards, LoRA, optimisation, the held-out check,
the cold start where the format allows it, and the largest context, computed from each recipe's
own options by the package (``motif.carryover``), so an edit that breaks the equal budget fails.
"""

from __future__ import annotations

import pytest
import yaml

from conftest import REPO
from motif.cli.main import main
from motif.cli.train import parse_config

METHODS = REPO / "recipes" / "methods"
TRAIN = ["motif-first", "motif-all", "trajectory", "delethink", "inftythink", "grpo-long"]
SFT = "sft-model-ended"
SHARED = [
    # the questions and their order
    "model",
    "dataset",
    "task_config",
    "dataset_size",
    "dataset_seed",
    "seed",
    # the rewards every arm shares
    "format_rewards",
    "scoring",
    "accuracy_weight",
    # LoRA
    "lora_r",
    "lora_alpha",
    "lora_dropout",
    "lora_target_modules",
    # optimisation and sampling of the trained replies
    "learning_rate",
    "adam_beta1",
    "adam_beta2",
    "weight_decay",
    "warmup_ratio",
    "lr_scheduler_type",
    "max_grad_norm",
    "beta",
    "prompts_per_device",
    "num_generations",
    "temperature",
    "bf16",
    # the short run and its held-out check
    "max_steps",
    "save_steps",
    "heldout_every",
    "heldout_size",
]
STUDY2_COLD_START = "docs/results/adapters/sft"
LARGEST_CONTEXT = 192
"""2B of the second study's summary rounds (B = 96), the family's largest context."""


def _recipe(name: str) -> dict:
    return yaml.safe_load((METHODS / f"{name}.yaml").read_text())


def _header(name: str) -> str:
    """The recipe's leading comment block."""
    lines = (METHODS / f"{name}.yaml").read_text().splitlines()
    return "\n".join(line for line in lines[: next(i for i, x in enumerate(lines) if x[:1] != "#")])


def _budgets(name: str) -> tuple[int, int]:
    """(largest context, total budget) of a train recipe, in model-written tokens, from its
    resolved options through the package: the strategy's largest per-round budget and
    ``cell_largest_context`` (motif.carryover.GridCell.largest_context's rule), and the sum of
    the strategy's per-round budgets."""
    config = parse_config(["--config", str(METHODS / f"{name}.yaml")])
    motif, first = config.motif, config.optim.max_completion_length
    later = motif.continuation_max_new_tokens
    carry = motif.strategy()
    budget, _ = carry.largest_budget(first, later)
    largest = motif.carry_class().cell_largest_context(motif.rounds, budget)
    total = sum(carry.max_new_tokens(i, first, later) for i in range(1, motif.rounds + 1))
    return largest, total


def test_the_family_is_every_recipe_of_the_folder():
    assert sorted(p.stem for p in METHODS.glob("*.yaml")) == sorted([*TRAIN, SFT])


@pytest.mark.parametrize("name", [*TRAIN, SFT])
def test_every_recipe_dry_runs(name, tmp_path, monkeypatch, capsys):
    """Exit 0 and one plan, with the cold start swapped for none where it is not built yet."""
    monkeypatch.chdir(REPO)  # the recipes name the published cold start relative to the root
    command = "sft" if name == SFT else "train"
    flags = ["--output-dir", str(tmp_path / "out")]
    adapter = _recipe(name).get("init_adapter")
    if adapter and not (REPO / adapter / "adapter_config.json").is_file():  # not built (yet)
        flags += ["--init-adapter", "none"]
    code = main([command, "--config", str(METHODS / f"{name}.yaml"), "--dry-run", *flags])
    out, err = capsys.readouterr()
    assert code == 0, err
    done = "# plan" if command == "sft" else "dry run: configuration valid; nothing loaded"
    assert out.count(done) == 1
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("key", SHARED)
def test_the_arms_share_the_questions_rewards_lora_and_optimisation(key):
    values = {name: _recipe(name).get(key) for name in TRAIN}
    assert values["motif-first"] is not None or key == "model"
    assert len({yaml.safe_dump(v) for v in values.values()}) == 1, values


def test_every_arm_has_the_same_largest_context_and_says_its_budgets():
    for name in TRAIN:
        largest, total = _budgets(name)
        assert largest == LARGEST_CONTEXT, name
        header = _header(name)
        assert "Largest context" in header and str(largest) in header, name
        assert str(total) in header, (name, total)


def test_the_methods_are_the_ones_the_issue_names():
    parsed = {name: parse_config(["--config", str(METHODS / f"{name}.yaml")]) for name in TRAIN}
    shape = {
        name: (c.run.method, c.motif.credit, c.motif.carry_over, c.motif.round_end)
        for name, c in parsed.items()
    }
    assert shape == {
        "motif-first": ("motif", "first", "summary", "budget"),
        "motif-all": ("motif", "all", "summary", "budget"),
        "trajectory": ("motif", "trajectory", "summary", "budget"),
        "delethink": ("motif", "trajectory", "tail", "budget"),
        "inftythink": ("motif", "trajectory", "summary", "model"),
        "grpo-long": ("grpo", "first", "none", "budget"),
    }
    assert parsed["delethink"].motif.trajectory_loss_norm == "trace"
    assert parsed["inftythink"].motif.trajectory_loss_norm == "token"
    assert parsed["inftythink"].motif.efficiency_reward
    assert not any(parsed[n].motif.efficiency_reward for n in TRAIN if n != "inftythink")
    assert all(_recipe(n)["output_dir"] == f"runs/methods/{n}" for n in [*TRAIN, SFT])


def test_the_trajectory_arms_sample_every_trained_round_as_round_1():
    """Under --credit trajectory rounds 2.. are trained rows: sampled at round 1's settings."""
    for name in TRAIN:
        config = parse_config(["--config", str(METHODS / f"{name}.yaml")])
        if config.motif.credit == "trajectory":
            later = (config.motif.continuation_temperature, config.motif.continuation_top_p)
            assert later == (config.optim.temperature, config.optim.top_p), name


def test_the_arms_share_the_cold_start_their_format_allows():
    """The study-2 cold start (summary rounds plus tail chunks, whose first is one pass) for
    every arm but the model-ended one, which starts from its own recipe's output."""
    adapters = {name: _recipe(name)["init_adapter"] for name in TRAIN}
    assert adapters.pop("inftythink") == _recipe(SFT)["output_dir"]
    assert set(adapters.values()) == {STUDY2_COLD_START}


def test_the_model_ended_cold_start_is_the_study2_one_in_its_own_rounds():
    ours, study2 = _recipe(SFT), yaml.safe_load((REPO / "recipes/study2/sft.yaml").read_text())
    assert (ours.pop("round_end"), ours.pop("max_rounds")) == ("model", study2.pop("rounds"))
    assert ours.pop("output_dir") == "runs/methods/sft-model-ended"
    study2.pop("output_dir")
    assert ours == study2
