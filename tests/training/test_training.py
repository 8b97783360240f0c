"""Training on tiny models: both methods, live-policy continuations, resume, vLLM path, config errors."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from conftest import fake_policy_trainer
from motif.cli.main import main

TINY_RUN = [
    "--dataset",
    "reasoning_gym:chain_sum",
    "--dataset-size",
    "6",
    "--num-generations",
    "2",
    "--max-completion-length",
    "6",
    "--continuation-max-new-tokens",
    "6",
    "--k",
    "2",
    "--rounds",
    "2",
    "--save-steps",
    "1",
    "--lora-r",
    "4",
    "--lora-alpha",
    "8",
    "--lora-target-modules",
    "q_proj",
    "v_proj",
    "--learning-rate",
    "0.05",
    "--report-to",
    "none",
    "--warmup-ratio",
    "0.0",
]
STEP_METRICS = [
    "rewards/xmlcount_reward/mean",
    "rewards/xmlcount_reward/std",
    "reward",
    "reward_std",
    "frac_reward_zero_std",
    "completions/mean_length",
    "round1_tokens",
    "round1_generation_seconds",
    "reward_seconds",
    "scoring_seconds",
    "optimisation_seconds",
    "step_seconds",
]
MOTIF_METRICS = [
    "rewards/future_accuracy_reward/mean",
    "rewards/future_accuracy_reward/std",
    "future_accuracy",
    "continuation_tokens",
    "continuation_seconds",
]


def length_reward(prompts, completions, **kwargs):
    """A reward with variance inside every group, so a step has a non-zero policy gradient."""
    return [float(len(c[0]["content"] if isinstance(c, list) else c)) for c in completions]


@pytest.fixture
def with_length_reward(monkeypatch):
    """The method's real rewards plus one with variance (random tiny models never format)."""
    import motif.training.trainer as trainer_module

    real = trainer_module.build_rewards
    monkeypatch.setattr(trainer_module, "build_rewards", lambda *a: [*real(*a), length_reward])


def adapter_tensors(path: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(path / "adapter_model.safetensors"))


