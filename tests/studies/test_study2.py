"""studies.study2 (the second study): the choice rule, the plan, resumption, the tables."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import sys
from pathlib import Path

import pytest
import yaml

from eval_fakes import greedy, scripted_chain_eval, write_run
from studies import jobs, keeping, study2, study2_state
from studies import study2_layout as common
from studies import study2_publish as publishing
from studies import study2_summary as summary

ROOT = Path(__file__).parents[2]

SEEDS = [1, 2]
CHOSEN = {"terms": 9, "budget": 96}


@pytest.fixture(autouse=True)
def repo_root(monkeypatch):
    monkeypatch.chdir(ROOT)  # the script reads recipes/study2/ relative to the checkout


@pytest.fixture(autouse=True)
def kept(tmp_path, monkeypatch) -> Path:
    """The study's resume state: a temporary folder, never the checkout's; and a temporary
    docs folder, so that no published adapter of the checkout is restored."""
    monkeypatch.setattr(study2, "KEPT_DIR", str(tmp_path / "kept"))
    monkeypatch.setattr(study2, "DOCS_DIR", str(tmp_path / "docs"))
    return tmp_path / "kept"


@pytest.fixture
def study(tmp_path) -> common.Study:
    return common.Study(tmp_path / "runs")


def fake_summary(cut: float, accuracy: float, steps: float | None = 0.95) -> dict:
    """The fields of an eval summary.json the choice reads."""
    rounds = {"truncation_rate": [cut], "accuracy": [accuracy], "transitions": []}
    return {"metrics": {"pass@1": accuracy, "step_accuracy": steps, "rounds": rounds}}


def measure(cut: float, accuracy: float) -> dict:
    """A candidate's measurement from the three summaries (one round, n rounds, n x B)."""
    return study2.measurement(
        fake_summary(cut, 0.0), fake_summary(0.1, accuracy), fake_summary(0, 0.5)
    )


RULE = {"min_cut": 0.8, "accuracy": [0.2, 0.6]}


@pytest.mark.parametrize(
    ("candidates", "expected"),
    [
        ([(0.9, 0.3), (0.95, 0.25)], 0),  # the first that meets the rule, not the best
        ([(0.75, 0.34), (0.9, 0.3)], 1),  # make demo's 8 terms: 75% cut is not enough
        ([(0.8, 0.2), (0.9, 0.3)], 0),  # bounds included
        ([(0.9, 0.6)], 0),
        ([(0.9, 0.61), (0.9, 0.19), (1.0, 0.4)], 2),  # too easy, too hard, then right
        ([(0.5, 0.5), (0.9, 0.1)], None),  # none: no choice, no RL
        ([], None),
    ],
)
def test_the_rule_picks_the_first_candidate_that_meets_it(candidates, expected):
    assert study2.pick([measure(c, a) for c, a in candidates], RULE) == expected


def test_a_measurement_reads_the_cut_rate_of_one_round_and_the_accuracy_of_n_rounds():
    m = study2.measurement(
        fake_summary(0.87, 0.01), fake_summary(0.2, 0.3, 0.9), fake_summary(0.1, 0.5)
    )
    assert m == {
        "cut_rate": 0.87,
        "accuracy": 0.3,
        "one_accuracy": 0.01,
        "long_accuracy": 0.5,
        "step_accuracy": 0.9,
    }


def write_choose_summaries(study: common.Study, measured: list[tuple[float, float]]) -> None:
    """Eval summaries of the cold start on the development split, one per candidate."""
    for c, (cut, acc) in zip(study.config["candidates"], measured, strict=True):
        docs = (fake_summary(0.1, acc), fake_summary(cut, 0.0), fake_summary(0, 0.5))
        for protocol, doc in zip(common.PROTOCOLS, docs, strict=True):
            path = study2.choose_dir(study, c, protocol) / "summary.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(doc))


@pytest.mark.parametrize("terms, label, config", [(8, "8", (8, 8)), ([9, 10], "9-10", (9, 10))])
def test_a_candidate_is_one_length_or_a_range(study, terms, label, config):
    assert common.terms_label(terms) == label
    task = study.task_config(terms)
    assert (task["min_terms"], task["max_terms"]) == config
    assert (
        study2.choose_dir(study, {"terms": terms, "budget": 96}, "one").name
        == f"{label}terms-96-one"
    )


def test_the_choice_is_written_with_every_measurement(study):
    write_choose_summaries(study, [(0.75, 0.34), (0.9, 0.3), (1.0, 0.1), (1.0, 0.4)])
    doc = study2.write_choice(study)
    assert doc["chosen"] == {"terms": 9, "budget": 96} == common.load_choice(study)
    assert [c["meets_rule"] for c in doc["candidates"]] == [False, True, False, True]
    assert doc["dev"] == study.config["dev"] and doc["rule"] == study.config["rule"]
    assert json.loads(study.choice_path.read_text()) == doc
    table = summary.choice_table(doc)
    assert "| 9 | 96 | 90.0 | 0.0 | 30.0 | 95.0 | 50.0 | **yes (chosen)** |" in table
    assert "| 9-10 | 96 | 100.0 |" in table


def test_no_candidate_meeting_the_rule_blocks_the_rl_stages(study):
    write_choose_summaries(study, [(0.5, 0.3), (0.9, 0.1), (0.9, 0.7), (1.0, 0.61)])
    assert study2.write_choice(study)["chosen"] is None
    with pytest.raises(SystemExit, match="no candidate met the rule"):
        study2.main(["--stage", "train", "--out", str(study.out)])


def test_an_unmeasured_candidate_is_not_chosen_around(study):
    write_choose_summaries(study, [(0.9, 0.3)] * 4)
    (study2.choose_dir(study, study.config["candidates"][2], "long") / "summary.json").unlink()
    with pytest.raises(SystemExit, match="is not measured yet"):
        study2.write_choice(study)


