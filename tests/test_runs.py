"""Nothing lost, nothing stale (issue 14): run directories, run identity, dry runs, config keys,
precision defaults. Each numbered item of the issue is a test here (items 9-11: test_textio.py,
item 12: test_overflow.py, item 15: the FutureWarning marks in training/test_training.py and
training/test_sft.py)."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from conftest import REPO
from motif.backends.base import GenerationBackend, GenerationOutput
from motif.cli.main import main
from motif.errors import ConfigError, MotifError
from motif.outdir import MARKER, check_output_dir

TINY = [
    "--dataset",
    "reasoning_gym:chain_sum",
    "--dataset-size",
    "4",
    "--num-generations",
    "2",
    "--max-completion-length",
    "4",
    "--continuation-max-new-tokens",
    "4",
    "--k",
    "2",
    "--rounds",
    "2",
    "--lora-r",
    "4",
    "--lora-alpha",
    "8",
    "--lora-target-modules",
    "q_proj",
    "--report-to",
    "none",
]


def user_files(folder: Path) -> dict[str, str]:
    folder.mkdir(parents=True, exist_ok=True)
    files = {"notes.txt": "mine", "data.csv": "1,2"}
    for name, text in files.items():
        (folder / name).write_text(text)
    return files


def assert_intact(folder: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        assert (folder / name).read_text() == text, name


def old_run(folder: Path) -> dict[str, str]:
    """A directory that an earlier motif run created (it carries the marker)."""
    files = user_files(folder)
    (folder / MARKER).write_text("{}")
    return files


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert err.startswith("motif: error: ") and err.count("\n") == 1 and "Traceback" not in err
    return err


# --------------------------------------------------------------------------- item 1


@pytest.mark.parametrize("command", ["train", "sft"])
def test_overwrite_of_the_working_directory_is_refused(command, tmp_path, monkeypatch, capsys):
    files = user_files(tmp_path)
    monkeypatch.chdir(tmp_path)
    argv = [command, "--output-dir", ".", "--overwrite", "--model", "NO_SUCH_DIR"]
    assert main(argv) == 2
    one_line_error(capsys)
    assert_intact(tmp_path, files)


@pytest.mark.parametrize(
    "target", ["cwd", "home", "root", "parent of cwd", "project", "project parent"]
)
def test_protected_directories_are_refused_even_with_overwrite(target, tmp_path, monkeypatch):
    work = tmp_path / "a" / "work"
    work.mkdir(parents=True)
    (work / MARKER).write_text("{}")  # even a marker does not make the cwd deletable
    monkeypatch.chdir(work)
    project = REPO
    path = {
        "cwd": ".",
        "home": "~",
        "root": "/",
        "parent of cwd": "..",
        "project": str(project),
        "project parent": str(project.parent),
    }[target]
    with pytest.raises(MotifError, match="a run needs a directory of its own"):
        check_output_dir(path, kind="train", overwrite=True)


def test_overwrite_only_deletes_a_directory_with_the_marker(tmp_path):
    mine = tmp_path / "mine"
    files = user_files(mine)
    with pytest.raises(MotifError, match=f"not created by motif \\(no {MARKER} file\\)"):
        check_output_dir(mine, kind="train", overwrite=True)
    assert_intact(mine, files)
    run = tmp_path / "run"
    old_run(run)
    planned = check_output_dir(run, kind="train", overwrite=True)
    assert planned.state == "overwrite" and (run / "notes.txt").exists()  # checking deletes nothing
    planned.claim()
    assert sorted(p.name for p in run.iterdir()) == [MARKER]


@pytest.mark.parametrize(
    "made_by, hint, message",
    [
        ("user", None, "not created by motif (no .motif-run file); pick another directory"),
        ("user", "pass --resume", "not created by motif (no .motif-run file); pick another"),
        ("motif", None, "already holds a motif train run; pass --overwrite to replace it"),
        ("motif", "pass --resume", "run; pass --resume or --overwrite to replace it"),
        ("legacy", "pass --resume", "run; pass --resume, or pick another directory"),
        ("legacy", None, "already holds a motif train run; pick another"),
    ],
)
def test_a_full_output_dir_is_refused_with_advice_that_works(made_by, hint, message, tmp_path):
    """Only a folder with the marker may be overwritten, only a run resumed: the refusal of a
    folder that is not a fresh one offers only what would be accepted."""
    out = tmp_path / "out"
    files = user_files(out)
    if made_by == "motif":
        (out / MARKER).write_text("{}")
    if made_by == "legacy":
        (out / "motif_config.yaml").write_text("{}")
    with pytest.raises(MotifError, match=re.escape(message)):
        check_output_dir(out, kind="train", resume_hint=hint, legacy_files=("motif_config.yaml",))
    assert_intact(out, files)


def test_a_file_as_output_dir_is_refused(tmp_path):
    path = tmp_path / "f"
    path.write_text("x")
    with pytest.raises(MotifError, match="is not a directory"):
        check_output_dir(path, kind="eval", resume=True)


# --------------------------------------------------------------------------- item 2


@pytest.mark.parametrize("command", ["train", "sft"])
def test_a_wrong_model_leaves_the_old_run_intact(command, tmp_path, capsys):
    out = tmp_path / "old"
    files = old_run(out)
    argv = [command, "--output-dir", str(out), "--overwrite", "--model", str(tmp_path / "nope")]
    argv += TINY if command == "train" else ["--num-examples", "2"]
    assert main(argv) == 2
    assert "does not exist" in one_line_error(capsys)
    assert_intact(out, files)


def test_a_model_that_fails_to_load_leaves_the_old_run_intact(tmp_path, capsys):
    """Past every check, the model itself fails to load: still nothing deleted."""
    bad = tmp_path / "bad-model"
    bad.mkdir()
    (bad / "config.json").write_text('{"model_type": "no-such-architecture"}')
    out = tmp_path / "old"
    files = old_run(out)
    argv = ["train", "--output-dir", str(out), "--overwrite", "--model", str(bad), *TINY]
    assert main(argv) != 0
    capsys.readouterr()
    assert_intact(out, files)


# --------------------------------------------------------------------------- item 3


BAD_OPTIONS = [
    (["--lr-scheduler-type", "cosnie"], "--lr-scheduler-type 'cosnie' is not one of"),
    (["--loss-type", "bogus"], "--loss-type 'bogus' is not one of"),
    (["--optim", "adamw_bogus"], "--optim 'adamw_bogus' is not one of"),
    (["--report-to", "tensorbord"], "--report-to 'tensorbord'"),
    (["--dataset", "missing.jsonl"], "data file missing.jsonl does not exist"),
    (["--init-adapter", "no-adapter"], "--init-adapter no-adapter does not exist yet"),
]


@pytest.mark.parametrize(("flags", "message"), BAD_OPTIONS, ids=lambda x: str(x)[:30])
def test_dry_run_and_real_run_fail_alike_and_touch_nothing(
    flags, message, tmp_path, tiny_checkpoint, capsys
):
    out = tmp_path / "old"
    files = old_run(out)
    base = ["train", "--model", str(tiny_checkpoint), *TINY, "--output-dir", str(out), *flags]
    assert main([*base, "--dry-run", "--overwrite"]) == 2
    dry = one_line_error(capsys)
    assert message in dry
    assert main([*base, "--overwrite"]) == 2
    assert one_line_error(capsys) == dry
    assert_intact(out, files)
    new = tmp_path / "new"
    base[base.index(str(out))] = str(new)
    assert main(base) == 2
    capsys.readouterr()
    assert not new.exists()  # a failed start leaves no config behind to block the retry


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--lr-scheduler-type", "cosnie"], "--lr-scheduler-type 'cosnie' is not one of"),
        (["--model", "/no/such/model"], "model path /no/such/model does not exist"),
    ],
)
def test_sft_dry_run_checks_what_the_run_checks(flags, message, tmp_path, capsys):
    base = ["sft", "--output-dir", str(tmp_path / "o"), "--num-examples", "2", *flags]
    assert main([*base, "--dry-run"]) == 2
    dry = one_line_error(capsys)
    assert message in dry
    assert main(base) == 2
    assert one_line_error(capsys) == dry
    assert not (tmp_path / "o").exists()


def test_dry_run_describes_what_overwrite_would_do(tmp_path, tiny_checkpoint, capsys):
    out = tmp_path / "old"
    old_run(out)
    argv = ["train", "--model", str(tiny_checkpoint), *TINY, "--output-dir", str(out)]
    assert main([*argv, "--overwrite", "--dry-run"]) == 0
    assert "an old train run: deleted first, --overwrite" in capsys.readouterr().out
    assert (out / "notes.txt").exists()


# --------------------------------------------------------------------------- items 4 and 5


class ReplyBackend(GenerationBackend):
    """Answers every chat with a boxed 4."""

    def _generate_chunk(self, prompts, params, num_samples, offset):
        text = "<answer>\\boxed{4}</answer>"
        return [GenerationOutput(text, 1, 1, False) for _ in prompts for _ in range(num_samples)]


def scripted_loader(calls):
    def load(model_args):
        calls.append(model_args)
        return ReplyBackend()

    return load


@pytest.fixture
def eval_set(tmp_path):
    path = tmp_path / "set.jsonl"
    path.write_text('{"question": "What is 2 + 2?", "answer": "4"}\n')
    return str(path)


def copy_checkpoint(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst)
    return dst


def test_changed_weights_under_the_same_path_are_a_new_run(tmp_path, tiny_checkpoint, eval_set):
    from motif.config import GenerationArgs, ModelArgs, ProtocolArgs
    from motif.eval.runner import EvalArgs, run_eval

    model = copy_checkpoint(tiny_checkpoint, tmp_path / "model")
    args = EvalArgs(benchmark=eval_set, output_dir=str(tmp_path / "out"))
    margs = ModelArgs(model=str(model))
    calls: list = []
    run = (args, margs, GenerationArgs(max_new_tokens=4), ProtocolArgs(rounds=1))
    run_eval(*run, backend_loader=scripted_loader(calls))
    run_eval(*run, backend_loader=scripted_loader(calls))  # same weights: resumed, no load
    assert len(calls) == 1
    weights = next(model.glob("*.safetensors"))
    stat = weights.stat()
    os.utime(weights, (stat.st_atime, stat.st_mtime + 60))  # new weights saved in place
    with pytest.raises(
        ConfigError, match=r"different configuration: 1 field differs \(model_weights"
    ):
        run_eval(*run, backend_loader=scripted_loader(calls))


def test_a_failed_eval_start_leaves_nothing_behind(tmp_path, tiny_checkpoint, eval_set, capsys):
    out = tmp_path / "out"
    flags = ["--benchmark", eval_set, "--output-dir", str(out), "--max-new-tokens", "2"]
    flags += ["--rounds", "1"]
    assert main(["eval", "--model", str(tmp_path / "typo"), *flags]) == 2
    capsys.readouterr()
    assert not out.exists()
    assert main(["eval", "--model", str(tiny_checkpoint), *flags]) == 0
    assert (out / "eval_config.json").exists() and (out / MARKER).exists()


def test_eval_refuses_a_directory_of_other_files(tmp_path, eval_set, capsys):
    files = user_files(tmp_path / "mine")
    argv = ["eval", "--benchmark", eval_set, "--output-dir", str(tmp_path / "mine")]
    assert main(argv) == 2
    assert "holds no motif eval run" in one_line_error(capsys)
    assert_intact(tmp_path / "mine", files)


def test_model_fingerprint_is_cheap_and_tracks_weight_files(tmp_path, tiny_checkpoint):
    from motif.identity import model_fingerprint

    model = copy_checkpoint(tiny_checkpoint, tmp_path / "m")
    first = model_fingerprint(str(model))
    (model / "README.md").write_text("docs do not change results")
    assert model_fingerprint(str(model)) == first
    weights = next(model.glob("*.safetensors"))
    with weights.open("ab") as fh:
        fh.write(b"\0")
    assert model_fingerprint(str(model)) != first
    assert model_fingerprint("nobody/not-cached") is None


# --------------------------------------------------------------------------- items 6 and 7


@pytest.fixture
def started_run(tmp_path, tiny_checkpoint):
    """A run directory as `motif train` leaves it after checkpoint-1 (no training needed)."""
    from motif.cli.train import parse_config
    from motif.training.rundir import write_run_files
    from motif.training.trainer import check_config

    out = tmp_path / "run"
    base = ["--model", str(tiny_checkpoint), *TINY, "--output-dir", str(out)]
    config = parse_config(base)
    checked = check_config(config)
    checked.output.claim()
    write_run_files(out, config.to_dict(), checked.identity, {"bf16": False})
    (out / "checkpoint-1").mkdir()
    (out / "checkpoint-1" / "trainer_state.json").write_text("{}")
    return base


@pytest.mark.parametrize(
    ("flags", "field"),
    [
        (["--lora-r", "8"], "settings.lora_r: 4 -> 8"),
        (["--dataset-size", "5"], "settings.dataset_size: 4 -> 5"),
        (["--k", "3"], "settings.k: 2 -> 3"),
        (["--scoring", "paper"], 'settings.scoring: "default" -> "paper"'),
        (["--summary-rule", "strict"], 'settings.summary_rule: "paper" -> "strict"'),
        (["--learning-rate", "0.5"], "settings.learning_rate"),
        (["--method", "grpo"], 'settings.method: "motif" -> "grpo"'),
    ],
)
def test_resume_with_other_settings_is_a_one_line_error(flags, field, started_run, capsys):
    run_dir = Path(started_run[started_run.index("--output-dir") + 1])
    before = {p.name: p.stat().st_mtime_ns for p in run_dir.iterdir()}
    assert main(["train", *started_run, *flags, "--resume"]) == 2
    err = one_line_error(capsys)
    assert "--resume: the run in" in err and field in err
    assert {p.name: p.stat().st_mtime_ns for p in run_dir.iterdir()} == before


def test_resume_with_the_same_settings_passes_the_check(started_run, capsys):
    assert main(["train", *started_run, "--resume", "--max-steps", "9", "--dry-run"]) == 0
    assert "resume: from checkpoint-1" in capsys.readouterr().out


def test_a_run_from_before_an_added_setting_resumes_on_its_old_value(started_run, capsys):
    """A stored identity without ``rollout_decode_dtype`` (runs started before the option
    existed) reads as ``auto``, the value they sampled with; another value is named."""
    import json

    run_dir = Path(started_run[started_run.index("--output-dir") + 1])
    identity = run_dir / "run_identity.json"
    record = json.loads(identity.read_text())
    del record["settings"]["rollout_decode_dtype"]
    identity.write_text(json.dumps(record))
    assert main(["train", *started_run, "--resume", "--max-steps", "9", "--dry-run"]) == 0
    capsys.readouterr()
    assert main(["train", *started_run, "--resume", "--rollout-decode-dtype", "model"]) == 2
    assert 'settings.rollout_decode_dtype: "auto" -> "model"' in one_line_error(capsys)


def test_resume_after_the_init_adapter_changed_is_refused(tmp_path, tiny_checkpoint, capsys):
    from motif.cli.train import parse_config
    from motif.training.rundir import write_run_files
    from motif.training.trainer import check_config

    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text('{"r": 4, "peft_type": "LORA"}')
    out = tmp_path / "run"
    base = ["--model", str(tiny_checkpoint), *TINY, "--output-dir", str(out)]
    base += ["--init-adapter", str(adapter)]
    config = parse_config(base)
    checked = check_config(config)
    checked.output.claim()
    write_run_files(out, config.to_dict(), checked.identity, {})
    (out / "checkpoint-1").mkdir()
    (out / "checkpoint-1" / "trainer_state.json").write_text("{}")
    (adapter / "adapter_config.json").write_text('{"r": 8, "peft_type": "LORA"}')
    assert main(["train", *base, "--resume", "--dry-run"]) == 2
    assert "init_adapter_sha256" in one_line_error(capsys)


# --------------------------------------------------------------------------- item 8


def test_trim_logs_drops_metrics_and_tensorboard_events_after_the_checkpoint(tmp_path):
    from torch.utils.tensorboard import SummaryWriter

    from motif.training.rundir import trim_logs

    lines = [json.dumps({"step": s, "loss": float(s)}) for s in (1, 2, 3, 4, 5)]
    (tmp_path / "metrics.jsonl").write_text("\n".join(lines) + "\n" + '{"step": 6, "lo')
    writer = SummaryWriter(log_dir=str(tmp_path / "runs" / "first"))
    for step in (1, 2, 3, 4, 5):
        writer.add_scalar("train/loss", float(step), step)
    writer.close()
    assert trim_logs(tmp_path, 4) == 2 + 1
    steps = [json.loads(x)["step"] for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4]
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(tmp_path / "runs" / "first"))
    events.Reload()
    assert [e.step for e in events.Scalars("train/loss")] == [1, 2, 3, 4]


# --------------------------------------------------------------------------- item 13


@pytest.mark.parametrize("key", ["max-steps", "max_steps"])
def test_config_keys_accept_both_spellings(key, tmp_path):
    from motif.cli.train import parse_config

    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"{key}: 2\nlora-target-modules: [q_proj]\nreport_to: none\n")
    config = parse_config(["--config", str(recipe)])
    assert config.optim.max_steps == 2 and config.lora.lora_target_modules == ["q_proj"]
    config = parse_config(["--config", str(recipe), "--max-steps", "3"])  # flags still win
    assert config.optim.max_steps == 3


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("max-steps: 2\nmax_steps: 3\n", "sets max_steps twice"),
        ("no-such-key: 1\n", "unknown option(s) for `motif train`: --no_such_key 1"),
        ("- a\n- b\n", "must hold a YAML mapping"),
        ("max_steps: [\n", "is not valid YAML"),
    ],
)
def test_bad_config_files_are_one_line_errors(text, message, tmp_path, capsys):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(text)
    assert main(["train", "--config", str(recipe), "--dry-run"]) == 2
    assert message in one_line_error(capsys)


def test_dashed_keys_work_for_every_command(tmp_path):
    from motif.cli.common import parse
    from motif.config import GenerationArgs, ModelArgs, ProtocolArgs
    from motif.eval.runner import EvalArgs

    recipe = tmp_path / "e.yaml"
    recipe.write_text("max-new-tokens: 7\nsummary-rule: strict\nbatch-size: 3\n")
    args, _, gen, proto = parse(
        "motif eval", (EvalArgs, ModelArgs, GenerationArgs, ProtocolArgs), ["--config", str(recipe)]
    )
    assert (gen.max_new_tokens, proto.summary_rule, args.batch_size) == (7, "strict", 3)


# --------------------------------------------------------------------------- item 14


@pytest.mark.parametrize("value", ["", "none"])
def test_a_recipe_init_adapter_can_be_cleared(value, tmp_path, tiny_checkpoint, capsys):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("init_adapter: runs/not-trained-yet\n")
    argv = ["train", "--config", str(recipe), "--model", str(tiny_checkpoint), *TINY]
    argv += ["--output-dir", str(tmp_path / "o"), "--dry-run"]
    assert main([*argv, "--init-adapter", value]) == 0
    assert "adapter: new LoRA r=4" in capsys.readouterr().out
    assert main(argv) == 2  # kept: it is checked (and does not exist yet)
    error = one_line_error(capsys)
    assert "--init-adapter runs/not-trained-yet does not exist yet" in error
    assert "--init-adapter none" in error


def test_a_missing_cold_start_names_the_recipe_that_makes_it(tmp_path, monkeypatch):
    from motif.training.trainer import check_init_adapter

    recipes = tmp_path / "recipes"
    (recipes / "study").mkdir(parents=True)
    (recipes / "train.yaml").write_text("method: motif\noutput_dir: runs/cold\n")
    (recipes / "study" / "sft.yaml").write_text("output_dir: runs/cold\nnum_examples: 8\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(
        MotifError, match=r"make it first with `motif sft --config recipes/study/sft.yaml`"
    ):
        check_init_adapter("runs/cold", recipes=Path("recipes"))
    with pytest.raises(MotifError, match=r"`motif sft --output-dir runs/other \.\.\.`"):
        check_init_adapter("runs/other", recipes=Path("recipes"))


def test_the_readme_cpu_recipe_says_to_run_its_cold_start_first(capsys, monkeypatch):
    monkeypatch.chdir(REPO)
    recipe = "recipes/motif_smollm2_chain_sum_cpu.yaml"
    if Path("runs/sft_chain_sum_cpu").exists():
        pytest.skip("the cold start of this recipe exists here")
    assert main(["train", "--config", recipe, "--dry-run"]) == 2
    assert "motif sft --config recipes/sft_chain_sum_cpu.yaml" in one_line_error(capsys)


def test_model_and_adapter_can_be_cleared_for_inference():
    from motif.config import ModelArgs

    args = ModelArgs(model="", adapter=" ")
    assert args.model is None and args.adapter is None


# --------------------------------------------------------------------------- item 16


@pytest.mark.parametrize(("fast", "on"), [(True, True), (False, False)])
def test_bf16_auto_follows_the_hardware(fast, on, monkeypatch, tmp_path, tiny_checkpoint, capsys):
    import motif.backends.fast as fast_module

    why = "measured" if fast else "slower"
    monkeypatch.setattr(fast_module, "bf16_training_is_fast", lambda device: (fast, why))
    argv = ["train", "--model", str(tiny_checkpoint), *TINY, "--output-dir", str(tmp_path / "o")]
    assert main([*argv, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert f"precision: bf16 mixed precision {'on' if on else 'off'} (auto: {why})" in out
    assert main([*argv, "--dry-run", "--bf16", "false"]) == 0
    assert "bf16 mixed precision off (set in the config)" in capsys.readouterr().out


def test_bf16_auto_is_measured_on_a_cpu_without_amx(monkeypatch):
    import motif.backends.fast as fast_module
    import motif.backends.kernels as kernels

    monkeypatch.setattr(fast_module, "bf16_matmul_is_fast", lambda device: False)
    for bf16, fp32, expected in [(300.0, 100.0, True), (150.0, 260.0, False)]:
        fast_module.bf16_training_is_fast.cache_clear()
        rates = {"aten_fp32": fp32, "aten_bf16": bf16}
        monkeypatch.setattr(kernels, "_gemm_rates", lambda shape, rounds=3, r=rates: r)
        fast, why = fast_module.bf16_training_is_fast("cpu")
        assert fast is expected and f"{bf16 / fp32:.1f}x fp32" in why
    fast_module.bf16_training_is_fast.cache_clear()


def test_cpu_recipes_default_to_bf16_auto():
    import yaml

    recipes = [
        Path("recipes/motif_smollm2_chain_sum_cpu.yaml"),
        Path("recipes/sft_chain_sum_cpu.yaml"),
    ]
    recipes += sorted(Path("recipes/replicate").glob("*.yaml"))
    for recipe in recipes:
        assert yaml.safe_load(recipe.read_text()).get("bf16", "auto") == "auto", recipe


@pytest.mark.parametrize(("value", "parsed"), [("auto", "auto"), ("true", True), (False, False)])
def test_bf16_values(value, parsed):
    from motif.training.config import parse_bf16

    assert parse_bf16(value) == parsed
    with pytest.raises(ConfigError, match="--bf16 must be auto, true or false"):
        parse_bf16("maybe")


def test_a_run_from_before_the_identity_file_resumes_on_its_settings(
    tmp_path, tiny_checkpoint, capsys, monkeypatch
):
    """Older runs hold only motif_config.yaml (bf16 spelled true): compared on those keys."""
    import yaml

    import motif.backends.fast as fast_module
    from motif.cli.train import parse_config

    monkeypatch.setattr(fast_module, "bf16_training_is_fast", lambda device_type: (True, "test"))
    out = tmp_path / "run"
    base = ["--model", str(tiny_checkpoint), *TINY, "--output-dir", str(out)]
    config = parse_config(base).to_dict()
    config["bf16"] = True
    del config["rollout_decode_dtype"]  # added later: such a run sampled as auto does
    out.mkdir()
    (out / "motif_config.yaml").write_text(yaml.safe_dump(config))
    (out / "checkpoint-3").mkdir()
    (out / "checkpoint-3" / "trainer_state.json").write_text("{}")
    assert main(["train", *base, "--resume", "--dry-run"]) == 0, capsys.readouterr().err
    assert main(["train", *base, "--resume", "--dry-run", "--k", "4"]) == 2
    assert "settings.k: 2 -> 4" in one_line_error(capsys)
    assert main(["train", *base, "--resume", "--dry-run", "--rollout-decode-dtype", "model"]) == 2
    assert 'settings.rollout_decode_dtype: "auto" -> "model"' in one_line_error(capsys)
    monkeypatch.setattr(fast_module, "bf16_training_is_fast", lambda device_type: (False, "test"))
    assert main(["train", *base, "--resume", "--dry-run"]) == 2
    assert "settings.bf16: true -> false" in one_line_error(capsys)


def test_a_hub_model_is_fingerprinted_once_downloaded(tmp_path, eval_set, monkeypatch):
    """Not cached before the first load: the identity is completed after the load, so the
    next run (now cached) matches it."""
    import motif.identity as identity_module
    from motif.config import GenerationArgs, ModelArgs, ProtocolArgs
    from motif.eval.runner import EvalArgs, run_eval

    cached = {"now": None}
    monkeypatch.setattr(identity_module, "model_fingerprint", lambda name: cached["now"])
    calls: list = []

    def load(model_args):
        cached["now"] = "sha-after-download"
        return ReplyBackend()

    args = EvalArgs(benchmark=eval_set, output_dir=str(tmp_path / "out"))
    run = (args, ModelArgs(model="org/model"), GenerationArgs(max_new_tokens=4), ProtocolArgs())
    run_eval(*run, backend_loader=load)
    stored = json.loads((tmp_path / "out" / "eval_config.json").read_text())
    assert stored["model_weights"] == "sha-after-download"
    run_eval(*run, backend_loader=scripted_loader(calls))
    assert calls == []  # resumed: everything already evaluated


@pytest.mark.parametrize("text", ["{}", "[1]", "not json", '{"peft_type": ""}'])
def test_a_malformed_adapter_config_is_named_not_taken_for_a_mismatch(text, tmp_path):
    from motif.models import check_adapter_dir

    (tmp_path / "adapter_config.json").write_text(text)
    with pytest.raises(MotifError, match="is not a PEFT adapter config"):
        check_adapter_dir(str(tmp_path))
