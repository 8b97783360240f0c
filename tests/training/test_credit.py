"""--credit all: every round trained by its own future accuracy (issue 17).

Protocol logic on the scripted backend (tests/fakes.py: words are tokens); the trainer paths on
the tiny random checkpoint with scripted replies and continuations; vLLM through its fakes.
"""

from __future__ import annotations

import contextlib
import json
import math
import random
from fractions import Fraction
from types import SimpleNamespace

import pytest

from fakes import ScriptedBackend
from motif.backends.base import SamplingParams
from motif.cli.main import main
from motif.engine import RolloutEngine
from motif.protocol import Protocol
from motif.training.config import MotifArgs
from motif.training.credit import (
    HISTORY_KEY,
    ROUND_KEY,
    Credit,
    State,
    StateBuffer,
    group_round,
    harvest,
    round_metrics,
)
from scripted_vllm import FakeClient, scripted_llm

GREEDY = SamplingParams(max_new_tokens=16)
RIGHT = "<reasoning>\nadd\n</reasoning>\n<answer>\nthe sum is 7\n</answer>"
WRONG = "<reasoning>\nadd\n</reasoning>\n<answer>\nthe sum is 9\n</answer>"


def final_round(chat, sample):
    """The last round boxes 7 when the carried progress says 7, else 9; other rounds pass the
    progress on, the k-th sample marking itself."""
    user = chat[1]["content"]
    if "final" in user:
        return (
            "<answer>\n\\boxed{7}\n</answer>" if "is 7" in user else "<answer>\\boxed{9}</answer>"
        )
    return f"<answer> {user.split('Progress')[-1][-20:]} s{sample} </answer>"


def credit(rounds=3, m=2, share=None, size=8, seed=0):
    return Credit(Protocol(rounds=rounds), m, share or 1 / rounds, size, seed)


def question_rows(groups, m=2):
    return [
        {"prompt": [{"role": "user", "content": f"Q{g}"}], "question": f"Q{g}", "answer": "7"}
        for g in range(groups)
        for _ in range(m)
    ]


@pytest.mark.parametrize(
    ("share", "rounds", "expected"),
    [
        (Fraction(1, 3), 3, [1, 2, 3, 1, 2, 3, 1]),
        (Fraction(1, 2), 2, [1, 2, 1, 2, 1]),
        (Fraction(1, 2), 3, [1, 2, 1, 3, 1, 2]),
        (Fraction(2, 3), 3, [1, 1, 2, 1, 1, 3]),
        (Fraction(1, 4), 2, [1, 2, 2, 2, 1]),
    ],
)
def test_schedule_spreads_round_one_and_cycles_the_rest(share, rounds, expected):
    assert [group_round(t, share, rounds) for t in range(len(expected))] == expected


def test_mix_replaces_whole_groups_and_falls_back_to_questions():
    c = credit(rounds=3, m=2)
    rows = question_rows(3)
    first = c.mix(rows, generation=0)  # slots 0,1,2 -> rounds 1,2,3; the buffer is empty
    assert [r[ROUND_KEY] for r in first] == [1] * 6 and all(r[HISTORY_KEY] is None for r in first)
    assert [r["question"] for r in first] == [r["question"] for r in rows]
    reply = c.reply([], "Q9", RIGHT, 5)
    state = State("Q9", "7", reply.rounds)
    c.buffer.add([state])
    mixed = c.mix(rows, generation=0)
    assert [r[ROUND_KEY] for r in mixed] == [1, 1, 2, 2, 1, 1]  # no round-3 state yet
    assert mixed[2] == mixed[3] and mixed[2] is not mixed[3]  # a whole group, separate dicts
    user = mixed[2]["prompt"][1]["content"]
    assert user.startswith("Q9") and 'Progress in round 1: "the sum is 7"' in user
    assert mixed[2]["answer"] == "7" and mixed[2][HISTORY_KEY] == reply.rounds
    with pytest.raises(ValueError, match="groups of m=2"):
        c.mix(rows[:3], generation=0)


def test_every_process_schedules_the_same_rounds():
    c = credit(rounds=3, m=2)
    for q in ("A", "B", "C"):
        c.buffer.add([State(q, "7", c.reply([], q, RIGHT, 1).rounds)])
        c.buffer.add([State(q, "7", c.reply(c.reply([], q, RIGHT, 1).rounds, q, WRONG, 1).rounds)])
    ranks = [c.mix(question_rows(4), generation=3, rank=rank) for rank in range(2)]
    assert [r[ROUND_KEY] for r in ranks[0]] == [r[ROUND_KEY] for r in ranks[1]]
    assert {r[ROUND_KEY] for r in ranks[0]} == {1, 2, 3}