@pytest.mark.parametrize("stage", ["train", "eval"])
def test_the_rl_stages_refuse_without_the_choice(study, stage, capsys):
    with pytest.raises(SystemExit, match="run --stage choose first"):
        study2.main(["--stage", stage, "--out", str(study.out)])
    study2.main(["--stage", stage, "--out", str(study.out), "--plan"])
    assert f"[wait] needs {study.choice_path} (stage choose)" in capsys.readouterr().out


def test_choose_needs_the_cold_start(study):
    with pytest.raises(SystemExit, match="run --stage sft first"):
        study2.main(["--stage", "choose", "--out", str(study.out)])


def choose(study: common.Study, chosen: dict | None = CHOSEN) -> None:
    """A choice file as the choose stage writes it (no candidates listed)."""
    study.out.mkdir(parents=True, exist_ok=True)
    doc = {"rule": RULE, "rounds": 3, "dev": {"seed": 2, "size": 100}, "candidates": []}
    study.choice_path.write_text(json.dumps({**doc, "chosen": chosen}))


def plan(study: common.Study, stage: str, capsys, seeds: list[int] = SEEDS) -> list[str]:
    args = ["--stage", stage, "--out", str(study.out), "--plan", "--seeds", *map(str, seeds)]
    study2.main(args)
    return capsys.readouterr().out.splitlines()


def flag(line: str, name: str) -> str:
    words = line.split()
    return words[words.index(name) + 1]


def test_the_train_plan_has_every_arm_and_seed_with_its_budget(study, capsys):
    choose(study)
    lines = plan(study, "train", capsys)[1:]
    assert len(lines) == 8 and not (study.out / "grpo-B-s1").exists()  # nothing run
    by_run = {flag(line, "--output-dir").rsplit("/", 1)[1]: line for line in lines}
    assert set(by_run) == {f"{a}-s{s}" for a in common.ARMS for s in SEEDS}
    budgets = {"grpo-B": "96", "grpo-nB": "288", "motif-first": "96", "motif-all": "96"}
    for run, line in by_run.items():
        arm, seed = run.rsplit("-s", 1)
        assert line.startswith("[todo] motif train --config recipes/study2/")
        assert flag(line, "--config") == f"recipes/study2/{arm}.yaml"
        assert flag(line, "--seed") == seed and line.endswith("--overwrite")
        assert flag(line, "--max-completion-length") == budgets[arm]
        assert flag(line, "--init-adapter") == str(study.out / "sft")
        assert '"min_terms": 9, "max_terms": 9' in line
        motif = arm.startswith("motif")
        assert ("--continuation-max-new-tokens 96" in line) is motif
        assert ("--rounds 3" in line) is motif


def test_the_eval_plan_has_every_model_in_every_protocol(study, capsys):
    choose(study)
    lines = [line for line in plan(study, "eval", capsys, [1]) if "motif eval" in line]
    dirs = [flag(line, "--output-dir").rsplit("/", 1)[1] for line in lines]
    comparisons = ["sft", *(f"{a}-s1@40" for a in common.ARMS)]
    curve = [f"{a}-s1@{s}" for a in common.MOTIF_ARMS for s in (10, 20, 30)]
    expected = [f"{m}-{p}" for m in comparisons for p in common.PROTOCOLS]
    final = ["grpo-B-s1@80-rounds", "grpo-B-s1@80-one"]  # GRPO-B's final model, 2 protocols
    # checkpoints first (they do not outlive the sitting), then the kept bf16 copies
    assert dirs == [f"{m}-rounds" for m in curve] + expected + final
    assert flag(lines[dirs.index(final[0])], "--adapter") == str(
        study.out / "published" / "grpo-B-s1@80"
    )
    for line in lines:
        assert flag(line, "--data-seed") == "3000000" and flag(line, "--limit") == "500"
        assert flag(line, "--decode-dtype") == "model"  # fp32 on every machine, AMX or not
        assert '"size": 500' in line and '"min_terms": 9' in line
    one = lines[dirs.index("grpo-B-s1@40-one")]
    assert "--carry-over none --max-new-tokens 96 " in one
    assert flag(one, "--adapter") == str(study.out / "published" / "grpo-B-s1@40")  # bf16
    assert "--carry-over none --max-new-tokens 288 " in lines[dirs.index("sft-long")]
    rounds = lines[dirs.index("motif-all-s1@20-rounds")]
    assert "--rounds 3 --max-new-tokens 96 --later-max-new-tokens 96 " in rounds
    assert flag(rounds, "--adapter") == str(study.out / "motif-all-s1" / "checkpoint-20")


def test_the_first_stages_plan_the_cold_start_and_every_candidate(study, capsys):
    lines = plan(study, "choose", capsys)
    evals = [line for line in lines if "motif eval" in line]
    assert len(evals) == 3 * len(study.config["candidates"])
    assert all(flag(line, "--data-seed") == "2000000" for line in evals)
    assert all(flag(line, "--adapter") == str(study.out / "sft") for line in evals)
    assert lines[-1] == f"[todo] the rule -> {study.choice_path}"
    sft = plan(study, "sft", capsys)[1]
    assert (
        sft
        == f"[todo] motif sft --config recipes/study2/sft.yaml --output-dir {study.out / 'sft'} --overwrite"
    )


