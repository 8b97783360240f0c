"""studies.study3 (the third study): the arms and protocols, the plan, resumption, the tables,
and (slow) every stage at tiny scale."""

from __future__ import annotations

import gzip
import json
import re
import shutil
import sys
from pathlib import Path

import pytest
import yaml

from eval_fakes import greedy, write_run
from studies import keeping, study3, study3_state
from studies import study3_layout as layout
from studies import study3_publish as publishing
from studies import study3_summary as summary

ROOT = Path(__file__).parents[2]
ARMS = ["grpo-nB", "grpo-long", "motif-first", "motif-all", "trajectory", "delethink", "inftythink"]


@pytest.fixture(autouse=True)
def repo_root(monkeypatch):
    monkeypatch.chdir(ROOT)  # the script reads recipes/study3/ and recipes/methods/


@pytest.fixture
def kept(tmp_path) -> Path:
    return tmp_path / "kept"


@pytest.fixture
def study(tmp_path) -> layout.Study:
    return layout.Study(tmp_path / "runs")


def main(study: layout.Study, kept: Path, *args: str) -> None:
    study3.main(["--out", str(study.out), "--kept", str(kept), *args])


def plan(study, kept, stage: str, capsys, seeds=(1, 2)) -> list[str]:
    main(study, kept, "--stage", stage, "--plan", "--seeds", *map(str, seeds))
    return capsys.readouterr().out.splitlines()


def flag(line: str, name: str) -> str | None:
    words = line.split()
    return words[words.index(name) + 1] if name in words else None


def finish(run: Path, steps: int, seconds: float = 1.0, checks: dict | None = None) -> None:
    """A training run that logged ``steps`` steps, saved its final adapter and a checkpoint
    every 5 steps."""
    run.mkdir(parents=True, exist_ok=True)
    rows = [{"step": s, "step_seconds": seconds} for s in range(1, steps + 1)]
    for step, values in (checks or {}).items():
        rows[step - 1].update(values)
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    for folder in [run, *(run / f"checkpoint-{s}" for s in range(5, steps + 1, 5))]:
        folder.mkdir(exist_ok=True)
        (folder / "adapter_model.safetensors").write_bytes(b"weights")
        (folder / "adapter_config.json").write_text("{}")


# --------------------------------------------------------------------------- arms and protocols


def test_the_arms_are_the_methods_family_and_grpo_with_n_times_b(study):
    assert study.arms == ARMS
    assert {study.arm(a)["recipe"] for a in ARMS} | {"sft-model-ended"} == {
        p.stem for p in (ROOT / "recipes" / "methods").glob("*.yaml")
    }
    own = {a: study.own(a) for a in ARMS}
    assert own == {
        "grpo-nB": "long",
        "grpo-long": "short",
        "motif-first": "summary",
        "motif-all": "summary",
        "trajectory": "summary",
        "delethink": "tail",
        "inftythink": "model",
    }


@pytest.mark.parametrize(
    ("protocol", "units", "argv", "label"),
    [
        ("summary", 3, "--rounds 3 --max-new-tokens 96 --later-max-new-tokens 96", "3 rounds x 96"),
        (
            "model",
            8,
            "--round-end model --max-rounds 8 --max-new-tokens 96 --later-max-new-tokens 96",
            "model-ended, <= 8 x 96",
        ),
        # Delethink at n units: a first chunk of 2B, then n - 1 - 1 chunks of B new: n x B in all
        (
            "tail",
            3,
            "--carry-over tail --tail-chunk 192 --tail-head 8 --tail-keep 88 --tail-chunks 2",
            "tail chunks, 192 + 1 x 96",
        ),
        ("short", 3, "--carry-over none --max-new-tokens 192", "1 round x 192"),
        ("long", 6, "--carry-over none --max-new-tokens 576", "1 round x 576"),
    ],
)
def test_each_protocol_at_its_units(protocol, units, argv, label):
    assert " ".join(layout.protocol_argv(protocol, units, 96)) == argv
    assert layout.protocol_label(protocol, units, 96) == label


def test_the_study_keeps_the_second_studys_task_and_heldout_items(study):
    second = yaml.safe_load((ROOT / "recipes" / "study2" / "study.yaml").read_text())
    assert study.config["heldout"] == second["heldout"]
    assert study.rounds == second["rounds"] and study.budget == 96
    for arm in ARMS:  # every arm trains on the same chains, in the same order
        recipe = study.recipe(arm)
        assert recipe["task_config"] == study.task_config(), arm
        assert (recipe["dataset_seed"], recipe["dataset_size"]) == (100000, 1000), arm


