"""``--credit trajectory``: expansion, advantages per round, per-trajectory weights, tiny runs."""

from __future__ import annotations

import contextlib

import pytest

from motif.backends.base import GenerationBackend, GenerationOutput
from motif.cli.main import main
from motif.training.trajectory import VLLM_KEYS, Row, TrajectoryBatch, expand_rows
from train_fakes import TINY_RUN, adapter_tensors, read_metrics

TAIL = ["--carry-over", "tail", "--tail-chunk", "8", "--tail-head", "2", "--tail-keep", "3"]
RIGHT = "<reasoning>\nadd\n</reasoning>\n<answer>\nthe sum is 7\n</answer>"
WRONG = "<reasoning>\nadd\n</reasoning>\n<answer>\nthe sum is 9\n</answer>"


def parts(*lengths):
    """One trajectory's rounds: (prompt ids, completion ids) of the given completion lengths."""
    return [([1, 2], list(range(n))) for n in lengths]


# --------------------------------------------------------------------------- expansion


def test_expansion_keeps_every_row_with_its_trajectorys_advantage():
    rounds = [parts(3), parts(2, 4, 1), parts(5, 5)]
    rows = expand_rows(rounds, [0.5, -1.0, 2.0])
    assert len(rows) == 1 + 3 + 2  # the sum of rounds
    assert [(r.trajectory, r.round) for r in rows] == [
        (0, 1), (1, 1), (1, 2), (1, 3), (2, 1), (2, 2),
    ]  # fmt: skip
    assert [r.advantage for r in rows] == [0.5, -1.0, -1.0, -1.0, 2.0, 2.0]


def test_trace_norm_gives_a_one_and_a_five_round_trajectory_the_same_weight():
    """Delethink's rule: each trajectory's rows weigh 1 in total, whatever its rounds."""
    rows = expand_rows([parts(10), parts(10, 10, 10, 10, 10)], [1.0, 1.0], "trace")
    total = [sum(r.units for r in rows if r.trajectory == t) for t in (0, 1)]
    assert total == [pytest.approx(1.0), pytest.approx(1.0)]
    tokens = expand_rows([parts(10), parts(10, 10, 10, 10, 10)], [1.0, 1.0], "token")
    assert [sum(r.units for r in tokens if r.trajectory == t) for t in (0, 1)] == [10, 50]


def test_a_row_trl_masked_is_out_of_the_loss_and_bad_input_is_refused():
    rows = expand_rows([parts(2, 3)], [1.0], masked=[True])
    assert rows[0].masked and rows[0].units == 0 and rows[1].units == pytest.approx(3 / 5)
    with pytest.raises(ValueError, match="norm"):
        expand_rows([parts(1)], [1.0], "length")
    with pytest.raises(ValueError, match="2 trajectories but 1"):
        expand_rows([parts(1), parts(1)], [1.0])
    with pytest.raises(RuntimeError, match="2 rows to expand, none"):
        TrajectoryBatch(None, 2).take(2)


# --------------------------------------------------------------------------- TRL's advantages


class TokenScripted(GenerationBackend):
    """Renders with the real tokenizer; answers a chat's last user turn by ``script``."""

    def __init__(self, tokenizer, script):
        super().__init__(64)
        self.tokenizer, self.script, self.chats = tokenizer, script, {}

    def render(self, chats):
        out = []
        for chat in chats:
            ids = self.tokenizer.apply_chat_template(list(chat), add_generation_prompt=True)
            ids = list(ids["input_ids"] if hasattr(ids, "keys") else ids)
            self.chats[tuple(ids)] = chat
            out.append(ids)
        return out

    def _generate_chunk(self, prompts, params, num_samples, offset):
        outs = []
        for ids in prompts:
            chat = self.chats[tuple(ids)]
            for s in range(num_samples):
                text = self.script(chat[-1]["content"], s)
                new = self.tokenizer.encode(text) + [self.tokenizer.eos_token_id]
                outs.append(GenerationOutput(text, len(ids), len(new), False, token_ids=new))
        return outs


def carry_on(user, sample):
    """The last round boxes 7 when the carried progress says 7, else 9; others pass it on."""
    if "final" in user:
        return "<answer>\\boxed{7}</answer>" if "is 7" in user else "<answer>\\boxed{9}</answer>"
    return f"<answer> {user.split('Progress')[-1][-20:]} </answer>"