def finish(run: Path, steps: int, seconds: float = 1.0, checks: dict | None = None) -> None:
    """A training run that logged ``steps`` steps and saved its final adapter."""
    run.mkdir(parents=True, exist_ok=True)
    rows = [{"step": s, "step_seconds": seconds, "reward": 1.0} for s in range(1, steps + 1)]
    for step, values in (checks or {}).items():
        rows[step - 1].update(values)
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (run / "adapter_model.safetensors").write_bytes(b"weights")
    (run / "adapter_config.json").write_text("{}")
    for s in range(5, steps + 1, 5):
        (run / f"checkpoint-{s}").mkdir(exist_ok=True)
        (run / f"checkpoint-{s}" / "adapter_model.safetensors").write_bytes(b"weights")
        (run / f"checkpoint-{s}" / "adapter_config.json").write_text("{}")


def steps(study: common.Study, arm: str) -> int:
    return int(study.recipe(arm)["max_steps"])


def test_markers_make_every_stage_resumable(study, capsys, monkeypatch):
    choose(study)
    (study.out / "sft").mkdir()
    (study.out / "sft" / "sft_metrics.json").write_text("{}")
    assert plan(study, "sft", capsys)[1].startswith("[done] motif sft")
    monkeypatch.setattr(study2, "run_jobs", lambda *a, **k: pytest.fail("nothing to run"))
    study2.main(["--stage", "choose", "--out", str(study.out)])  # a choice is never redone
    assert "choice: {'terms': 9, 'budget': 96}" in capsys.readouterr().out
    run = study.run("motif-first", 1)
    (run / "checkpoint-10").mkdir(parents=True)
    (run / "checkpoint-10" / "trainer_state.json").write_text("{}")
    job = study2.train_job(study, CHOSEN, "motif-first", 1)
    assert job.argv[-1] == "--resume" and not job.is_done()
    finish(run, steps(study, "motif-first"))
    assert job.is_done()
    fake_published(study, "motif-first-s1@40")
    for name in ("adapter_model.safetensors", "adapter_config.json"):
        (study.out / "sft" / name).write_text(name)
    grpo = study2.train_job(study, CHOSEN, "grpo-B", 1)
    finish(study.run("grpo-B", 1), steps(study, "motif-first"))  # GRPO-B runs twice as long
    assert not grpo.is_done()
    evals = study2.eval_jobs(study, CHOSEN, [1])
    names = [j.name for j in evals]
    assert "eval motif-first-s1@40-rounds" in names and "eval grpo-B-s1@40-one" not in names
    (study.eval_dir("sft", "one")).mkdir(parents=True)
    (study.eval_dir("sft", "one") / "summary.json").write_text("{}")
    assert [j.is_done() for j in evals if j.name.startswith("eval sft")] == [False, True, False]


def test_the_plan_marks_a_lost_model_gone_and_waits_only_for_untrained_runs(study, capsys):
    choose(study)
    assert "[wait] grpo-B's checkpoint" in plan(study, "eval", capsys, [1])[-1]
    for arm in common.ARMS:
        finish(study.run(arm, 1), steps(study, arm))
    for name, _, _ in common.models(study, [1]):
        if name != "grpo-B-s1@80" and "@" in name and name.endswith("@40"):
            fake_published(study, name)
    shutil.rmtree(common.checkpoint(study, "grpo-B-s1@80"))  # gone with a machine
    (study.out / "heldout.json").write_text("{}")
    lines = plan(study, "eval", capsys, [1])
    assert lines[1].startswith("[done] held-out check")
    assert not any(line.startswith("[wait]") for line in lines)
    gone = [flag(line, "--output-dir") for line in lines if line.startswith("[gone]")]
    assert sorted(gone) == [str(study.eval_dir("grpo-B-s1@80", p)) for p in ("one", "rounds")]
    # a copy that was written before the checkpoint went can still be scored
    fake_published(study, "grpo-B-s1@80")
    assert not any(line.startswith("[gone]") for line in plan(study, "eval", capsys, [1]))


def test_finished_stages_are_kept_and_restored_on_a_new_machine(study, kept, capsys, monkeypatch):
    sft = study.out / "sft"
    sft.mkdir(parents=True)
    for name in ("adapter_model.safetensors", "adapter_config.json", "sft_metrics.json"):
        (sft / name).write_text(name)
    (sft / "checkpoint-5").mkdir()  # not needed later: not kept
    (sft / "checkpoint-5" / "optimizer.pt").write_text("state")
    monkeypatch.setattr(study2, "run_jobs", lambda *a, **k: None)
    study2.main(["--stage", "sft", "--out", str(study.out)])
    assert sorted(p.name for p in (kept / "sft").iterdir()) == [
        "adapter_config.json",
        "adapter_model.safetensors",
        "sft_metrics.json",
    ]
    assert "kept " in capsys.readouterr().out
    write_choose_summaries(study, [(0.9, 0.3)] * 4)
    study2.main(["--stage", "choose", "--out", str(study.out)])
    assert json.loads((kept / "choice.json").read_text())["chosen"] == {"terms": 8, "budget": 96}
    assert len(list(kept.glob("choose/*/summary.json"))) == 12
    shutil.rmtree(study.out)  # a new machine: runs/ is gone
    capsys.readouterr()
    lines = plan(study, "choose", capsys)
    assert lines[0].startswith("restored ") and "[done] the rule" in lines[-1]
    assert (sft / "adapter_model.safetensors").read_text() == "adapter_model.safetensors"


def fake_published(study: common.Study, name: str) -> Path:
    """A complete (fake) bf16 copy of ``name``, as the eval stage writes it."""
    folder = study.published(name)
    folder.mkdir(parents=True)
    (folder / "adapter_model.safetensors").write_bytes(b"bf16 weights")
    (folder / "adapter_config.json").write_text("{}")
    return folder