def test_state_buffer_keeps_the_newest_per_round():
    c = credit(rounds=3)
    buffer = StateBuffer(2, 3)
    states = [State(f"Q{i}", "1", c.reply([], f"Q{i}", RIGHT, 1).rounds) for i in range(3)]
    buffer.add(states)
    assert buffer.count(2) == 2 and buffer.count(3) == 0
    assert {buffer.draw(2, random.Random(s)).question for s in range(20)} == {"Q1", "Q2"}
    assert buffer.draw(3, random.Random(0)) is None
    with pytest.raises(ValueError, match="round 1"):
        buffer.add([State("Q", "1", [])])


def test_continue_partials_from_mixed_rounds_shares_each_next_prompt():
    backend = ScriptedBackend(final_round)
    engine = RolloutEngine(backend, Protocol(rounds=3), GREEDY)
    c = credit(rounds=3)
    one = c.reply([], "Q1", RIGHT, 3)  # round 1 done: rounds 2, 3 to go
    two = c.reply(c.reply([], "Q2", "x", 1).rounds, "Q2", WRONG, 3)  # round 2 done
    last = c.reply(two.rounds, "Q2", "<answer>\\boxed{9}</answer>", 2)  # nothing to go
    groups = engine.continue_partials([one, two, last], k=2)
    # round 2: Q1's prompt once x k; round 3: Q2's fresh prompt once x k, then Q1's 2 copies
    assert backend.calls == [(1, 2), (1, 2), (2, 1)]
    assert [len(t.rounds) for g in groups for t in g] == [3] * 6
    assert groups[2][0].rounds == last.rounds and not groups[2][0].stopped_early
    assert [t.final_text.count("boxed{7}") for t in groups[0]] == [1, 1]
    assert [t.final_text.count("boxed{9}") for t in groups[1]] == [1, 1]
    assert groups[0][0].rounds[0] is one.rounds[0] and len(one.rounds) == 1  # not changed
    with pytest.raises(ValueError, match="k must be >= 1"):
        engine.continue_partials([one], k=0)


def test_harvest_takes_each_new_state_once_and_none_past_a_cut():
    engine = RolloutEngine(ScriptedBackend(final_round), Protocol(rounds=3), GREEDY)
    c = credit(rounds=3)
    groups = engine.continue_partials([c.reply([], "Q1", RIGHT, 3)], k=2)
    states = harvest(groups, ["7"], [1], 3)
    # round 2: the reply (shared by both), round 3: each continuation's round 2
    assert [s.round for s in states] == [2, 3, 3]
    assert states[0].history[0].text == RIGHT
    assert {s.history[1].text for s in states[1:]} == {t.rounds[1].text for t in groups[0]}
    groups[0][1].cut_round, groups[0][1].rounds = 3, groups[0][1].rounds[:2]
    assert [s.round for s in harvest(groups, ["7"], [1], 3)] == [2, 3]
    groups[0][0].cut_round, groups[0][0].rounds = 2, groups[0][0].rounds[:1]
    assert [s.round for s in harvest(groups, ["7"], [1], 3)] == [2]
    assert harvest(groups, ["7"], [2], 3) == []  # from round 2 on: only round-3 states


def test_harvest_takes_no_state_past_a_trajectory_that_ended():
    """A trajectory that concluded before the last round (rounds the model ends itself,
    --round-end model) reaches no later state: a round-3 prompt carrying a concluded round 2's
    boxed answer would train answer copying."""
    engine = RolloutEngine(ScriptedBackend(final_round), Protocol(rounds=3), GREEDY)
    c = credit(rounds=3)
    groups = engine.continue_partials([c.reply([], "Q1", RIGHT, 3)], k=2)
    groups[0][1].rounds = groups[0][1].rounds[:2]  # concluded in round 2: no cut, no round 3
    assert [s.round for s in harvest(groups, ["7"], [1], 3)] == [2, 3]