# --------------------------------------------------------------------------- the plan


def test_the_train_plan_has_every_arm_and_seed_from_the_mixed_cold_start(study, kept, capsys):
    lines = plan(study, kept, "train", capsys)[1:]
    assert len(lines) == 14 and not study.out.exists()  # nothing run
    by_run = {flag(line, "--output-dir").rsplit("/", 1)[1]: line for line in lines}
    assert all(flag(line, "--init-adapter") == str(study.out / "sft") for line in lines)
    assert flag(by_run["grpo-nB-s2"], "--max-completion-length") == "288"
    assert flag(by_run["grpo-nB-s2"], "--config") == "recipes/methods/grpo-long.yaml"
    assert flag(by_run["grpo-long-s1"], "--max-completion-length") is None  # its recipe's 192
    assert flag(by_run["trajectory-s1"], "--max-steps") == "40"
    assert flag(by_run["delethink-s1"], "--max-steps") == "90"  # on, for the wall-clock match
    assert flag(lines[0], "--output-dir").endswith("motif-first-s1")  # the reference first
    assert all(flag(line, "--heldout-every") == "10" for line in lines)


def test_the_eval_and_scaling_plans_score_every_model(study, kept, capsys):
    every = plan(study, kept, "eval", capsys, seeds=(1,))
    assert every[-1].startswith("[wait]") and every[-1].endswith(", inftythink-s1")
    lines = [x for x in every if x.startswith("[todo]")]
    # the held-out check, the cold start on the check's items, then it and 7 arms, 5 protocols
    assert len(lines) == 1 + 5 + 8 * 5
    assert flag(lines[1], "--data-seed") == "1100003" and flag(lines[1], "--limit") == "50"
    dirs = {flag(x, "--output-dir").rsplit("/", 1)[1] for x in lines[6:]}
    assert "inftythink-s1@40-tail" in dirs and "sft-model" in dirs
    lines = [x for x in plan(study, kept, "scaling", capsys, seeds=(1,)) if "[todo]" in x]
    # the cold start in 4 protocol kinds and 7 arms in their own, at 3, 4, 6 and 8 units
    assert len(lines) == (4 + 7) * 4
    # every model at 3 and 8 units first: a sitting cut short has each model's paired gain
    ends = [flag(x, "--output-dir").rsplit("-", 1)[1] for x in lines[: (4 + 7) * 2]]
    assert set(ends) == {"3", "8"}
    line = next(x for x in lines if "delethink-s1@40-tail-8" in x)
    assert flag(line, "--tail-chunks") == "7" and flag(line, "--data-seed") == "4000000"
    assert '"min_terms": 12, "max_terms": 20' in line
    line = next(x for x in lines if "grpo-long-s1@40-long-4" in x)  # one pass of 4 x B
    assert flag(line, "--max-new-tokens") == "384"


def test_the_evaluations_run_the_headline_first(study):
    # a sitting cut short has the cold start, then every model in its own protocol
    finish(study.run("motif-first", 1), 40, seconds=3.0)
    finish(study.run("trajectory", 1), 40, seconds=6.0)  # its wall-clock match: step 20
    found = [(name, job.argv) for name, _, job in study3.heldout_evals(study, [1])]
    protocols = [
        next(p for p in layout.PROTOCOLS if flag(" ".join(argv), "--output-dir").endswith(p))
        for _, argv in found
    ]
    names = [name for name, _ in found]
    assert names[:5] == ["sft"] * 5
    assert list(zip(names[5:8], protocols[5:8], strict=True)) == [
        ("motif-first-s1@40", "summary"),
        ("trajectory-s1@40", "summary"),
        ("trajectory-s1@20", "summary"),
    ]
    assert len(found) == 5 + 3 + 2 * 4
    assert all(
        study.own(layout.model_parts(n)[0]) != p
        for n, p in zip(names[8:], protocols[8:], strict=True)
    )
    assert layout.model_parts("grpo-nB-s12@55") == ("grpo-nB", 12, 55)