def read_metrics(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.filterwarnings("error::FutureWarning")  # issue 14, item 15: no deprecated names
@pytest.mark.parametrize("method", ["motif", "grpo"])
def test_two_steps_change_the_adapter_and_log_every_metric(
    method, tiny_checkpoint, tmp_path, with_length_reward, capsys
):
    out = tmp_path / method
    code = main(
        [
            "train",
            "--method",
            method,
            "--model",
            str(tiny_checkpoint),
            "--output-dir",
            str(out),
            "--max-steps",
            "2",
            *TINY_RUN,
            "--report-to",
            "tensorboard",
        ]
    )
    assert code == 0, capsys.readouterr().err
    lora_b = {k: v for k, v in adapter_tensors(out).items() if "lora_B" in k}
    assert lora_b and any(v.abs().sum() > 0 for v in lora_b.values())  # B starts at zero
    first = adapter_tensors(out / "checkpoint-1")
    assert any((first[k] != v).any() for k, v in lora_b.items())  # step 2 changed it again
    records = read_metrics(out)
    assert [r["step"] for r in records] == [1, 2]
    expected = STEP_METRICS + (
        MOTIF_METRICS if method == "motif" else ["rewards/accuracy_reward/mean"]
    )
    for key in expected:
        assert key in records[-1], key
    last = records[-1]
    parts = ("round1_generation_seconds", "reward_seconds", "scoring_seconds")
    assert sum(last[k] for k in (*parts, "optimisation_seconds")) == pytest.approx(
        last["step_seconds"], abs=1e-3
    )  # the step split into parts that do not overlap
    assert "batch_seconds" not in last
    if method == "motif":
        assert records[-1]["continuation_tokens"] > 0
        assert records[-1]["reward_seconds"] >= records[-1]["continuation_seconds"] > 0
    assert (out / "motif_config.yaml").exists() and (
        out / "checkpoint-2" / "trainer_state.json"
    ).exists()
    assert list((out / "runs").glob("*/events.out.tfevents.*"))  # TensorBoard logs


@pytest.mark.filterwarnings("error::FutureWarning")
def test_resume_continues_to_the_same_step_count(tiny_checkpoint, tmp_path, capsys):
    out = tmp_path / "run"
    base = ["train", "--model", str(tiny_checkpoint), "--output-dir", str(out), *TINY_RUN]
    assert main([*base, "--max-steps", "1"]) == 0
    assert main([*base, "--max-steps", "1"]) == 2  # refuses to mix runs
    assert "already holds a run" in capsys.readouterr().err
    # a crash after step 2 was logged but before checkpoint-2 was saved (issue 14, item 8)
    with (out / "metrics.jsonl").open("a") as fh:
        fh.write(json.dumps({"step": 2, "reward": 9.9}) + "\n")
    assert main([*base, "--max-steps", "2", "--resume"]) == 0
    state = json.loads((out / "checkpoint-2" / "trainer_state.json").read_text())
    assert state["global_step"] == 2
    metrics = read_metrics(out)
    assert [r["step"] for r in metrics] == [1, 2] and metrics[-1].get("reward") != 9.9
    record = json.loads((out / "run_identity.json").read_text())
    assert record["run"]["resumed_from"].endswith("checkpoint-1")
    assert record["run"]["bf16_reason"].startswith("auto: ")
    assert record["run"]["continuation_decode"]["fp32_linear_kernel"] in ("aten", "onednn_packed")


def test_continuations_use_the_live_adapter(tokenizer):
    """Continuation texts change with the adapter: they are generated by the policy, not the base."""
    import torch
    from peft import LoraConfig, get_peft_model

    from conftest import build_tiny_model
    from motif.training.config import MotifArgs
    from motif.training.reward import FutureAccuracyReward

    policy = get_peft_model(
        build_tiny_model(tokenizer, seed=3), LoraConfig(r=4, target_modules=["q_proj", "v_proj"])
    )
    with torch.no_grad():
        for name, p in policy.named_parameters():
            if "lora_B" in name:
                p.add_(torch.randn_like(p) * 3.0)
    motif = MotifArgs(rounds=3, k=2, continuation_max_new_tokens=6, continuation_temperature=0.0)
    reward = FutureAccuracyReward(motif).bind(fake_policy_trainer(policy, tokenizer))
    questions, firsts = ["1 + 2 = ?", "3 + 4 = ?"], ["<answer>half way</answer>", "untagged"]
    live = reward.rollout(questions, firsts)
    with policy.disable_adapter():
        base = reward.rollout(questions, firsts)
    live_texts = [r.text for g in live for t in g for r in t.rounds[1:]]
    base_texts = [r.text for g in base for t in g for r in t.rounds[1:]]
    assert len(live_texts) == 2 * 2 * 2 and live_texts != base_texts
    logged = {}
    rewards = reward(
        prompts=[None] * 2,
        completions=firsts,
        question=questions,
        answer=["3", "7"],
        log_metric=lambda k, v: logged.__setitem__(k, v),
    )
    assert len(rewards) == 2 and {"future_accuracy", "continuation_tokens"} <= set(logged)


def test_unbound_reward_is_an_error():
    from motif.training.config import MotifArgs
    from motif.training.reward import FutureAccuracyReward

    with pytest.raises(RuntimeError, match="not bound"):
        FutureAccuracyReward(MotifArgs())(prompts=[], completions=[], question=[], answer=[])


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--method", "dpo"], "--method must be one of motif, grpo"),
        (["--k", "0"], "--k must be >= 1"),
        (["--rounds", "0"], "--rounds must be >= 1"),
        (["--num-generations", "1"], "--num-generations must be >= 2"),
        (["--resume", "--overwrite"], "exclude each other"),
        (["--lora-r", "0"], "--lora-r must be >= 1"),
        # Found by a user test: TRL refused these only at step 0, after --overwrite had deleted.
        (["--temperature", "0"], "--temperature must be > 0"),
        (["--temperature", "-1"], "--temperature must be > 0"),
        (["--top-p", "2"], "--top-p must be in (0, 1]"),
        (["--top-p", "0"], "--top-p must be in (0, 1]"),
        (["--beta", "-1"], "--beta (the KL coefficient) must be >= 0"),
        (["--adam-beta1", "2"], "--adam-beta1 must be in [0, 1)"),
        (["--adam-beta2", "-0.1"], "--adam-beta2 must be in [0, 1)"),
        (["--max-grad-norm", "-1"], "--max-grad-norm must be > 0"),
        (["--weight-decay", "-1"], "--weight-decay must be >= 0"),
        (["--scoring", "substring"], "--scoring must be default or paper"),
        (["--rollout-decode-dtype", "fp16"], "--rollout-decode-dtype must be auto, model or"),
        (["--task-config", "{not json"], "--task-config must be a JSON mapping"),
    ],
)
def test_bad_config_is_one_line_exit_2(flags, message, capsys):
    assert main(["train", "--dry-run", *flags]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_bad_rows_fail_before_the_model_loads(tmp_path, capsys):
    data = tmp_path / "d.jsonl"
    data.write_text('{"question": "1+1?", "answer": "2"}\n{"question": "", "answer": "3"}\n')
    code = main(
        [
            "train",
            "--model",
            "/no/such/model",
            "--dataset",
            str(data),
            "--output-dir",
            str(tmp_path / "o"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and "d.jsonl" in err and "does not exist" not in err


def test_unreachable_hub_id_is_a_clear_error(tmp_path, capsys):
    data = tmp_path / "d.jsonl"
    data.write_text('{"question": "1+1?", "answer": "2"}\n')
    code = main(
        [
            "train",
            "--model",
            "nobody/no-such-model",
            "--dataset",
            str(data),
            "--output-dir",
            str(tmp_path / "o"),
            "--report-to",
            "none",
        ]
    )
    assert code == 2 and "offline" in capsys.readouterr().err


def _train_and_sft_recipes() -> list[Path]:
    """Every recipe of `motif train` or `motif sft` (eval recipes name a benchmark)."""
    import yaml

    found = sorted([*Path("recipes").glob("*.yaml"), *Path("recipes/replicate").glob("*.yaml")])
    return [p for p in found if "benchmark" not in (yaml.safe_load(p.read_text()) or {})]


@pytest.mark.parametrize(
    "recipe", _train_and_sft_recipes(), ids=lambda p: str(p.relative_to("recipes"))
)
def test_every_recipe_dry_runs_offline(recipe, capsys, tmp_path, tiny_checkpoint):
    """Each recipe passes every check; a hub model not cached here and a cold-start adapter not
    trained yet are checks too, so they are swapped for local stand-ins."""
    import yaml

    from motif.models import model_dir

    command = "sft" if recipe.name.startswith("sft") else "train"
    config = yaml.safe_load(recipe.read_text())
    flags = ["--output-dir", str(tmp_path / "out")]
    if config.get("model") and model_dir(config["model"]) is None:
        flags += ["--model", str(tiny_checkpoint)]
    if config.get("dataset") == "gsm8k_train":  # the hub is unreachable in tests
        row = '{"question": "1+1?", "answer": "#### 2"}\n'
        (tmp_path / "gsm8k_train.jsonl").write_text(row)
        flags += ["--data-dir", str(tmp_path)]
    if config.get("init_adapter"):
        adapter = tmp_path / "adapter"
        adapter.mkdir()
        (adapter / "adapter_config.json").write_text('{"peft_type": "LORA"}')
        flags += ["--init-adapter", str(adapter)]
    code = main([command, "--config", str(recipe), "--dry-run", *flags])
    assert code == 0, capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("credit", ["first", "all"])
def test_two_processes_end_with_the_same_parameters(credit, tiny_checkpoint, tmp_path):
    """`accelerate launch --num_processes 2 --cpu`: two optimiser steps, identical weights on both ranks.

    ``--credit all``: step 2 trains round 2 on both ranks, from states shared by both."""
    import os
    import subprocess
    import sys

    out = tmp_path / "ddp"
    # accelerate 1.15 runs `--cpu --num_processes 2` as ONE process unless MPI is installed;
    # `--multi_gpu` on a machine with no visible GPU starts two torchrun ranks on gloo (CPU).
    env = {
        **os.environ,
        "PYTHONPATH": str(Path(__file__).parent),
        "OMP_NUM_THREADS": "1",
        "CUDA_VISIBLE_DEVICES": "",
    }
    command = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--num_processes",
        "2",
        "--multi_gpu",
        "--num_machines",
        "1",
        "--main_process_port",  # a free port: the default 29500 may be taken by another run
        str(_free_port()),
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
        str(Path(__file__).parent / "mp_train.py"),
        "--model",
        str(tiny_checkpoint),
        "--output-dir",
        str(out),
        "--max-steps",
        "2",
        *TINY_RUN,
        "--credit",
        credit,
    ]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    ranks = [(out / f"rank{r}.sha256").read_text().split() for r in (0, 1)]
    assert ranks[0][0] == ranks[1][0] == "2"
    assert ranks[0][1] == ranks[1][1]
    assert ranks[0][2] == ranks[1][2] == "1"  # the adapter really moved
    if credit == "all":
        first, second = read_metrics(out)
        assert first["round1/groups"] == 2.0 and first["round2/states"] == 4.0  # both ranks'
        assert second["round2/groups"] == 2.0 and "round1/groups" not in second


def test_resume_skips_a_checkpoint_cut_off_while_saving(tmp_path):
    from motif.training.rundir import latest_checkpoint

    for step, complete in ((10, True), (20, True), (30, False)):
        path = tmp_path / f"checkpoint-{step}"
        path.mkdir()
        if complete:
            (path / "trainer_state.json").write_text("{}")
    (tmp_path / "checkpoint-x").mkdir()
    assert latest_checkpoint(tmp_path) == tmp_path / "checkpoint-20"
    assert latest_checkpoint(tmp_path / "checkpoint-30") is None


# --------------------------------------------------------------------------- carry-over

# A template that writes an empty think block into every assistant turn: a partial turn is not
# rendered right after the generation prompt, so it cannot be continued.
REFORMATTING_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m.role }}\n"
    "{% if m.role == 'assistant' %}<think>\n\n</think>\n\n{% endif %}{{ m.content }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
TAIL = ["--carry-over", "tail", "--tail-chunk", "8", "--tail-head", "2", "--tail-keep", "3"]


def tail_reward(policy, tokenizer, chunks=3, k=2):
    """A tail future-accuracy reward (C=8, h=2, m=3: later chunks write 3) bound to ``policy``."""
    from motif.training.config import MotifArgs
    from motif.training.reward import FutureAccuracyReward

    motif = MotifArgs(
        carry_over="tail",
        tail_chunk=8,
        tail_head=2,
        tail_keep=3,
        tail_chunks=chunks,
        k=k,
        continuation_temperature=0.0,
    )
    return FutureAccuracyReward(motif).bind(fake_policy_trainer(policy, tokenizer))


def spy_rollouts(reward):
    """Record every rollout's trajectory groups (the reward only returns the scores)."""
    seen, rollout = [], reward.rollout
    reward.rollout = lambda *args: seen.append(rollout(*args)) or seen[-1]
    return seen


def test_tail_reward_continues_cut_completions_from_their_ids(tokenizer, tiny_model, monkeypatch):
    """A completion cut at C (no EOS) is continued from its ids (first h + last m carried); one
    that ended at EOS is not continued: its k trajectories are graded on chunk 1 alone."""
    from motif.backends.hf import TransformersBackend

    prompts_sent = []
    real = TransformersBackend.continue_prompts

    def spy(self, chats, prompts, prefixes):
        out = real(self, chats, prompts, prefixes)
        prompts_sent.extend(zip(out, prefixes, strict=True))
        return out

    monkeypatch.setattr(TransformersBackend, "continue_prompts", spy)
    reward = tail_reward(tiny_model, tokenizer)
    seen = spy_rollouts(reward)
    cut_ids = tokenizer.encode(" one two three four five six seven eight nine ten")[:8]
    done = "<reasoning>\nadd\n</reasoning>\n<answer>\n\\boxed{3}\n</answer>"
    done_ids = [*tokenizer.encode(done), tokenizer.eos_token_id]
    logged = {}
    rewards = reward(
        prompts=[None] * 2,
        completions=[tokenizer.decode(cut_ids), done],
        completion_ids=[cut_ids, done_ids],
        question=["1 + 2 = ?", "1 + 2 = ?"],
        answer=["3", "3"],
        log_metric=lambda k, v: logged.__setitem__(k, v),
    )
    cut, ended = seen[0]
    assert rewards[1] == 2.0 and logged["continued_completions"] == 1.0
    assert all(len(t.rounds) == 1 and t.stopped_early and t.final_text == done for t in ended)
    carried = cut_ids[:2] + cut_ids[-3:]
    for traj in cut:
        assert traj.thought_ids[:8] == cut_ids and len(traj.rounds) >= 2
        assert traj.rounds[1].carried_tokens == 5 and traj.rounds[1].completion_tokens <= 3
    # chunk 2 (its k samples share one prompt): the rendered single-round prompt, then h + m ids
    ids, prefix = prompts_sent[0]
    assert list(prefix) == carried and ids[-5:] == carried
    assert tokenizer.decode(ids[:-5]).endswith("<|im_start|>assistant\n")
    # chunk 3 (greedy: both samples alike) carries h of the thought and the last m of chunks 1-2
    thought = cut[0].thought_ids
    assert [len(t.rounds) for t in cut] == [3, 3] and len(prompts_sent) == 1 + 2
    assert list(prompts_sent[1][1]) == thought[:2] + thought[8:11]


def test_tail_reward_needs_trls_completion_ids(tokenizer, tiny_model):
    from motif.errors import MotifError

    reward = tail_reward(tiny_model, tokenizer)
    with pytest.raises(MotifError, match="passed no completion_ids"):
        reward(prompts=[None], completions=["x"], question=["q"], answer=["1"])


def test_tail_reward_reads_round_ones_cut_from_motifs_rollout(tokenizer, tiny_model):
    """With motif's rollout_func the cut and the prompt length come with round 1: a reply the
    rollout reports cut is continued even though its ids end like a finished one."""
    reward = tail_reward(tiny_model, tokenizer, chunks=2, k=1)
    seen = spy_rollouts(reward)
    ids = [*tokenizer.encode("<answer>\\boxed{3}</answer>"), tokenizer.eos_token_id]
    logged = {}
    reward(
        prompts=[None] * 2,
        completions=[tokenizer.decode(ids[:-1])] * 2,
        completion_ids=[ids, ids],
        reply_prompt_tokens=[21, 22],
        reply_truncated=[True, False],
        question=["1 + 2 = ?"] * 2,
        answer=["3"] * 2,
        log_metric=lambda k, v: logged.__setitem__(k, v),
    )
    (continued,), (ended,) = seen[0]
    assert logged["continued_completions"] == 1.0
    assert len(continued.rounds) == 2 and len(ended.rounds) == 1 and ended.stopped_early
    assert [t.rounds[0].prompt_tokens for t in (continued, ended)] == [21, 22]
    assert [t.rounds[0].completion_tokens for t in (continued, ended)] == [len(ids)] * 2


@pytest.mark.parametrize(
    ("flags", "rounds", "budget", "note"),
    [
        ([], 2, 6, False),  # summary: TINY_RUN's own values
        ([*TAIL, "--tail-chunks", "4"], 4, 8, True),  # tail: rounds = I, round 1 = chunk 1 (C)
        ([*TAIL, "--max-completion-length", "8"], 5, 8, False),  # the paper's I = 5
        (["--method", "grpo", "--carry-over", "none"], 1, 6, False),
    ],
)
def test_carry_over_resolves_rounds_and_round_one_budget(flags, rounds, budget, note):
    from motif.cli.train import parse_config
    from motif.prompts import VANILLA_SYSTEM_PROMPT
    from motif.training.trainer import build_dataset, plan

    config = parse_config([*TINY_RUN, "--dataset-size", "1", *flags])
    assert config.motif.rounds == rounds and config.optim.max_completion_length == budget
    assert any("replaced by --tail-chunk" in n for n in config.notes) == note
    prompt = build_dataset(config)[0]["prompt"]
    vanilla = config.motif.carry_over != "summary"  # tail's chunk 1 and grpo: one-pass prompt
    assert (prompt[0]["content"] == VANILLA_SYSTEM_PROMPT) == vanilla
    assert config.motif.protocol().carry_over == config.motif.carry_over
    if config.motif.carry_over == "tail":
        assert f"chunks 2..{rounds} of <= 3 tokens" in plan(config)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--carry-over", "delete"], "--carry-over must be one of summary, tail, none"),
        (["--carry-over", "none"], "use --method grpo"),
        (["--method", "grpo", "--carry-over", "tail"], "use --method motif"),
        ([*TAIL, "--tail-chunks", "0"], "--tail-chunks must be >= 1"),
        ([*TAIL, "--tail-keep", "8"], "--tail-keep (8) must be smaller than --tail-chunk (8)"),
        ([*TAIL, "--tail-head", "5"], "leaves no room to write"),
        (["--carry-over", "tail", "--tail-chunk", "0"], "--tail-chunk must be >= 1"),
        (["--carry-over", "tail", "--tail-head", "-1"], "--tail-head and --tail-keep must be >= 0"),
    ],
)
def test_bad_carry_over_is_one_line_exit_2(flags, message, capsys):
    assert main(["train", "--dry-run", *flags]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


def test_tail_is_checked_against_the_model_before_it_loads(tiny_checkpoint, tmp_path, capsys):
    """The dry run refuses a C that fills the tiny model's 2048-token context, and a template
    that cannot continue an assistant turn (the checks of motif infer/eval)."""
    import shutil

    base = ["train", "--dry-run", "--output-dir", str(tmp_path / "o"), *TINY_RUN, *TAIL]
    assert main([*base, "--model", str(tiny_checkpoint)]) == 0
    assert main([*base, "--model", str(tiny_checkpoint), "--tail-chunk", "2048"]) == 2
    assert "--tail-chunk 2048 is a per-round budget" in capsys.readouterr().err
    thinking = tmp_path / "thinking"
    shutil.copytree(tiny_checkpoint, thinking)
    config = json.loads((thinking / "tokenizer_config.json").read_text())
    (thinking / "chat_template.jinja").unlink(missing_ok=True)
    config["chat_template"] = REFORMATTING_TEMPLATE
    (thinking / "tokenizer_config.json").write_text(json.dumps(config))
    assert main([*base, "--model", str(thinking)]) == 2
    assert "--carry-over tail needs a chat template" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    ("flags", "note"),
    [
        ([], None),
        (
            ["--tail-chunk", "64"],
            "--tail-chunk 64: not used (--tail-* apply to --carry-over tail; ",
        ),
        (
            ["--method", "grpo"],  # TINY_RUN's MOTIF settings
            "--rounds 2, --k 2, --continuation-max-new-tokens 6: not used (--method grpo answers",
        ),
        (["--method", "grpo", "--rounds", "1"], "--k 2, --continuation-max-new-tokens 6: not"),
        (["--credit-buffer", "8"], "--credit-buffer 8: not used (they apply to --credit all)"),
        (["--heldout-size", "4"], "--heldout-size 4: not used (the held-out check is off"),
        (
            [*TAIL, "--tail-keep", "2"],
            "--rounds 2: not used (--carry-over tail: --tail-chunks sets",
        ),
        ([*TAIL, "--rounds", "3"], None),  # the default
        (
            ["--scoring", "paper", "--accuracy-weight", "3"],
            "--accuracy-weight 3.0: not used (--sco",
        ),
        (["--vllm-mode", "server"], "--vllm-mode server: not used (--use-vllm is off)"),
    ],
)
def test_options_the_run_does_not_use_are_named_in_the_plan(flags, note, capsys):
    """A recipe shared by several runs may set them, so they are a note, not an error."""
    from motif.cli.train import parse_config
    from motif.training.trainer import plan

    config = parse_config([*TINY_RUN, *flags])
    unused = [n for n in config.notes if "not used" in n]
    assert unused == [] if note is None else len(unused) == 1 and unused[0].startswith(note)
    assert config.motif.rounds == (1 if "grpo" in flags else config.motif.rounds)
    assert main(["train", "--dry-run", *TINY_RUN, *flags]) == 0
    out = capsys.readouterr().out
    assert all(f"note: {n}" in out and f"note: {n}" in plan(config) for n in unused)