@pytest.mark.parametrize(
    ("totals", "rounds", "expected"),
    [
        (
            [2, 0, 1, 1],
            [1, 1, 2, 2],
            {
                "round1/reward": 1,
                "round1/frac_reward_zero_std": 0,
                "round2/reward": 1,
                "round2/frac_reward_zero_std": 1,
            },
        ),
        ([2, 2, 0, 1], [3, 3, 3, 3], {"round3/groups": 2, "round3/frac_reward_zero_std": 0.5}),
        ([math.nan, 1, 0, 0], [2, 2, 1, 1], {"round2/reward": 1, "round2/frac_reward_zero_std": 1}),
    ],
)
def test_round_metrics(totals, rounds, expected):
    got = round_metrics(totals, rounds, [3, 4, 5, 6], 2)
    for key, value in expected.items():
        assert got[key] == value, key
    first = rounds[0]
    assert got[f"round{first}/reply_tokens"] == sum(
        n for n, r in zip([3, 4, 5, 6], rounds, strict=True) if r == first
    )


# --------------------------------------------------------------------------- the reward


def fake_trainer():
    from accelerate import Accelerator

    return SimpleNamespace(accelerator=Accelerator(cpu=True), use_vllm=False)


@pytest.fixture
def scripted_policy(monkeypatch):
    """Continuations from :func:`final_round` instead of the trainer's policy."""
    from motif.training.policy import TrainingPolicy

    backends = []

    @contextlib.contextmanager
    def backend(self):
        backends.append(ScriptedBackend(final_round))
        yield backends[-1]

    monkeypatch.setattr(TrainingPolicy, "backend", backend)
    return backends


def credit_reward(rounds=3, k=2):
    from motif.training.reward import FutureAccuracyReward

    motif = MotifArgs(rounds=rounds, k=k, credit="all")
    c = Credit.from_args(motif, 2, 0)
    return FutureAccuracyReward(motif, credit=c).bind(fake_trainer())


def test_reward_scores_each_round_from_its_state(scripted_policy):
    reward = credit_reward()
    start = reward.credit.reply([], "Q", "<answer>start</answer>", 2).rounds
    logged = {}
    rewards = reward(
        prompts=[None] * 6,
        completions=[RIGHT, WRONG, RIGHT, WRONG, "\\boxed{7}", "<answer>\\boxed{7}</answer>"],
        question=["Q"] * 6,
        answer=["7"] * 6,
        completion_ids=[[1] * 4] * 6,
        credit_round=[1, 1, 2, 2, 3, 3],
        credit_history=[None, None, start, start, start * 2, start * 2],
        log_metric=lambda key, value: logged.__setitem__(key, value),
    )
    # round 1: the round-3 prompt carries round 2's pass-through (" ...is 7 s0 "), so it boxes 7
    assert rewards == [2.0, 0.0, 2.0, 0.0, 0.0, 2.0]  # round 3: its own answer, in <answer>
    assert [b.calls for b in scripted_policy] == [[(2, 2), (4, 1)], [(2, 2)]]
    assert logged["round1/future_accuracy"] == 0.5 and logged["round3/future_accuracy"] == 0.5
    assert logged["round3/continuation_tokens"] == 0 < logged["round2/continuation_tokens"]
    assert logged["future_accuracy"] == 0.5 and logged["continuation_tokens"] > 0
    # round 1 reached 2 round-2 states and 4 round-3 states; round 2 reached 2 round-3 states
    assert reward.credit.buffer.count(2) == 2 and reward.credit.buffer.count(3) == 6


def test_a_reply_records_its_prompt_and_truncation():
    c = credit()
    first = c.reply([], "Q", "<answer>a</answer>", 5, prompt_tokens=40, truncated=True).rounds
    (record,) = first
    assert (record.prompt_tokens, record.completion_tokens, record.truncated) == (40, 5, True)
    later = c.reply(first, "Q", "<answer>b</answer>", 3).rounds
    assert later[0] is record and later[1].round == 2  # unknown prompt: 0, not cut
    assert (later[1].prompt_tokens, later[1].truncated) == (0, False)


def test_the_reward_stores_each_reply_as_motifs_round_one_generated_it(scripted_policy):
    reward = credit_reward()
    replies, real = [], reward.credit.reply
    reward.credit.reply = lambda *args: replies.append(real(*args)) or replies[-1]
    reward(
        prompts=[None] * 2,
        completions=[RIGHT, WRONG],
        question=["Q"] * 2,
        answer=["7"] * 2,
        completion_ids=[[1] * 4, [1] * 6],
        reply_prompt_tokens=[30, 31],
        reply_truncated=[False, True],
    )
    stored = [t.rounds[-1] for t in replies]
    assert [(r.prompt_tokens, r.completion_tokens, r.truncated) for r in stored] == [
        (30, 4, False),
        (31, 6, True),
    ]