def test_the_wall_clock_match_is_each_arms_checkpoint_within_the_references_time(study):
    finish(study.run("motif-first", 1), 40, seconds=3.0)  # 120 s
    finish(study.run("grpo-nB", 1), 70, seconds=2.0)  # 60 steps fit
    finish(study.run("trajectory", 1), 40, seconds=6.0)  # 20 steps fit
    finish(study.run("delethink", 1), 70, seconds=1.0)  # every step fits: capped
    assert layout.wall_step(study, "grpo-nB", 1) == 60
    assert layout.wall_step(study, "trajectory", 1) == 20
    assert layout.wall_step(study, "motif-first", 1) == 40
    assert layout.wall_step(study, "delethink", 1) == 70 and layout.wall_capped(
        study, "delethink", 1
    )
    pending = ("grpo-long", "motif-all", "delethink", "inftythink")  # delethink: 70 of 90 steps
    assert layout.wall_pending(study, [1]) == [f"{arm}-s1" for arm in pending]
    names = [m[0] for m in layout.models(study, [1])]
    assert "trajectory-s1@20" in names and "trajectory-s1@40" in names
    assert names.count("motif-first-s1@40") == 1  # the reference's match is itself


def test_trained_runs_are_kept_without_checkpoints_and_stay_done(study, kept, monkeypatch):
    finish(study.run("motif-first", 1), 40)
    finish(study.run("trajectory", 1), 12)  # cut off: starts over on a new machine
    (study.out / "sft").mkdir()
    (study.out / "sft" / "sft_metrics.json").write_text("{}")
    monkeypatch.setattr(study3, "run_jobs", lambda *a, **k: None)
    monkeypatch.setattr(
        keeping, "bf16_copy", lambda source, target: shutil.copytree(source, target)
    )
    main(study, kept, "--stage", "train", "--seeds", "1")
    assert sorted(p.name for p in (kept / "motif-first-s1").iterdir()) == ["metrics.jsonl"]
    assert not (kept / "trajectory-s1").exists()
    assert (kept / "published" / "motif-first-s1@40" / "adapter_model.safetensors").exists()
    shutil.rmtree(study.out)  # a new machine
    main(study, kept, "--stage", "summary", "--seeds", "1")
    assert study.trained("motif-first", 1) and not study.trained("trajectory", 1)
    assert layout.train_job(study, "motif-first", 1).is_done()
    again = layout.train_job(study, "trajectory", 1)
    assert not again.is_done() and again.argv[-1] == "--overwrite"


def test_the_scored_items_are_unseen(study):
    study.out.mkdir(parents=True)
    doc = study3.check_heldout(study)
    assert doc["heldout"]["distinct"] == 500 and doc["scaling"]["distinct"] == 300
    assert not any(n for split in doc.values() for n in split["overlap"].values())


# --------------------------------------------------------------------------- the tables