def test_a_trained_run_is_kept_without_its_checkpoints_and_stays_done(study, kept, monkeypatch):
    choose(study)
    run = study.run("motif-first", 1)
    finish(run, steps(study, "motif-first"))
    (run / "run_identity.json").write_text("{}")
    fake_published(study, "motif-first-s1@40")
    partial = study.published("grpo-B-s1@40").with_name("grpo-B-s1@40.partial")
    partial.mkdir()
    (partial / "adapter_config.json").write_text("cut off")
    cut = study.run("motif-all", 1)  # cut off at step 12: starts over on a new machine
    finish(cut, 12)
    monkeypatch.setattr(study2, "run_jobs", lambda *a, **k: None)
    study2.main(["--stage", "train", "--seeds", "1", "--out", str(study.out)])
    assert sorted(p.name for p in (kept / "motif-first-s1").iterdir()) == [
        "metrics.jsonl",
        "run_identity.json",
    ]
    assert not (kept / "motif-all-s1").exists()
    assert sorted(p.name for p in (kept / "published").iterdir()) == ["motif-first-s1@40"]
    shutil.rmtree(study.out)  # a new machine: the checkpoints are gone, the kept files return
    study2.main(["--stage", "choose", "--out", str(study.out)])
    assert study.trained("motif-first", 1) and not study.trained("grpo-B", 1)
    assert study2.train_job(study, CHOSEN, "motif-first", 1).is_done()  # never trained again
    again = study2.train_job(study, CHOSEN, "motif-all", 1)
    assert not again.is_done() and again.argv[-1] == "--overwrite"
    assert not study.run("motif-all", 1).exists()  # nothing restored to block --overwrite


def test_the_resume_state_defaults_outside_docs():
    assert study2_state.STATE_DIR == "studies/state/study2"
    assert not study2_state.STATE_DIR.startswith("docs")


def test_a_published_adapter_is_restored_from_docs_and_never_kept_twice(
    study, kept, tmp_path, monkeypatch, capsys
):
    """A published model's adapter comes back from docs/results/adapters on a new machine,
    and the resume state gets no second copy of it (each adapter is stored once)."""
    choose(study)
    finish(study.run("motif-first", 1), steps(study, "motif-first"))
    adapters = tmp_path / "docs" / "results" / "adapters"  # the kept fixture's docs folder
    published = common.adapter_folder(adapters, "motif-first-s1@40")
    assert published.name == "motif-first-s1-step40"
    published.mkdir(parents=True)
    (published / "adapter_model.safetensors").write_bytes(b"bf16 weights")
    (published / "adapter_config.json").write_text("{}")
    (adapters / "sft").mkdir()  # the cold start's folder: restored from the state alone
    (adapters / "sft" / "adapter_model.safetensors").write_bytes(b"fp32 weights")
    (adapters / "sft" / "adapter_config.json").write_text("{}")
    monkeypatch.setattr(study2, "run_jobs", lambda *a, **k: None)
    study2.main(["--stage", "train", "--seeds", "1", "--out", str(study.out)])
    copy = study.published("motif-first-s1@40")
    assert (copy / "adapter_model.safetensors").read_bytes() == b"bf16 weights"
    assert f"restored {copy / 'adapter_config.json'} from {adapters}" in capsys.readouterr().out
    assert not (study.out / "published" / "sft").exists() and not (study.out / "sft").exists()
    assert (kept / "motif-first-s1" / "metrics.jsonl").exists()  # the run's state is kept
    assert not (kept / "published").exists()  # its adapter is published: not stored twice
    (copy / "adapter_model.safetensors").write_bytes(b"retrained")  # differs: kept
    assert study2_state.keep(study, kept, adapters) == [
        kept / "published" / "motif-first-s1@40" / "adapter_model.safetensors"
    ]


@pytest.mark.parametrize(
    ("folder", "model"),
    [
        ("grpo-B-s1-step80", "grpo-B-s1@80"),
        ("motif-first-s3-step40", "motif-first-s3@40"),
        ("sft", None),
        ("README.md", None),
        ("other-s1-step40", None),
    ],
)
def test_adapter_model_inverts_adapter_folder(folder, model):
    assert common.adapter_model(Path("docs") / folder) == model
    if model is not None:
        assert common.adapter_folder(Path("docs"), model) == Path("docs") / folder


def test_a_run_is_trained_once_its_final_adapter_is_saved(study):
    run = study.run("motif-first", 1)
    finish(run, steps(study, "motif-first"))
    assert study.trained("motif-first", 1)
    (run / "adapter_model.safetensors").unlink()  # killed between the last log and the save
    assert not study.trained("motif-first", 1)
    for folder in run.glob("checkpoint-*"):
        shutil.rmtree(folder)  # a new machine: the kept metrics alone say it
    assert study.trained("motif-first", 1)


def write_adapter(folder: Path) -> dict:
    """A small fp32 LoRA-like safetensors adapter in ``folder``; its tensors."""
    import torch
    from safetensors.torch import save_file

    folder.mkdir(parents=True)
    tensors = {"a.lora_A.weight": torch.randn(4, 8), "step": torch.tensor([3])}
    save_file(tensors, folder / "adapter_model.safetensors", metadata={"format": "pt"})
    (folder / "adapter_config.json").write_text('{"r": 4}')
    return tensors


def test_the_bf16_copy_rounds_float_tensors_and_keeps_the_rest(tmp_path):
    import torch
    from safetensors import safe_open
    from safetensors.torch import load_file

    tensors = write_adapter(tmp_path / "checkpoint-40")
    target = keeping.bf16_copy(tmp_path / "checkpoint-40", tmp_path / "published" / "m@40")
    copy = load_file(target / "adapter_model.safetensors")
    assert copy["a.lora_A.weight"].dtype == torch.bfloat16 and copy["step"].dtype == torch.int64
    assert torch.equal(copy["a.lora_A.weight"], tensors["a.lora_A.weight"].to(torch.bfloat16))
    assert torch.equal(copy["step"], tensors["step"])
    with safe_open(target / "adapter_model.safetensors", framework="pt") as f:
        assert f.metadata() == {"format": "pt"}
    assert (target / "adapter_config.json").read_text() == '{"r": 4}'
    assert [p.name for p in target.parent.iterdir()] == ["m@40"]  # no partial folder left