def test_saved_config_and_identity_hold_the_tail_window_only_under_tail():
    from motif.cli.train import parse_config

    summary = parse_config(TINY_RUN).to_dict()
    assert not {"carry_over", "tail_chunk", "tail_keep"} & set(summary)  # old runs resume
    tail = parse_config([*TINY_RUN, *TAIL]).to_dict()
    assert tail["carry_over"] == "tail" and (tail["tail_chunk"], tail["tail_keep"]) == (8, 3)
    assert parse_config(["--method", "grpo", "--carry-over", "none"]).to_dict()["rounds"] == 1


def test_tail_demonstrations_are_one_single_round_response():
    from motif.answer_format import format_ok
    from motif.prompts import VANILLA_SYSTEM_PROMPT
    from motif.training.demos import build_demonstrations

    for carry_over in ("tail", "none"):
        rows = build_demonstrations("chain_sum", 3, 2, 0, carry_over=carry_over)
        assert len(rows) == 2 and rows[0]["prompt"][0]["content"] == VANILLA_SYSTEM_PROMPT
        assert format_ok(rows[0]["completion"][0]["content"], final=True)
    assert len(build_demonstrations("chain_sum", 3, 2, 0)) == 6


@pytest.mark.filterwarnings("error::FutureWarning")
def test_one_tail_step_continues_trls_completions(tiny_checkpoint, tmp_path, with_length_reward):
    """A real GRPOTrainer step with --carry-over tail: TRL's completion_ids reach the reward."""
    out = tmp_path / "tail"
    flags = ["--model", str(tiny_checkpoint), "--output-dir", str(out), "--max-steps", "1"]
    assert main(["train", *flags, *TINY_RUN, *TAIL, "--tail-chunks", "2"]) == 0
    (record,) = read_metrics(out)
    continued = record["continued_completions"]  # the completions TRL cut at C, from their ids
    assert continued == record["completions/clipped_ratio"] * 2 and "future_accuracy" in record
    assert 0 < record["continuation_tokens"] <= continued * 2 * (8 - 2 - 3)
    assert record["completions/max_length"] <= 8
    saved = (out / "motif_config.yaml").read_text()
    assert "carry_over: tail" in saved and "max_completion_length: 8" in saved