def test_the_summary_reads_fake_eval_directories(study):
    spent = {"round1_generation_seconds": 0.3, "continuation_seconds": 0.5}
    spent |= {"optimisation_seconds": 0.2, "round1_tokens": 700, "continuation_tokens": 1200}
    for arm in ARMS:
        checks = {10: {"heldout/accuracy": 0.3} | spent, 20: {"heldout/accuracy": 0.6}}
        checks[40] = {"heldout/accuracy": 0.5}
        if arm == "delethink":  # above every target only after step 40: not counted
            checks = {k: {"heldout/accuracy": 0.1} | spent for k in (10, 20, 40)}
            checks[50] = {"heldout/accuracy": 0.9}
        finish(study.run(arm, 1), study.max_steps(arm), 1.0, checks)
    # each model scores differently in some protocol, so that a wrong pairing shows
    flags = {"sft": "0000", "motif-first-s1@40": "1100", "delethink-s1@40": "1110"}
    flags["grpo-nB-s1@40"] = "1000"
    other = {("motif-first-s1@40", "tail"): "0000", ("grpo-nB-s1@40", "long"): "0000"}
    for name, f in flags.items():
        for protocol in layout.PROTOCOLS:
            write_run(study.eval_dir(name, protocol), greedy(other.get((name, protocol), f)))
    for protocol in layout.PROTOCOLS:  # the cold start on the training-time check's items
        write_run(study.watch_dir(protocol), greedy("1000"))
    for units in (3, 4, 6, 8):  # one more item right at 8 rounds
        f = "1100" if units == 8 else "1000"
        write_run(study.scaling_dir("motif-first-s1@40", "summary", units), greedy(f))
    _with_rounds(study.eval_dir("motif-first-s1@40", "summary"), handed=True)
    _with_rounds(study.eval_dir("delethink-s1@40", "tail"), handed=False)
    text = summary.write_summary(study, [1]).read_text()
    assert "| `motif-first`, step 40 | 3 rounds x 96 | 50.0 ± 25.0 |" in text
    # own protocols: delethink's tail chunks − motif-first's rounds (not motif-first in tail)
    assert "| `delethink` − `motif-first` | +25.0 ± 21.7 | +25.0 ± 21.7 |" in text
    assert "| `motif-first` − `sft` | +50.0 ± 25.0 |" in text
    scaled = "| `motif-first` | summary | 25.0 ± 21.7 / 25.0 ± 21.7 / 25.0 ± 21.7 / 50.0 ± 25.0 "
    assert scaled + "| +25.0 ± 21.7 |" in text  # 8 − 3 rounds, paired over the items
    # question 2: each arm − grpo-nB in its own protocol (grpo-nB in one pass of n x B) ...
    assert "| `motif-first` − `grpo-nB` | +50.0 ± 25.0 | +50.0 ± 25.0 |" in text
    # ... and both in the same protocol
    q2 = text.split("Bounded-context training against")[1]
    row = "| `motif-first` − `grpo-nB` | +25.0 ± 21.7 | -25.0 ± 21.7 | +25.0 ± 21.7 | +25.0 ± 21.7 "
    assert row + "| +50.0 ± 25.0 |" in q2
    # the same wall-clock: delethink's step 40 (all its steps take 1 s) − motif-first's step
    # 40 in its own protocol
    assert "| `delethink` | 40 | 75.0 ± 21.7 | +25.0 ± 21.7 |" in text
    assert "| `motif-first` | 40 | 50.0 ± 25.0 | (the reference) |" in text
    wall = summary.wall_table(study, [1, 2])  # seed 2 not trained: named
    assert "| `delethink` | 40 | 75.0 ± 21.7 (1 of 2 seeds) | +25.0 ± 21.7 (1 of 2 seeds) |" in wall
    assert "| 50.0 ± 25.0 (1 of 2 seeds) | (the reference) |" in wall
    # the cold start scores 25% on the check's items: 30% at step 10 is its + 5 points
    # and every arm's check first reached grpo-nB's at step 40 (50%) at step 20
    spent_cells = "| 1.0 (0.3 / 0.5 / 0.2) | 1900 (700 + 1200) | 8 |"
    assert f"| `motif-first` {spent_cells} s1: 80 | s1: 160 (50.0) |" in text
    # delethink's checks pass both targets only at step 50, past the sample-matched step 40
    assert f"| `delethink` {spent_cells} s1: not reached | s1: not reached (50.0) |" in text
    # the per-round table: the arms' own protocols of several rounds or chunks
    assert "| motif-first-s1@40, summary | 0.0, 25.0, 50.0 | 0.0 / 0.0, 25.0 / 0.0 " in text
    assert "| 90.0, 80.0 | 95.0 | 10.0 |" in text
    assert "| delethink-s1@40, tail | 0.0, 25.0, 50.0 | 0.0 / 0.0, 25.0 / 0.0 | — |" in text
    # the hand-over watch: only the rounds that hand a summary on
    watch = text.split("## The hand-over watch")[1].split("##")[0]
    assert (
        "| motif-first-s1@40, summary | motif-first-s1@40-summary | 4 / 4 | 25.0 → 0.0 |" in watch
    )
    assert "delethink" not in watch
    row = "| `delethink` − `motif-first` | +25.0 ± 21.7 | +75.0 ± 21.7 | +25.0 ± 21.7 |"
    assert row in text  # in each protocol, both models in it
    assert "| model | protocol | accuracy (%) at 3 / 4 / 6 / 8 units |" in text
    assert (study.out / "scaling.png").exists()
    curves = json.loads((study.out / "summary.json").read_text())["scaling"]
    assert curves["`motif-first`"]["3"] == 0.25