def test_the_main_tables_models_are_scored_from_their_bf16_copies(study, capsys):
    choose(study)
    for arm in common.ARMS:  # MOTIF's steps take twice GRPO's: the wall-clock match is step 80
        finish(study.run(arm, 1), steps(study, arm), 2.0 if arm.startswith("motif") else 1.0)
    for name in ("grpo-B-s1@40", "grpo-nB-s1@40", "motif-first-s1@40", "motif-all-s1@40"):
        shutil.rmtree(common.checkpoint(study, name))
        write_adapter(common.checkpoint(study, name))
    shutil.rmtree(study.run("grpo-B", 1) / "checkpoint-80")  # the wall-clock match (step 80)
    written = common.published_copies(study, [1])
    assert sorted(p.name for p in written) == [
        "grpo-B-s1@40",
        "grpo-nB-s1@40",
        "motif-all-s1@40",
        "motif-first-s1@40",
    ]
    assert "checkpoint-80 is gone; grpo-B-s1@80 cannot be" in capsys.readouterr().out
    jobs = {j.name: j for j in study2.eval_jobs(study, CHOSEN, [1])}
    assert "eval grpo-B-s1@80-one" not in jobs and "eval grpo-B-s1@40-one" in jobs  # the others run
    assert "grpo-B-s1@80 is gone; grpo-B-s1@80-one cannot be evaluated" in capsys.readouterr().out
    write_adapter(study.run("grpo-B", 1) / "checkpoint-80")
    (study.published("motif-all-s1@40") / "adapter_config.json").unlink()  # a cut-off restore
    written = common.published_copies(study, [1])
    assert sorted(p.name for p in written) == ["grpo-B-s1@80", "motif-all-s1@40"]
    assert common.published_copies(study, [1]) == []  # written once
    jobs = {j.name: j for j in study2.eval_jobs(study, CHOSEN, [1])}
    assert flag(" ".join(jobs["eval grpo-B-s1@80-one"].argv), "--adapter") == str(
        study.published("grpo-B-s1@80")
    )
    for s in (10, 20, 30):  # MOTIF's curve, when its checkpoints went with an earlier machine
        shutil.rmtree(study.run("motif-all", 1) / f"checkpoint-{s}")
    names = [j.name for j in study2.eval_jobs(study, CHOSEN, [1])]
    assert "eval motif-all-s1@20-rounds" not in names and "eval motif-first-s1@20-rounds" in names


def test_the_prompts_of_every_arm_are_what_the_cold_start_demonstrated(study):
    """GRPO's one-pass prompt = the tail thought's first chunk = the eval's one pass; MOTIF's
    round 1 = the summary demonstrations' round 1; and the study's flags parse."""
    from motif.cli.common import parse
    from motif.cli.train import parse_config
    from motif.config import GenerationArgs, ModelArgs, ProtocolArgs
    from motif.eval.runner import EvalArgs
    from motif.protocol import Protocol
    from motif.training.trainer import build_dataset

    def prompt(arm: str) -> tuple[str, list[dict]]:
        config = parse_config(study2.train_job(study, CHOSEN, arm, 1).argv[4:])
        row = build_dataset(config)[0]
        return row["question"], row["prompt"]

    question, grpo = prompt("grpo-B")
    assert prompt("grpo-nB")[1] == grpo == Protocol(rounds=1).messages(question, 1)  # tail_rows
    data = study.data_argv(9, "heldout")
    for protocol, tokens in (("one", 96), ("long", 288)):
        argv = common.eval_job(study, None, protocol, data, 96, Path("x")).argv[4:]
        _, _, gen, proto = parse(
            "motif eval", (EvalArgs, ModelArgs, GenerationArgs, ProtocolArgs), argv
        )
        assert proto.protocol().messages(question, 1) == grpo and gen.max_new_tokens == tokens
    summary_prompt = Protocol(rounds=3).messages(question, 1)
    assert prompt("motif-first")[1] == prompt("motif-all")[1] == summary_prompt != grpo


def test_the_recipes_differ_only_where_the_arms_do(study):
    differ = {"method", "credit", "max_completion_length", "max_steps", "output_dir"}
    recipes = {arm: study.recipe(arm) for arm in common.ARMS}
    base = {k: v for k, v in recipes["motif-first"].items() if k not in differ}
    for recipe in recipes.values():
        assert {k: v for k, v in recipe.items() if k not in differ} == base
    assert recipes["grpo-B"]["max_steps"] >= 2 * study.steps  # room for the wall-clock match
    assert recipes["motif-all"]["credit"] == "all" and recipes["grpo-nB"]["method"] == "grpo"
    assert study.steps % study.config["curve_every"] == 0
    assert study.config["curve_every"] % base["save_steps"] == 0
    assert base["rounds"] == study.rounds and base["heldout_every"] > 0
    sft = study.recipe("sft")
    assert sft["rounds"] == study.rounds and sft["extra_carry_over"] == ["tail"]
    assert {c["budget"] for c in study.config["candidates"]} == {sft["tail_chunk"]}
    terms = [t for c in study.config["candidates"] for t in common.terms_range(c["terms"])]
    assert (
        sft["task_config"]["min_terms"]
        <= min(terms)
        <= max(terms)
        <= sft["task_config"]["max_terms"]
    )