def test_credit_folds_the_system_prompt_when_told():
    motif = MotifArgs(rounds=3, k=2, credit="all")
    made = Credit.from_args(motif, 2, 0, fold_system=True)
    assert made.fold_system and not Credit.from_args(motif, 2, 0).fold_system


# --------------------------------------------------------------------------- the trainer

TINY = [
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
    "--credit",
    "all",
]


@pytest.mark.filterwarnings("error::FutureWarning")
def test_a_reply_handing_over_a_wrong_state_gets_the_lower_advantage(
    tiny_checkpoint, tokenizer, tmp_path, scripted_policy
):
    """TRL's own advantage path on the tiny model: m=2 round-2 replies to one state, one
    carrying the right partial sum and one a wrong one; continuations scripted."""
    import torch

    from motif.cli.train import parse_config
    from motif.compat import library_deprecations
    from motif.training.trainer import build_trainer

    # Round 1 through TRL's generate, whose per-row call is scripted below.
    flags = ["--rounds", "3", "--round1-generation", "trl", *TINY]
    config = parse_config(["--model", str(tiny_checkpoint), "--output-dir", str(tmp_path), *flags])
    trainer = build_trainer(config)
    credit_ = trainer.credit
    assert credit_ is trainer.reward_funcs[0].credit  # made once, the reward's and the trainer's
    credit_.buffer.add(
        [State("Q", "7", credit_.reply([], "Q", "<answer>3 + 4</answer>", 4).rounds)]
    )
    replies = [tokenizer.encode(t) + [tokenizer.eos_token_id] for t in (WRONG, RIGHT)]
    seen = []

    def scripted_replies(prompt_ids, images, fields, num_generations, **kwargs):
        seen.extend(tokenizer.decode(p) for p in prompt_ids)
        return [list(r) for r in replies], None

    trainer._generate_single_turn = scripted_replies
    trainer.model.train()
    batch = credit_.mix(question_rows(1), generation=1)  # slot 1: round 2
    with library_deprecations():  # TRL reads a deprecated transformers property
        out = trainer._generate_and_score_completions(batch)
    wrong, right = out["advantages"].tolist()
    assert right > 0 > wrong
    assert all('Progress in round 1: "3 + 4"' in p for p in seen)
    metrics = trainer._metrics["train"]
    assert metrics["round2/reward"] == [pytest.approx(sum(metrics["reward"]))]
    assert metrics["round2/groups"] == [1.0] and metrics["round2/frac_reward_zero_std"] == [0.0]
    assert metrics["rewards/future_accuracy_reward/mean"] == [1.0]
    assert torch.isfinite(out["advantages"]).all()


def read_metrics(out):
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.filterwarnings("error::FutureWarning")
def test_two_steps_train_round_one_then_round_two(tiny_checkpoint, tmp_path, capsys):
    """A real run, two micro-batches per step (TRL generates for both at once): step 1 answers
    questions only (no states yet), step 2 a question and a round-2 state that step 1's
    rollouts reached; each round logs its metrics."""
    out = tmp_path / "all"
    flags = ["--model", str(tiny_checkpoint), "--output-dir", str(out), "--max-steps", "2"]
    accumulate = ["--gradient-accumulation-steps", "2", "--save-steps", "1"]
    assert main(["train", *flags, *TINY, "--rounds", "2", *accumulate]) == 0, (
        capsys.readouterr().err
    )
    first, second = read_metrics(out)
    assert first["round1/groups"] == 2.0 and "round2/groups" not in first
    assert first["round2/states"] == 4.0  # the four round-1 replies' summaries
    assert second["round1/groups"] == second["round2/groups"] == 1.0
    for key in ("reward", "frac_reward_zero_std", "reply_tokens", "future_accuracy"):
        assert f"round2/{key}" in second, key
    assert second["round2/continuation_tokens"] == 0.0  # the last round grades itself
    assert first["round1/continuation_tokens"] > 0 and "round1/continuation_seconds" in first
    saved = (out / "motif_config.yaml").read_text()
    assert "credit: all" in saved and "credit_buffer: 64" in saved
    assert "credit: all rounds; 50% of GRPO groups" in capsys.readouterr().out


# --------------------------------------------------------------------------- vLLM


