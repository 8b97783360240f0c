"""``motif sft --save-steps N`` and ``--resume``: a cold start stopped part way continues from
its last checkpoint and ends with the adapter an unbroken run makes."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

import motif.training.sft as sft_module
from motif.cli.main import main

TWO_TERMS = '{"min_terms": 2, "max_terms": 2, "min_digits": 1, "max_digits": 1}'


class Stopped(Exception):
    """The machine going away part way through a run."""


def _flags(checkpoint, out) -> list[str]:
    flags = ["--model", str(checkpoint), "--output-dir", str(out), "--rounds", "2"]
    flags += ["--num-examples", "4", "--max-steps", "4", "--per-device-batch-size", "2"]
    flags += ["--lora-r", "2", "--lora-alpha", "4", "--lora-target-modules", "q_proj", "v_proj"]
    flags += ["--learning-rate", "0.01", "--dtype", "float32", "--task-config", TWO_TERMS]
    return flags + ["--eval-max-new-tokens", "48", "--logging-steps", "1"]


def _stop_after(monkeypatch, step: int) -> None:
    """Raise :class:`Stopped` at the end of ``step``, before its checkpoint could be saved."""
    from transformers import TrainerCallback

    class StopAt(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == step:
                raise Stopped(step)

    real = sft_module.use_console

    def use_console(trainer, prog):
        real(trainer, prog)
        trainer.add_callback(StopAt())

    monkeypatch.setattr(sft_module, "use_console", use_console)


def _weights(out) -> dict[str, torch.Tensor]:
    return load_file(str(out / "adapter_model.safetensors"))


def test_a_stopped_cold_start_resumes_to_the_unbroken_runs_adapter(
    tiny_checkpoint, tmp_path, capsys, monkeypatch
):
    whole, broken = tmp_path / "whole", tmp_path / "broken"
    assert main(["sft", *_flags(tiny_checkpoint, whole)]) == 0, capsys.readouterr().err

    _stop_after(monkeypatch, 3)
    with pytest.raises(Stopped):
        main(["sft", *_flags(tiny_checkpoint, broken), "--save-steps", "2"])
    monkeypatch.undo()
    assert sorted(p.name for p in broken.glob("checkpoint-*")) == ["checkpoint-2"]
    assert not (broken / "sft_metrics.json").exists()
    capsys.readouterr()

    # without --resume the run is not replaced by accident
    assert main(["sft", *_flags(tiny_checkpoint, broken)]) == 2
    assert "pass --resume to continue it" in capsys.readouterr().err
    # a setting that shapes a step may not change
    changed = [*_flags(tiny_checkpoint, broken), "--resume", "--learning-rate", "0.02"]
    assert main(["sft", *changed]) == 2
    err = capsys.readouterr().err
    assert "started with other settings" in err and "learning_rate: 0.01 -> 0.02" in err

    assert main(["sft", *_flags(tiny_checkpoint, broken), "--resume"]) == 0
    assert "trained 4 steps" in capsys.readouterr().out
    metrics = json.loads((broken / "sft_metrics.json").read_text())
    assert metrics["steps"] == 4 and metrics["resumed_from"] == 2
    assert not list(broken.glob("checkpoint-*"))  # a finished run keeps its adapter only
    expected, resumed = _weights(whole), _weights(broken)
    assert expected.keys() == resumed.keys()
    for name, value in expected.items():
        torch.testing.assert_close(resumed[name], value, rtol=0, atol=1e-6, msg=name)
    start = json.loads((whole / "run_identity.json").read_text())["settings"]
    assert start["learning_rate"] == 0.01 and "eval_size" not in start


def test_resume_needs_a_checkpoint(tiny_checkpoint, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["sft", *_flags(tiny_checkpoint, out), "--max-steps", "1"]) == 0
    capsys.readouterr()
    assert main(["sft", *_flags(tiny_checkpoint, out), "--max-steps", "1", "--resume"]) == 2
    assert "no checkpoint-N directory" in capsys.readouterr().err


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--resume", "--overwrite"], "--resume and --overwrite exclude each other"),
        (["--save-steps", "-1"], "--save-steps must be >= 0"),
    ],
)
def test_bad_resume_flags_are_one_line_errors(flags, message, tmp_path, capsys, no_model_load):
    argv = ["sft", "--output-dir", str(tmp_path / "x"), "--num-examples", "1", *flags]
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_the_weights_are_fingerprinted_as_loaded(tiny_checkpoint, tmp_path, capsys, monkeypatch):
    """The default model is converted from its GGUF by the first load: the identity is that of
    the weights as loaded, which a resume finds (not the file the check saw before)."""
    import motif.identity

    loaded = []
    real = sft_module.load_base
    monkeypatch.setattr(sft_module, "load_base", lambda config: loaded.append(1) or real(config))
    monkeypatch.setattr(
        motif.identity, "model_fingerprint", lambda name: "converted" if loaded else "gguf file"
    )
    out, console = tmp_path / "run", sft_module.use_console
    _stop_after(monkeypatch, 3)
    with pytest.raises(Stopped):
        main(["sft", *_flags(tiny_checkpoint, out), "--save-steps", "2"])
    stored = json.loads((out / "run_identity.json").read_text())
    assert stored["model_weights"] == "converted"
    monkeypatch.setattr(sft_module, "use_console", console)
    assert main(["sft", *_flags(tiny_checkpoint, out), "--resume"]) == 0, capsys.readouterr().err
    assert json.loads((out / "sft_metrics.json").read_text())["resumed_from"] == 2