def test_the_heldout_check_counts_no_seen_question(study):
    choose(study)
    doc = study2.check_heldout(study, CHOSEN)
    assert doc["overlap"] == {"training": 0, "development": 0, "demonstrations": 0}
    assert doc["seed"] == 3_000_000 and doc["distinct"] == 500
    assert json.loads((study.out / "heldout.json").read_text()) == doc


def write_evals(study: common.Study) -> None:
    """Held-out runs of one seed (four items each) through the store, as `motif eval` writes."""

    runs = {
        "sft": ("0000", "0000", "1100"),
        "grpo-B-s1@40": ("1100", "1000", "1100"),
        "grpo-nB-s1@40": ("1100", "0000", "1110"),
        "motif-first-s1@40": ("1100", "0000", "1000"),
        "motif-all-s1@40": ("1110", "0000", "1000"),
        "grpo-B-s1@80": ("1000", "1000", None),
    }
    for name, flags in runs.items():
        for protocol, f in zip(common.PROTOCOLS, flags, strict=True):
            if f is not None:
                write_run(study.eval_dir(name, protocol), greedy(f))
    for step, f in ((10, "1000"), (20, "1100"), (30, "1100")):
        write_run(study.eval_dir(f"motif-first-s1@{step}", "rounds"), greedy(f))
    path = study.eval_dir("sft", "rounds") / "summary.json"
    doc = json.loads(path.read_text())
    transitions = [
        {"fixed_rate": 0.1, "broken_rate": 0.05},
        {"fixed_rate": 0.0, "broken_rate": 0.2},
    ]
    rounds = {
        "accuracy": [0.0, 0.1, 0.25],
        "transitions": transitions,
        "state_right": [0.8, 0.6, None],
    }
    path.write_text(json.dumps({**doc, "metrics": {"rounds": rounds, "step_accuracy": 0.97}}))


def test_the_summary_reads_fake_eval_directories(study):
    choose(study)
    for arm in common.ARMS:
        finish(
            study.run(arm, 1),
            steps(study, arm),
            2.0 if arm.startswith("motif") else 1.0,
            {10: {"heldout/accuracy": 0.25, "heldout/skipped_steps": 0.5}},
        )
    write_evals(study)
    text = summary.write_summary(study, [1]).read_text()
    assert (
        "| MOTIF, credit to round 1 (`motif-first`), step 40 | 50.0 ± 25.0 | 0.0 ± n/a | 25.0 ± 21.7 |"
        in text
    )
    assert (
        "| GRPO, 1 round of B, at MOTIF (round 1)'s wall-clock (steps 80) | 25.0 ± 21.7 | 25.0 ± 21.7 | — |"
        in text
    )
    # MOTIF in 3 rounds (1100) against GRPO-B in one round (1000): +25 ± 21.7 points
    assert (
        "| motif-first − grpo-B | 1 | +25.0 ± 21.7 | +0.0 ± n/a | -25.0 ± 21.7 | -25.0 ± 21.7 |"
        in text
    )
    assert (
        "| motif-all − motif-first | 1 | +25.0 ± 21.7 | +25.0 ± 21.7 | +0.0 ± n/a | +0.0 ± n/a |"
        in text
    )
    assert "| motif-first − grpo-B | 1 | 80 | +25.0 ± 21.7 | +25.0 ± 21.7 |" in text
    assert "| GRPO, 1 round of B, final (step 80) | 25.0 ± 21.7 | 25.0 ± 21.7 | — |" in text
    # GRPO-B's final best at the same largest context is 25% (either protocol), trained on
    # 80 steps x 2 questions x 4 replies; the cold start (step 0) is at 0%, MOTIF first reaches
    # it at step 10 (80 samples)
    # GRPO-nB's final accuracy in its own protocol (one round of n x B, "1110") is 75%, after
    # 40 steps x 8 samples: motif-first never reaches it, motif-all at step 40
    assert "| step 0 (cold start) | step 10 |" in text
    assert "| grpo-B final (step 80, 640 samples) | samples to reach it (margin) |" in text
    assert "| grpo-nB final (step 40, 320 samples) | samples to reach it (margin) |" in text
    # the margin: the reaching checkpoint against the target, paired over the items
    row = (
        "| motif-first | 1 | 0.0 | 25.0 | 50.0 | 50.0 | 50.0 | 25.0 "
        "| 80 (12.5% of grpo-B's; +0.0 ± n/a) | 75.0 | not reached |"
    )
    assert row in text
    row = (
        "| motif-all | 1 | 0.0 | — | — | — | 75.0 | 25.0 | 320 (50.0% of grpo-B's; +50.0 ± 25.0) "
        "| 75.0 | 320 (100.0% of grpo-nB's; +0.0 ± n/a) |"
    )
    assert row in text
    # no step-skipping rate for a hand-written benchmark
    assert "| sft | 0.0, 10.0, 25.0 | 10.0 / 5.0, 0.0 / 20.0 | 80.0, 60.0 | 97.0 | — |" in text
    assert "| motif-first − grpo-B | mean" not in text  # one seed: no mean row
    assert "| motif-first-s1 | 40 | 1 | 2.0 | 1.00 | 0% | 10: 25.0 / 50.0 |" in text
    assert "| grpo-B-s1 | 80 | 1 | 1.0 | 1.00 | 0% | 10: 25.0 / 50.0 |" in text
    data = json.loads((study.out / "summary.json").read_text())
    assert data["heldout"]["cold start (`sft`)"]["one"] == {"sft": 0.0}


@pytest.mark.parametrize(
    ("reach", "expected"),
    [
        (80, "80 (12.5% of grpo-B's; +5.0 ± 2.0)"),
        (0, "0: the cold start is already above it (+5.0 ± 2.0)"),
    ],
)
def test_samples_to_reach_grpo_name_the_share_and_the_margin(reach, expected):
    assert summary.reach_text(reach, 640, "grpo-B", "+5.0 ± 2.0") == expected