@pytest.mark.parametrize("mode", ["colocate", "server"])
def test_round_two_continuations_through_the_trainers_vllm_engine(
    mode, tokenizer, default_model_dir, fake_vllm_module
):
    from accelerate import Accelerator

    from motif.training.reward import FutureAccuracyReward

    llm, client = scripted_llm(tokenizer, default_model_dir), FakeClient(tokenizer)
    vgen = SimpleNamespace(mode=mode, llm=llm if mode == "colocate" else None, vllm_client=client)
    trainer = SimpleNamespace(
        use_vllm=True,
        vllm_generation=vgen,
        processing_class=tokenizer,
        model=SimpleNamespace(
            generation_config=SimpleNamespace(eos_token_id=tokenizer.eos_token_id)
        ),
        accelerator=Accelerator(cpu=True),
    )
    motif = MotifArgs(rounds=3, k=2, continuation_max_new_tokens=32, credit="all")
    c = Credit.from_args(motif, 2, 0)
    reward = FutureAccuracyReward(motif, credit=c).bind(trainer)
    history = c.reply([], "Q", "<answer>a</answer>", 3).rounds
    rewards = reward(
        prompts=[None] * 2,
        completions=["<answer>b</answer>", "<answer>c</answer>"],
        question=["Q", "Q"],
        answer=["7", "7"],
        credit_round=[2, 2],
        credit_history=[history, history],
    )
    if mode == "colocate":
        calls = [(len(c["prompts"]), vars(c["sampling_params"][0])["n"]) for c in llm.calls]
    else:
        calls = [(n, call["n"]) for n, call in client.calls]
    assert calls == [(2, 2)]  # round 3 only: each reply's state once, k samples
    assert rewards == [0.0, 0.0] and c.buffer.count(3) == 2


@pytest.fixture
def fake_vllm_module(monkeypatch):
    import fakes_vllm

    yield from fakes_vllm.use_fake_vllm(monkeypatch)


# --------------------------------------------------------------------------- configuration


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--rounds", "1"], "--credit all trains rounds 2..n, and --rounds 1 has none"),
        (["--method", "grpo"], "--credit all trains rounds 2..n of MOTIF, and --method grpo"),
        (["--continuation-max-new-tokens", "0"], "--continuation-max-new-tokens must be >= 1"),
        (["--k", "0"], "--k must be >= 1"),
        (["--carry-over", "tail"], "--carry-over tail is not supported"),
        (["--credit-first-share", "0"], "--credit-first-share must be in (0, 1)"),
        (["--credit-first-share", "1"], "--credit-first-share must be in (0, 1)"),
        (["--credit-buffer", "0"], "--credit-buffer must be >= 1"),
        (["--credit", "every"], "--credit must be one of first, all"),
    ],
)
def test_bad_credit_is_one_line_exit_2(flags, message, capsys, tmp_path):
    assert (
        main(["train", "--dry-run", "--credit", "all", *flags, "--output-dir", str(tmp_path / "o")])
        == 2
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
    assert not (tmp_path / "o").exists()


def test_credit_options_are_saved_only_under_all():
    from motif.cli.train import parse_config

    assert not {"credit", "credit_buffer"} & set(parse_config(TINY[:-2]).to_dict())  # resume
    flat = parse_config([*TINY, "--rounds", "3", "--credit-first-share", "0.5"]).to_dict()
    assert (flat["credit"], flat["credit_first_share"], flat["credit_buffer"]) == ("all", 0.5, 64)


def test_another_trl_release_is_a_clear_error(monkeypatch):
    import trl

    from motif.errors import ConfigError
    from motif.training.credit import check_trl

    check_trl()  # the pinned release fits
    monkeypatch.setattr(trl, "__version__", "2.1.0")
    with pytest.raises(ConfigError, match="this is trl 2.1.0: install trl==1.16.0"):
        check_trl()


def test_each_private_hook_is_checked_with_its_parameters(monkeypatch):
    """Both schemes that override TRL's private methods are refused in one line when a method
    changed, naming it, even on a release inside the tested range."""
    import trl

    from motif.errors import ConfigError
    from motif.training.trajectory import check_trajectory_trl

    check_trajectory_trl()  # the pinned release fits
    monkeypatch.setattr(
        trl.GRPOTrainer, "_generate_and_score_completions", lambda self, batch: batch
    )
    with pytest.raises(ConfigError, match=r"_generate_and_score_completions\(inputs\)"):
        check_trajectory_trl()
