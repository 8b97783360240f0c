"""``--use-peft false``: full fine-tuning under every credit, and the folder it leaves."""

from __future__ import annotations

import pytest

from motif.cli.main import main
from train_fakes import TINY_RUN, read_metrics


def _weights(path):
    from safetensors.torch import load_file

    return load_file(str(path / "model.safetensors"))


@pytest.mark.filterwarnings("error::FutureWarning")
@pytest.mark.parametrize("credit", ["first", "trajectory"])
def test_full_fine_tuning_trains_every_weight_and_saves_a_model(
    credit, tiny_checkpoint, tmp_path, with_length_reward, capsys
):
    from motif import models

    out = tmp_path / credit
    flags = ["--model", str(tiny_checkpoint), "--output-dir", str(out), "--max-steps", "2"]
    code = main(["train", *flags, *TINY_RUN, "--credit", credit, "--use-peft", "false"])
    assert code == 0, capsys.readouterr().err
    assert "full fine-tuning" in capsys.readouterr().out
    assert not (out / "adapter_config.json").exists()
    before, after = _weights(tiny_checkpoint), _weights(out)
    changed = [name for name, value in after.items() if (before[name] != value).any()]
    assert any("mlp" in n for n in changed) and any("embed" in n for n in changed)
    assert [r["step"] for r in read_metrics(out)] == [1, 2]
    assert "use_peft: false" in (out / "motif_config.yaml").read_text()
    model, _ = models.load_model(str(out), None, "float32", "cpu", False)  # --model RUN
    embed = "model.embed_tokens.weight"
    assert (model.state_dict()[embed] == after[embed]).all()  # the trained weights load
    with pytest.raises(models.MotifError, match=f"pass it as --model {out}"):
        models.check_adapter_dir(str(out))


def test_an_init_adapter_is_merged_into_the_fully_trained_model(tiny_checkpoint, tmp_path):
    import torch
    from peft import LoraConfig, get_peft_model

    from motif import models
    from motif.cli.train import parse_config
    from motif.training.trainer import load_policy

    base, _ = models.load_model(str(tiny_checkpoint), None, "float32", "cpu", False)
    lora = LoraConfig(r=2, target_modules=["q_proj"], init_lora_weights=False)
    get_peft_model(base, lora).save_pretrained(tmp_path / "adapter")
    flags = ["--model", str(tiny_checkpoint), "--output-dir", str(tmp_path / "run")]
    flags += [*TINY_RUN, "--init-adapter", str(tmp_path / "adapter"), "--use-peft", "false"]
    policy, _, peft_config = load_policy(parse_config(flags), use_cuda=False)
    assert peft_config is None and not hasattr(policy, "peft_config")
    assert all(w.requires_grad for w in policy.parameters())
    fresh, _ = models.load_model(str(tiny_checkpoint), None, "float32", "cpu", False)
    wrapped = models.apply_adapter(fresh, str(tmp_path / "adapter"), "tiny")
    ids = torch.tensor([[1, 2, 3, 4]])
    with torch.no_grad():
        merged, adapted = policy(ids).logits, wrapped(ids).logits
        plain = models.load_model(str(tiny_checkpoint), None, "float32", "cpu", False)[0](ids)
    assert torch.allclose(merged, adapted, atol=1e-5)
    assert not torch.allclose(merged, plain.logits, atol=1e-5)  # the adapter did something


def test_the_plan_names_full_fine_tuning_and_the_unused_lora_options(capsys):
    base = ["train", "--dry-run", "--dataset", "reasoning_gym:chain_sum", "--dataset-size", "4"]
    assert main([*base, "--use-peft", "false", "--lora-r", "8"]) == 0
    plan = capsys.readouterr().out
    assert "adapter: none, full fine-tuning (every weight;" in plan
    assert "--lora-r 8: not used (--use-peft false: full fine-tuning)" in plan