def test_grpo_bs_final_target_waits_for_both_protocols(study):

    write_run(study.eval_dir("grpo-B-s1@80", "one"), greedy("1000"))
    assert summary._final_target(study, "grpo-B", 1) is None
    write_run(study.eval_dir("grpo-B-s1@80", "rounds"), greedy("1100"))
    best = (study.eval_dir("grpo-B-s1@80", "rounds"), 0.5)
    assert summary._final_target(study, "grpo-B", 1) == best
    write_run(study.eval_dir("grpo-nB-s1@40", "long"), greedy("1110"))
    assert summary._final_target(study, "grpo-nB", 1) == (
        study.eval_dir("grpo-nB-s1@40", "long"),
        0.75,
    )


def test_a_seed_mean_gives_the_error_over_seeds_and_the_spread():
    # seeds +10 and +30 points: sample sd 14.1, over sqrt(2) seeds 10.0 (not the items' 2.5)
    cell = summary.diff_cell([(0.1, 0.03), (0.3, 0.04)])
    assert cell == "+20.0 ± 10.0 (items ± 3.5; +10.0 to +30.0)"
    # a seed still missing is named, whatever the count that finished
    partial = summary.diff_cell([(0.1, 0.03), (0.3, 0.04), None])
    assert partial == "+20.0 ± 10.0 (items ± 3.5; +10.0 to +30.0) (2 of 3 seeds)"
    assert summary.diff_cell([(0.1, 0.03)]) == "+10.0 ± 3.0"
    assert summary.diff_cell([(0.1, 0.03), None]) == "+10.0 ± 3.0 (1 of 2 seeds)"
    assert summary.diff_cell([None]) == "—"


def test_publish_copies_results_adapters_and_rewrites_the_page(study, tmp_path):
    choose(study)
    docs = tmp_path / "docs"
    docs.mkdir()
    before = f"# Results\n\n## Second study\n\nhand-written\n\n{publishing.BEGIN}\nNot yet run.\n{publishing.END}\n\n## After\n"
    (docs / "results.md").write_text(before)
    (study.out / "summary.md").write_text("| table |\n")
    finish(study.run("motif-first", 1), steps(study, "motif-first"))
    (study.run("motif-first", 1) / "run_identity.json").write_text('{"seed": 1}')
    fake_published(study, "motif-first-s1@40")
    evaluated = study.eval_dir("motif-first-s1@40", "rounds")
    evaluated.mkdir(parents=True)
    (evaluated / "summary.json").write_text('{"metrics": {}}')
    (evaluated / "samples.jsonl").write_text('{"id": "0"}\n')
    copied = publishing.publish(study, [1], docs)
    page = (docs / "results.md").read_text()
    assert page == before.replace("Not yet run.", "| table |")
    assert publishing.replace_block(page, "again") == before.replace("Not yet run.", "again")
    names = {p.relative_to(docs).as_posix() for p in copied}
    assert {"results/study2/summary.md", "results/study2/motif-first-s1.metrics.jsonl"} <= names
    results = docs / "results" / "study2"
    assert (results / "motif-first-s1.run_identity.json").read_text() == '{"seed": 1}'
    assert (results / "eval" / "motif-first-s1@40-rounds.json").read_text() == '{"metrics": {}}'
    replies = results / "eval" / "motif-first-s1@40-rounds.samples.jsonl.gz"
    assert gzip.decompress(replies.read_bytes()) == b'{"id": "0"}\n'  # evidence, compressed
    assert not (results / "eval" / "motif-first-s1@40-rounds.samples.jsonl").exists()
    adapter = docs / "results" / "adapters" / "motif-first-s1-step40"
    assert (adapter / "adapter_model.safetensors").read_bytes() == b"bf16 weights"  # as scored
    readme = (docs / "results" / "adapters" / "README.md").read_text()
    pinned = "MOTIF_FP32_KERNEL=onednn_packed motif eval "  # the kernel every eval ran
    commands = [line for line in readme.splitlines() if line.startswith(pinned)]
    assert len(commands) == 3 and all(f"--adapter {adapter}" in c for c in commands)
    assert all("--decode-dtype model" in c for c in commands)
    assert all("--data-seed 3000000 --limit 500" in c for c in commands)
    with pytest.raises(SystemExit, match="lacks the markers"):
        publishing.replace_block("# no block", "x")


def test_the_results_page_has_the_generated_block():
    page = (ROOT / "docs" / "results.md").read_text()
    assert page.count(publishing.BEGIN) == 1 and page.count(publishing.END) == 1
    assert page.index("# Results") < page.index("## Second study") < page.index(publishing.BEGIN)