def test_a_round1_prompt_that_cannot_fit_the_context_is_refused_before_training(
    tiny_checkpoint, tmp_path, capsys
):
    """Checked by every process from the tokenizer and config (the tiny model's context is
    2048), so no process fails alone mid-run."""
    base = ["train", "--dry-run", "--output-dir", str(tmp_path / "o"), *TINY_RUN]
    base += ["--model", str(tiny_checkpoint)]
    assert main([*base, "--max-completion-length", "1700"]) == 0
    capsys.readouterr()
    assert main([*base, "--max-completion-length", "2040"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert re.search(
        r"row 0: its round-1 prompt \(\d+ tokens\) plus --max-completion-length 2040 exceeds "
        r"the model's context of 2048 tokens; lower --max-completion-length to \d+ or drop",
        err[0],
    )
    assert not (tmp_path / "o").exists()
    # under tail, round 1 is the first chunk: --tail-chunk is what to lower
    assert main([*base, *TAIL[:2], "--tail-chunk", "2040", "--tail-head", "2"]) == 2
    assert "plus --tail-chunk 2040 exceeds" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("flags", "why"),
    [
        (["--method", "grpo"], None),  # round 1 on motif's decode path uses it
        (["--method", "grpo", "--round1-generation", "trl", "--heldout-every", "5"], None),
        (["--method", "grpo", "--round1-generation", "trl"], "TRL samples round 1"),
        (["--use-vllm"], "--use-vllm samples in vLLM's own dtype"),
    ],
)
def test_rollout_dtype_is_noted_where_nothing_rolls_out_on_transformers(flags, why):
    from motif.cli.train import parse_config

    config = parse_config([*TINY_RUN, *flags, "--rollout-decode-dtype", "model"])
    notes = [n for n in config.notes if n.startswith("--rollout-decode-dtype model: not used")]
    assert notes == [] if why is None else len(notes) == 1 and why in notes[0]


def test_lora_options_beside_an_init_adapter_are_named():
    from motif.cli.train import parse_config

    config = parse_config([*TINY_RUN, "--init-adapter", "runs/cold", "--lora-alpha", "3"])
    assert any(
        n.startswith(
            "--lora-r 4, --lora-alpha 3, --lora-target-modules ['q_proj', 'v_proj']: not used "
            "(--init-adapter runs/cold brings its own LoRA settings)"
        )
        for n in config.notes
    ), config.notes
    assert not any("--lora" in n for n in parse_config(TINY_RUN).notes)


@pytest.mark.parametrize(
    ("flags", "shown"),
    [
        (["--min-p", "0.1"], "--min-p 0.1"),
        (["--repetition-penalty", "1.2"], "--repetition-penalty 1.2"),
        (["--generation-kwargs", '{"no_repeat_ngram_size": 3}'], "--generation-kwargs"),
    ],
)
def test_round1_settings_the_decode_path_lacks_reach_trl_and_are_noted(flags, shown):
    from motif.cli.train import parse_config
    from motif.training.config import grpo_config
    from motif.training.round1 import round1_params

    config = parse_config([*TINY_RUN, *flags])
    note = "round 1 is sampled by TRL's generate, not motif's decode path"
    assert [n for n in config.notes if n.startswith(note)] == [f"{note} ({shown})"]
    args = grpo_config(config.optim, "/tmp/unused-out", use_cuda=False)
    assert round1_params(args) is None  # TRL's own generation gets them
    plain = grpo_config(parse_config(TINY_RUN).optim, "/tmp/unused-out", use_cuda=False)
    assert round1_params(plain) is not None and plain.min_p is None


def test_generation_kwargs_must_be_a_mapping():
    from motif.cli.train import parse_config
    from motif.errors import ConfigError

    with pytest.raises(ConfigError, match="--generation-kwargs must be a JSON mapping"):
        parse_config([*TINY_RUN, "--generation-kwargs", "[1, 2]"])