def _with_rounds(path: Path, handed: bool) -> None:
    """Adds motif eval's per-round metrics (motif.eval.metrics) to a fake eval's summary."""
    doc = json.loads((path / "summary.json").read_text())
    moves = [{"fixed_rate": 0.0, "broken_rate": 0.0}, {"fixed_rate": 0.25, "broken_rate": 0.0}]
    rounds = {"accuracy": [0.0, 0.25, 0.5], "transitions": moves}
    rounds["state_right"] = [0.9, 0.8, None] if handed else [None, None, None]
    metrics = {"rounds": rounds, "step_accuracy": 0.95, "skipped_steps": 0.1}
    if handed:
        flags = {"smuggled": [0.25, 0.0], "degenerate": [0.0, 0.0]}
        flags |= {"copied": [0.0, 0.0], "boxed": [0.0, 0.0]}
        metrics["handover"] = {"handed": [4, 4], **flags}
    doc["metrics"] = metrics
    (path / "summary.json").write_text(json.dumps(doc))


# --------------------------------------------------------------------------- publishing


def _adapter(folder: Path, weights: bytes) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "adapter_model.safetensors").write_bytes(weights)
    (folder / "adapter_config.json").write_text("{}")


def _docs(tmp_path: Path) -> tuple[Path, str]:
    docs = tmp_path / "docs"
    docs.mkdir()
    page = f"# Results\n\n## Third study\n\n{publishing.BEGIN}\nNot yet run.\n{publishing.END}\n"
    (docs / "results.md").write_text(page)
    return docs, page


def test_publish_writes_outputs_adapters_and_the_page_block(study, tmp_path):
    docs, before = _docs(tmp_path)
    _adapter(study.out / "sft", b"fp32 cold start")
    (study.out / "sft" / "sft_metrics.json").write_text('{"train_loss": 0.5}')
    finish(study.run("motif-first", 1), 40)
    (study.run("motif-first", 1) / "run_identity.json").write_text('{"seed": 1}')
    for arm in ARMS:
        _adapter(study.published(f"{arm}-s1@40"), b"bf16 weights")
    _adapter(study.published("motif-first-s1@25"), b"a wall-clock match: not published")
    write_run(study.eval_dir("motif-first-s1@40", "summary"), greedy("10"))
    write_run(study.scaling_dir("motif-first-s1@40", "summary", 6), greedy("01"))
    summary_md = "# Third study: summary\n\n## Cost\n\n| t |\n\n![scaling](scaling.png)\n"
    (study.out / "summary.md").write_text(summary_md)
    (study.out / "scaling.png").write_bytes(b"png")

    copied = publishing.publish(study, [1], docs)
    page = (docs / "results.md").read_text()
    assert page.startswith(before.split("Not yet run.")[0]) and page.endswith(publishing.END + "\n")
    assert "### Cost" in page and "# Third study: summary" not in page
    assert "![scaling](results/study3/scaling.png)" in page  # the plot's path from docs/
    results = docs / "results" / "study3"
    assert (results / "scaling.png").read_bytes() == b"png"
    assert (results / "motif-first-s1.run_identity.json").read_text() == '{"seed": 1}'
    assert (results / "motif-first-s1.metrics.jsonl").exists()
    assert (results / "sft.sft_metrics.json").read_text() == '{"train_loss": 0.5}'
    stored = study.eval_dir("motif-first-s1@40", "summary") / "samples.jsonl"
    replies = results / "eval" / "motif-first-s1@40-summary.samples.jsonl.gz"
    assert gzip.decompress(replies.read_bytes()) == stored.read_bytes()  # evidence, compressed
    assert (results / "scaling" / "motif-first-s1@40-summary-6.json").exists()
    adapters = docs / "results" / "adapters" / "study3"
    names = ["README.md", "sft", *(f"{arm}-s1-step40" for arm in ARMS)]
    assert sorted(p.name for p in adapters.iterdir()) == sorted(names)
    assert (adapters / "motif-first-s1-step40" / "adapter_model.safetensors").read_bytes() == (
        b"bf16 weights"  # the copy every evaluation read
    )
    readme = (adapters / "README.md").read_text()
    commands = [line for line in readme.splitlines() if line.startswith("MOTIF_FP32_KERNEL=")]
    assert len(commands) == (1 + len(ARMS)) * len(layout.PROTOCOLS)  # each in every protocol
    assert all(
        "--data-seed 3000000 --limit 500" in c and "--decode-dtype model" in c for c in commands
    )
    assert f"--adapter {adapters / 'sft'}" in commands[0]
    assert "--rounds 3 --max-new-tokens 96" in commands[0]
    assert docs / "results.md" in copied