@pytest.mark.slow
def test_the_pipeline_at_tiny_scale(tiny_checkpoint, tmp_path):
    """Every stage, for real, with a tiny random model and tiny sizes (a few minutes)."""
    recipes = tmp_path / "recipes"
    shutil.copytree(ROOT / "recipes" / "study2", recipes)

    def edit(name: str, **values) -> None:
        doc = yaml.safe_load((recipes / f"{name}.yaml").read_text())
        (recipes / f"{name}.yaml").write_text(yaml.safe_dump({**doc, **values}))

    edit(
        "study",
        model=str(tiny_checkpoint),
        candidates=[{"terms": 3, "budget": 8}, {"terms": 4, "budget": 8}],
        rule={"min_cut": 0.0, "accuracy": [0.0, 1.0]},
        dev={"seed": 2000000, "size": 2},
        heldout={"seed": 3000000, "size": 3},
        curve_every=1,
    )
    task = {"min_terms": 3, "max_terms": 4, "min_digits": 1, "max_digits": 1, "operators": ["+"]}
    edit(
        "sft",
        num_examples=4,
        tail_chunk=32,
        tail_head=4,
        tail_keep=8,
        task_config={**task, "allow_parentheses": False, "allow_negation": False},
    )
    for arm in common.ARMS:
        edit(
            arm,
            max_steps=4 if arm == "grpo-B" else 2,
            save_steps=1,
            heldout_every=1,
            heldout_size=2,
            num_generations=2,
            dataset_size=16,
            k=1,
            report_to="none",
        )
    out, docs = tmp_path / "runs", tmp_path / "docs"
    docs.mkdir()
    (docs / "results.md").write_text(f"{publishing.BEGIN}\n{publishing.END}\n")
    args = [
        "--out",
        str(out),
        "--recipes",
        str(recipes),
        "--seeds",
        "1",
        "--jobs",
        "1",
        "--threads",
        "1",
    ]
    study2.main([*args, "--docs", str(docs)])
    assert json.loads((out / "choice.json").read_text())["chosen"] == {"terms": 3, "budget": 8}
    page = (docs / "results.md").read_text()
    assert "(`motif-first`), step 2 |" in page and "samples to reach it" in page
    assert (
        docs / "results" / "adapters" / "motif-all-s1-step2" / "adapter_model.safetensors"
    ).exists()
    assert (out / "eval" / "motif-first-s1@1-rounds" / "summary.json").exists()  # the curve


def test_two_seeds_get_a_mean_row_with_the_error_over_seeds(study):

    choose(study)
    for seed, (m, g) in {1: ("1100", "0000"), 2: ("1111", "1000")}.items():
        for protocol in common.PROTOCOLS:
            write_run(study.eval_dir(f"motif-first-s{seed}@40", protocol), greedy(m))
            write_run(study.eval_dir(f"grpo-B-s{seed}@40", protocol), greedy(g))
    text = summary.paired_table(study, [1, 2, 3], CHOSEN)  # seed 3 not run: left out
    # seed 1: +50, seed 2: +75 points -> +62.5, sample sd 17.7 over sqrt(2) seeds = 12.5
    assert (
        "| motif-first − grpo-B | mean of 2 | +62.5 ± 12.5 (items ± 23.3; +50.0 to +75.0) |" in text
    )
    assert "| motif-all − grpo-B | mean" not in text  # no seed measured
    paths = [study.eval_dir(f"motif-first-s{s}@40", "rounds") for s in (1, 2)]
    assert summary.cell(paths) == "75.0 ± 25.0 (50.0–100.0)"
    missing = study.eval_dir("motif-first-s3@40", "rounds")
    assert summary.cell([paths[0], missing]) == "50.0 ± 25.0 (1 of 2 seeds)"
    assert summary.cell([*paths, missing]) == "75.0 ± 25.0 (50.0–100.0) (2 of 3 seeds)"


def test_the_skip_rate_of_an_eval_is_rebuilt_for_rows_stored_without_it(tmp_path):
    """Evaluations of earlier sittings predate motif eval's skipped_steps: the summary gets
    the same rate from the stored rows and the items rebuilt from eval_config.json."""
    from motif.config import ProtocolArgs

    config = {"min_terms": 6, "max_terms": 6, "min_digits": 1, "max_digits": 1, "size": 4}
    boxed = {}

    def script(chat, sample):  # two questions box a guess at once, two box nothing
        boxed.setdefault(chat[1]["content"], len(boxed) % 2 == 0)
        return "<answer>\\boxed{3}</answer>" if boxed[chat[1]["content"]] else "Not sure."

    out = tmp_path / "e"
    scripted_chain_eval(out, config, script, ProtocolArgs(rounds=2), 32)
    assert summary.skip_rate(out) == 0.5
    doc = json.loads((out / "summary.json").read_text())
    del doc["metrics"]["skipped_steps"]
    (out / "summary.json").write_text(json.dumps(doc))
    rows = [json.loads(x) for x in (out / "samples.jsonl").read_text().splitlines()]
    lines = [json.dumps({k: v for k, v in r.items() if k != "skipped_steps"}) for r in rows]
    (out / "samples.jsonl").write_text("\n".join(lines) + "\n")
    assert summary.skip_rate(out) == 0.5


def test_a_wall_clock_match_at_grpo_bs_last_step_is_marked_capped(study):
    for arm, seconds in (("grpo-B", 1.0), ("motif-first", 3.0)):
        finish(study.run(arm, 1), steps(study, arm), seconds)
    assert common.wall_step(study, "motif-first", 1) == steps(study, "grpo-B")
    assert common.wall_capped(study, "motif-first", 1)
    assert common.trained_seeds(study) == [1]


def test_evaluations_get_the_pinned_kernel_and_this_process_keeps_its_environment(
    monkeypatch, tmp_path
):
    monkeypatch.delenv("MOTIF_FP32_KERNEL", raising=False)
    env = study2.eval_env()
    assert env == {"MOTIF_FP32_KERNEL": "onednn_packed"}  # what seed 1's evaluations ran
    marker = tmp_path / "seen"
    code = f"import os; open({str(marker)!r}, 'w').write(os.environ['MOTIF_FP32_KERNEL'])"
    jobs.run_jobs(
        [jobs.Job("show", [sys.executable, "-c", code], marker)], 1, tmp_path / "logs", env=env
    )
    assert marker.read_text() == "onednn_packed" and "MOTIF_FP32_KERNEL" not in os.environ
    monkeypatch.setenv("MOTIF_FP32_KERNEL", "aten")  # the caller's choice wins
    assert study2.eval_env() == {"MOTIF_FP32_KERNEL": "aten"}