@pytest.mark.filterwarnings("error::FutureWarning")
def test_a_wrong_hand_over_is_negative_on_every_round_it_touched(
    tiny_checkpoint, tokenizer, tmp_path, monkeypatch
):
    """TRL's own advantage path on the tiny model, m=2 trajectories of one question: round 1
    scripted (one hands over a wrong sum), rounds 2..3 scripted from what was carried."""

    from motif.cli.train import parse_config
    from motif.compat import library_deprecations
    from motif.training.policy import TrainingPolicy
    from motif.training.trainer import build_trainer

    @contextlib.contextmanager
    def backend(self):
        yield TokenScripted(tokenizer, carry_on)

    monkeypatch.setattr(TrainingPolicy, "backend", backend)
    flags = [*TINY_RUN, "--rounds", "3", "--round1-generation", "trl", "--credit", "trajectory"]
    config = parse_config(["--model", str(tiny_checkpoint), "--output-dir", str(tmp_path), *flags])
    trainer = build_trainer(config)
    assert trainer.credit is trainer.reward_funcs[0].credit
    replies = [tokenizer.encode(t) + [tokenizer.eos_token_id] for t in (WRONG, RIGHT)]
    trainer._generate_single_turn = lambda *a, **k: ([list(r) for r in replies], None)
    trainer.model.train()
    rows = [{"prompt": [{"role": "user", "content": "Q"}], "question": "Q", "answer": "7"}] * 2
    with library_deprecations():  # TRL reads a deprecated transformers property
        out = trainer._generate_and_score_completions([dict(r) for r in rows])
    mask, advantages = out["completion_mask"].bool(), out["advantages"]
    assert advantages.shape == out["completion_ids"].shape and len(mask) == 6  # 2 x 3 rounds
    for row in range(6):
        tokens = advantages[row][mask[row]]
        assert len(tokens) and ((tokens < 0) if row < 3 else (tokens > 0)).all(), row
    per_trajectory = [float(advantages[r].sum()) for r in range(6)]
    wrong, right = sum(per_trajectory[:3]), sum(per_trajectory[3:])  # trace: weights sum to 1
    assert wrong == pytest.approx(-right, rel=1e-3) and right > 0
    assert float(out["num_items_in_batch"]) == pytest.approx(2.0)  # two trajectories
    last = out["completion_ids"][2][mask[2]].tolist()  # the wrong one's round 3, as sampled
    assert last == tokenizer.encode("<answer>\\boxed{9}</answer>") + [tokenizer.eos_token_id]
    summary = tokenizer.decode(out["prompt_ids"][1][out["prompt_mask"][1].bool()])
    assert "is 9" in summary  # round 2 of the wrong one carried its wrong sum
    assert trainer._metrics["train"]["trajectory/rows"] == [6.0]


# --------------------------------------------------------------------------- real runs


@pytest.mark.filterwarnings("error::FutureWarning")
@pytest.mark.parametrize("carry", ["summary", "tail"])
def test_two_trajectory_steps_change_the_adapter_and_log_metrics(
    carry, tiny_checkpoint, tmp_path, with_length_reward, capsys
):
    out = tmp_path / carry
    flags = ["--model", str(tiny_checkpoint), "--output-dir", str(out), "--max-steps", "2"]
    extra = [*TAIL, "--tail-chunks", "2"] if carry == "tail" else []
    code = main(["train", *flags, *TINY_RUN, *extra, "--credit", "trajectory"])
    assert code == 0, capsys.readouterr().err
    lora_b = {k: v for k, v in adapter_tensors(out).items() if "lora_B" in k}
    assert lora_b and any(v.abs().sum() > 0 for v in lora_b.values())
    first = adapter_tensors(out / "checkpoint-1")
    assert any((first[k] != v).any() for k, v in lora_b.items())  # step 2 changed it again
    records = read_metrics(out)
    assert [r["step"] for r in records] == [1, 2]
    for key in ("trajectory/rows", "trajectory/rounds", "trajectory/tokens", "future_accuracy"):
        assert key in records[-1], key
    assert records[-1]["trajectory/rows"] >= 4  # 4 trajectories, one row per round at least
    saved = (out / "motif_config.yaml").read_text()
    assert "credit: trajectory" in saved and "trajectory_loss_norm: trace" in saved
    assert "loss_type: dapo" in saved