@pytest.mark.parametrize(
    "missing, seeds, message",
    [
        ("summary.md", [1], "run --stage summary first"),
        ("published/grpo-nB-s1@40", [1], "adapters to publish are missing: "),
        ("sft", [1], "adapters to publish are missing: "),
        (None, [2, 3], "--seeds [2, 3] leaves out publish_seed 1"),
    ],
)
def test_publish_with_something_missing_writes_nothing(missing, seeds, message, study, tmp_path):
    docs, before = _docs(tmp_path)
    for name in ["sft", *(f"published/{arm}-s1@40" for arm in ARMS)]:
        _adapter(study.out / name, b"weights")
    (study.out / "summary.md").write_text("# Third study: summary\n")
    if missing == "summary.md":
        (study.out / missing).unlink()
    elif missing:
        shutil.rmtree(study.out / missing)
    with pytest.raises(SystemExit, match=re.escape(message)):
        publishing.publish(study, seeds, docs)
    assert (docs / "results.md").read_text() == before
    assert sorted(p.name for p in docs.iterdir()) == ["results.md"]


def test_a_published_study_is_never_published_over(study, tmp_path):
    docs, _ = _docs(tmp_path)
    for name in ["sft", *(f"published/{arm}-s1@40" for arm in ARMS)]:
        _adapter(study.out / name, b"weights")
    (study.out / "summary.md").write_text("# Third study: summary\n\n## Cost\n\nfirst\n")
    publishing.publish(study, [1], docs)
    page = (docs / "results.md").read_text()
    (study.out / "summary.md").write_text("# Third study: summary\n\n## Cost\n\nlater\n")
    with pytest.raises(SystemExit, match="already published and is never rewritten in place"):
        publishing.publish(study, [1], docs)
    assert (docs / "results.md").read_text() == page and "first" in page
    assert (docs / "results" / "study3" / "summary.md").read_text().endswith("first\n")


def test_the_results_page_has_the_third_studys_generated_block():
    page = (ROOT / "docs" / "results.md").read_text()
    assert page.count(publishing.BEGIN) == 1 and page.count(publishing.END) == 1
    assert page.index("## Third study") < page.index(publishing.BEGIN)


# --------------------------------------------------------------------------- tiny scale


@pytest.mark.slow
def test_the_pipeline_at_tiny_scale(tiny_checkpoint, tmp_path, kept):
    """Every stage, for real, with a tiny random model and tiny sizes (a few minutes)."""
    recipes, methods = tmp_path / "recipes", tmp_path / "methods"
    shutil.copytree(ROOT / "recipes" / "study3", recipes)
    shutil.copytree(ROOT / "recipes" / "methods", methods)

    def edit(path: Path, **values) -> None:
        path.write_text(yaml.safe_dump({**yaml.safe_load(path.read_text()), **values}))

    task = {"min_terms": 3, "max_terms": 4, "min_digits": 1, "max_digits": 1, "operators": ["+"]}
    task.update(allow_parentheses=False, allow_negation=False)
    arms = {a: {**v, "max_steps": 2} for a, v in yaml.safe_load(
        (recipes / "study.yaml").read_text())["arms"].items()}  # fmt: skip
    arms["grpo-nB"]["options"] = {"max_completion_length": 96}
    edit(
        recipes / "study.yaml",
        model=str(tiny_checkpoint),
        budget=32,  # the smallest a model-ended round may have
        task_config=task,
        heldout={"seed": 3000000, "size": 2},
        scaling={"terms": [5, 6], "rounds": [2, 3], "seed": 4000000, "size": 2},
        watch={"seed": 1100003, "size": 2},
        steps=1,
        save_steps=1,
        heldout_every=1,
        arms=arms,
    )
    edit(recipes / "sft.yaml", num_examples=4, tail_chunk=32, tail_head=4, tail_keep=8)
    edit(recipes / "sft.yaml", task_config=task, max_length=512)
    window = {"tail_chunk": 64, "tail_head": 8, "tail_keep": 24, "tail_chunks": 2}
    for recipe in methods.glob("*.yaml"):
        tokens = {"max_completion_length": 64 if recipe.stem == "delethink" else 32}
        edit(recipe, task_config=task, num_generations=2, dataset_size=16, heldout_size=2)
        edit(recipe, continuation_max_new_tokens=32, micro_batches=1, report_to="none", **tokens)
        if recipe.stem == "delethink":
            edit(recipe, **window)
    out = tmp_path / "runs"
    docs, _ = _docs(tmp_path)
    args = ["--out", str(out), "--recipes", str(recipes), "--methods", str(methods)]
    args += ["--docs", str(docs)]
    study3.main([*args, "--kept", str(kept), "--seeds", "1", "--jobs", "1", "--threads", "1"])
    text = (out / "summary.md").read_text()
    assert "| `inftythink`, step 1 | model-ended, <= 3 x 32 |" in text
    assert (out / "scaling" / "delethink-s1@1-tail-3" / "summary.json").exists()
    assert (kept / "published" / "trajectory-s1@1" / "adapter_model.safetensors").exists()
    readme = (docs / "results" / "adapters" / "study3" / "README.md").read_text()
    assert readme.count("## ") == 1 + len(ARMS)  # the cold start and every arm's step-1 model
    assert "| `inftythink`, step 1 |" in (docs / "results.md").read_text()