# --------------------------------------------------------------------------- options


def test_the_dry_run_plan_names_the_credit_and_its_norm(capsys):
    base = ["train", "--dry-run", "--dataset", "reasoning_gym:chain_sum", "--dataset-size", "4"]
    assert main([*base, "--credit", "trajectory", "--trajectory-loss-norm", "token"]) == 0
    plan = capsys.readouterr().out
    assert "credit: trajectory;" in plan and "InftyThink+" in plan
    assert "--loss-type grpo replaced by dapo" in plan


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--rounds", "1"], "--credit trajectory trains every round of a trajectory, and this"),
        (["--carry-over", "none"], "use --carry-over summary or tail, or --credit first"),
        (["--method", "grpo"], "--method grpo answers in one round: use --method motif"),
        ([*TAIL, "--tail-chunks", "1"], "use --tail-chunks 2 or more"),
        (["--beta", "0.1"], "--beta 0.1 is not supported: use --beta 0"),
        (["--trajectory-loss-norm", "mean"], "--trajectory-loss-norm must be trace or token"),
    ],
)
def test_trajectory_credit_with_one_round_is_one_line_exit_2(flags, message, capsys):
    assert main(["train", "--dry-run", "--credit", "trajectory", *flags]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and err.count("\n") == 1


def test_row_units_follow_its_weight():
    assert Row([1], [2, 3], 1.0, 0.25, 0, 1).units == 0.5


# --------------------------------------------------------------------------- micro-batches


def _one_sgd_step(micro_batches, credit, tiny_checkpoint, tokenizer, out, monkeypatch):
    """One step of scripted trajectories (2 questions x 2 replies, 3 rounds: 12 rows under
    trajectory credit) under plain SGD, so the LoRA update is the learning rate times the
    gradient."""
    from motif.cli.train import parse_config
    from motif.compat import library_deprecations
    from motif.training.policy import TrainingPolicy
    from motif.training.trainer import build_trainer

    @contextlib.contextmanager
    def backend(self):
        yield TokenScripted(tokenizer, carry_on)

    monkeypatch.setattr(TrainingPolicy, "backend", backend)
    flags = [*TINY_RUN, "--rounds", "3", "--round1-generation", "trl", "--credit", credit]
    flags += ["--prompts-per-device", "2", "--micro-batches", str(micro_batches), "--optim"]
    flags += ["sgd", "--lora-dropout", "0", "--bf16", "false", "--max-steps", "1"]
    config = parse_config(["--model", str(tiny_checkpoint), "--output-dir", str(out), *flags])
    trainer = build_trainer(config)
    texts = (WRONG, RIGHT + " sure", RIGHT, WRONG + " and more")  # variance in each group
    replies = [tokenizer.encode(t) + [tokenizer.eos_token_id] for t in texts]
    trainer._generate_single_turn = lambda *a, **k: ([list(r) for r in replies], None)
    with library_deprecations():
        trainer.train()
    calls = [r.get("trajectory/rows") for r in read_metrics(out)]
    named = trainer.model.named_parameters()
    return {n: p.detach().clone() for n, p in named if "lora_B" in n}, calls, trainer.args


@pytest.mark.parametrize("credit", ["trajectory", "first"])
def test_micro_batches_split_the_step_without_changing_the_update(
    credit, tiny_checkpoint, tokenizer, tmp_path, monkeypatch, with_length_reward
):
    """``--micro-batches 2``: TRL accumulates two halves of the step's rows (trajectory
    credit: of the 12 expanded rows); the SGD update (the gradient) equals the one-forward
    step's."""
    args = (credit, tiny_checkpoint, tokenizer)
    whole, rows_1, args_1 = _one_sgd_step(1, *args, tmp_path / "a", monkeypatch)
    split, rows_2, args_2 = _one_sgd_step(2, *args, tmp_path / "b", monkeypatch)
    assert (args_1.per_device_train_batch_size, args_1.gradient_accumulation_steps) == (4, 1)
    assert (args_2.per_device_train_batch_size, args_2.gradient_accumulation_steps) == (2, 2)
    assert args_2.steps_per_generation == 2
    assert rows_1 == rows_2 == ([12.0] if credit == "trajectory" else [None])
    assert any(v.abs().sum() > 0 for v in whole.values())
    for name, value in whole.items():
        assert split[name] == pytest.approx(value, rel=1e-4, abs=1e-7), name


@pytest.mark.parametrize("flags", [["--micro-batches", "3"], ["--micro-batches", "0"]])
def test_micro_batches_must_divide_the_replies(flags, capsys):
    assert main(["train", "--dry-run", "--num-generations", "4", *flags]) == 2
    err = capsys.readouterr().err
    assert "--micro-batches must divide the 4 replies per step and device" in err
    assert err.count("\n") == 1


def test_the_plan_counts_rows_per_forward_with_micro_batches(capsys):
    base = ["train", "--dry-run", "--dataset", "reasoning_gym:chain_sum", "--dataset-size", "4"]
    flags = ["--prompts-per-device", "2", "--num-generations", "4", "--rounds", "3"]
    assert main([*base, *flags, "--credit", "trajectory", "--micro-batches", "4"]) == 0
    plan = capsys.readouterr().out
    assert "up to 6 rows per forward (2 replies x 3 rounds" in plan
    assert "trained in 4 micro-batches" in plan


# --------------------------------------------------------------------------- vLLM keys


@pytest.mark.parametrize("width", ["token", "sequence"])
def test_under_vllm_round_one_keeps_its_correction_and_later_rounds_get_ratio_one(
    width, tiny_checkpoint, tokenizer, tmp_path, monkeypatch
):
    """TRL's ``--use-vllm`` batch adds vLLM's round-1 sampling log-probs and importance
    ratios (per token, or per sequence); the expansion keeps them on round 1's rows and gives
    later rounds ratio 1 and the policy's own log-probs."""
    import torch
    from trl import GRPOTrainer

    from motif.cli.train import parse_config
    from motif.compat import library_deprecations
    from motif.training.policy import TrainingPolicy
    from motif.training.trainer import build_trainer

    @contextlib.contextmanager
    def backend(self):
        yield TokenScripted(tokenizer, carry_on)

    own = GRPOTrainer._generate_and_score_completions

    def with_vllm_keys(self, inputs):
        batch = own(self, inputs)
        rows, tokens = batch["completion_ids"].shape
        batch["importance_sampling_ratio"] = torch.full(
            (rows, tokens if width == "token" else 1), 0.5
        )
        batch["sampling_per_token_logps"] = torch.full((rows, tokens), -3.0)
        batch["old_per_token_logps"] = torch.zeros(rows, tokens)
        return batch

    monkeypatch.setattr(TrainingPolicy, "backend", backend)
    monkeypatch.setattr(GRPOTrainer, "_generate_and_score_completions", with_vllm_keys)
    flags = [*TINY_RUN, "--rounds", "3", "--round1-generation", "trl", "--credit", "trajectory"]
    config = parse_config(["--model", str(tiny_checkpoint), "--output-dir", str(tmp_path), *flags])
    trainer = build_trainer(config)
    replies = [tokenizer.encode(t) + [tokenizer.eos_token_id] for t in (WRONG, RIGHT)]
    trainer._generate_single_turn = lambda *a, **k: ([list(r) for r in replies], None)
    trainer.model.train()
    rows = [{"prompt": [{"role": "user", "content": "Q"}], "question": "Q", "answer": "7"}] * 2
    with library_deprecations():
        out = trainer._generate_and_score_completions([dict(r) for r in rows])
    mask = out["completion_mask"].bool()
    ratio, sampled, old = (out[k] for k in (*VLLM_KEYS, "old_per_token_logps"))
    assert ratio.shape == ((6, mask.size(1)) if width == "token" else (6, 1))
    for row in range(6):  # rows: trajectory 0's rounds 1..3, then trajectory 1's
        first = row % 3 == 0
        tokens = ratio[row][mask[row]] if width == "token" else ratio[row]
        assert (tokens == (0.5 if first else 1.0)).all(), row
        expected = torch.full_like(sampled[row], -3.0) if first else old[row]
        assert torch.equal(sampled[row][mask[row]], expected[mask[row]]), row
    assert not (old[1][mask[1]] == 0).all()  # later rounds: the policy's log-probs, recomputed