def test_what_a_job_made_is_kept_as_soon_as_it_finishes(study, kept, monkeypatch):
    """The train stage keeps each finished run at once (a machine can go mid-stage)."""
    from studies import jobs

    finished: list[str] = []
    first = jobs.Job("first", [sys.executable, "-c", "pass"])
    second = jobs.Job("second", [sys.executable, "-c", "raise SystemExit(3)"])
    with pytest.raises(SystemExit, match="second failed"):
        jobs.run_jobs(
            [first, second], 1, study.out / "logs", on_finish=lambda j: finished.append(j.name)
        )
    assert finished == ["first"]

    def train(job_list, parallel, logs, threads, prog, env, on_finish):
        finish(study.run("motif-first", 1), 40)
        on_finish(job_list[0])  # the reference is trained: kept before the stage ends
        assert (kept / "motif-first-s1" / "metrics.jsonl").exists()
        raise SystemExit("the machine went away")

    monkeypatch.setattr(study3, "run_jobs", train)
    monkeypatch.setattr(
        keeping, "bf16_copy", lambda source, target: shutil.copytree(source, target)
    )
    with pytest.raises(SystemExit, match="went away"):
        main(study, kept, "--stage", "train", "--seeds", "1")


def test_a_kept_adapter_goes_once_its_evaluations_ran_unless_it_is_published(study, kept):
    for seed in (1, 2):
        finish(study.run("grpo-nB", seed), study.max_steps("grpo-nB"))
    for name in ("grpo-nB-s1@40", "grpo-nB-s2@40"):
        folder = study.published(name)
        folder.mkdir(parents=True)
        (folder / "adapter_model.safetensors").write_bytes(b"bf16")
        (folder / "adapter_config.json").write_text("{}")
        for protocol in layout.PROTOCOLS:
            write_run(study.eval_dir(name, protocol), greedy("10"))
    assert "grpo-nB-s2@40" in study3.needed_adapters(study, [1, 2])  # its scaling is to run
    study3_state.keep(study, kept, study3.needed_adapters(study, [1, 2]))
    assert (kept / "published" / "grpo-nB-s2@40" / "adapter_model.safetensors").exists()
    for units in (3, 4, 6, 8):
        write_run(study.scaling_dir("grpo-nB-s2@40", "long", units), greedy("10"))
        write_run(study.scaling_dir("grpo-nB-s1@40", "long", units), greedy("10"))
    needed = study3.needed_adapters(study, [1, 2])
    assert "grpo-nB-s2@40" not in needed and "grpo-nB-s1@40" in needed  # seed 1 is published
    study3_state.keep(study, kept, needed)
    assert not (kept / "published" / "grpo-nB-s2@40").exists()
    assert (kept / "published" / "grpo-nB-s1@40" / "adapter_config.json").exists()


def test_check_items_that_are_training_questions_are_a_note(tmp_path, capsys):
    """On short chains some of the check's 50 items are training questions (the check draws
    others instead): a note, where a held-out or scaling one is an error."""
    recipes = tmp_path / "recipes"
    shutil.copytree(ROOT / "recipes" / "study3", recipes)
    doc = yaml.safe_load((recipes / "study.yaml").read_text())
    doc["task_config"] = {**doc["task_config"], "min_terms": 4, "max_terms": 4}
    doc["heldout"]["size"] = doc["scaling"]["size"] = 1
    (recipes / "study.yaml").write_text(yaml.safe_dump(doc))
    study = layout.Study(tmp_path / "runs", recipes)
    study.out.mkdir(parents=True)
    found = study3.check_heldout(study)
    assert found["watch"]["overlap"]["training"] > 0
    assert "of the check's items are training questions" in capsys.readouterr().err
