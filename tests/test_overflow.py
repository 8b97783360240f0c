"""Context overflow in any round: found per problem and round, recorded as cut, counted, logged;
the run goes on (issue 14, item 12)."""

from __future__ import annotations

import json
import logging

import pytest

from eval_fakes import ContextBackend, write_set
from motif.backends.base import (
    ContextOverflow,
    SamplingParams,
)
from motif.carryover import TailWindow
from motif.cli.main import main
from motif.config import GenerationArgs, ModelArgs, ProtocolArgs
from motif.engine import RolloutEngine
from motif.eval.runner import EvalArgs, run_eval
from motif.protocol import Protocol


def test_engine_cuts_the_trajectory_at_the_round_that_does_not_fit():
    questions = ["What is 2 + 2?", "What is 3 + 4? " + "x" * 30]
    engine = RolloutEngine(
        ContextBackend(limit=60, reply_words=8), Protocol(rounds=3), SamplingParams(8)
    )
    short, long = engine.run(questions)
    assert short.cut_round == 3 and len(short.rounds) == 2 and not short.stopped_early
    assert long.cut_round == 2 and len(long.rounds) == 1
    assert long.to_dict()["cut_round"] == 2


def test_engine_round_one_overflow_leaves_no_round():
    engine = RolloutEngine(ContextBackend(limit=5), Protocol(rounds=2), SamplingParams(8))
    (traj,) = engine.run(["What is 2 + 2?"])
    assert traj.cut_round == 1 and traj.rounds == [] and traj.final_text == ""


def test_continue_from_cuts_all_k_continuations_of_a_long_round_two():
    engine = RolloutEngine(ContextBackend(limit=40), Protocol(rounds=2), SamplingParams(8))
    (group,) = engine.continue_from(["What is 2 + 2?"], ["x" * 50], k=3)
    assert [t.cut_round for t in group] == [2, 2, 2]
    assert not any(t.stopped_early for t in group)


def test_eval_records_cut_problems_and_goes_on(tmp_path, caplog):
    """Round 1 fits, round 2 (question + summary) does not: that problem is cut in round 2 and
    ungraded, the others are graded, the summary counts it and a re-run does not redo it."""
    args = EvalArgs(benchmark=write_set(tmp_path), output_dir=str(tmp_path / "out"), batch_size=1)
    calls = []

    def loader(model_args):
        calls.append(model_args)
        return ContextBackend(limit=130, reply_words=3)

    with caplog.at_level(logging.WARNING, logger="motif.eval"):
        summary = run_eval(
            args, ModelArgs(), GenerationArgs(), ProtocolArgs(rounds=2), backend_loader=loader
        )
    metrics = summary["metrics"]
    assert metrics["context_overflow"] == {"cut": 1, "cut_by_round": {"2": 1}}
    assert metrics["problems"] == 3 and metrics["correct"] == 2 and metrics["ungraded"] == 1
    rows = [json.loads(x) for x in (tmp_path / "out" / "samples.jsonl").read_text().splitlines()]
    cut = next(r for r in rows if r["id"] == "long")
    assert cut["cut_round"] == 2 and cut["correct"] is None and len(cut["rounds"]) == 1
    assert any("problem long" in m and "round 2" in m for m in caplog.messages)
    again = run_eval(
        args, ModelArgs(), GenerationArgs(), ProtocolArgs(rounds=2), backend_loader=loader
    )
    assert len(calls) == 1 and again["metrics"]["context_overflow"]["cut"] == 1


def test_overflow_summary_line():
    from motif.cli.eval import overflow_line

    line = overflow_line({"context_overflow": {"cut": 2, "cut_by_round": {"2": 1, "3": 1}}})
    assert "2 trajectories cut" in line and "round 2: 1" in line and "round 3: 1" in line
    assert "none" in overflow_line({"context_overflow": {"cut": 0, "cut_by_round": {}}})


@pytest.fixture(scope="module")
def short_context_checkpoint(tmp_path_factory, tokenizer):
    """A tiny checkpoint whose context fits round 1 of `What is 2 + 2?` with 4 new tokens,
    but not round 2 (the same question plus the carried summary)."""
    from conftest import build_tiny_model
    from motif.prompts import round_messages

    chat = round_messages("What is 2 + 2?", 1, 2)
    text = tokenizer.apply_chat_template(chat, add_generation_prompt=True, tokenize=False)
    first = len(tokenizer(text, add_special_tokens=False)["input_ids"])
    model = build_tiny_model(tokenizer)
    model.config.max_position_embeddings = first + 4 + 3
    path = tmp_path_factory.mktemp("short-ctx")
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def test_motif_eval_command_counts_the_cut_and_exits_0(
    short_context_checkpoint, tmp_path, capsys, caplog
):
    data = tmp_path / "d.jsonl"
    data.write_text('{"question": "What is 2 + 2?", "answer": "4"}\n')
    flags = ["--model", str(short_context_checkpoint), "--benchmark", str(data)]
    flags += ["--rounds", "2", "--max-new-tokens", "4", "--later-max-new-tokens", "4"]
    flags += ["--output-dir", str(tmp_path / "out"), "--decode", "generate"]
    assert main(["eval", *flags]) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "context overflow: 1 trajectory cut and ungraded (round 2: 1)" in out
    assert "--later-max-new-tokens" in out and "round 1's budget" not in out
    assert any("problem 0" in m and "round 2" in m for m in caplog.messages)
    # --context-overflow error stops instead (a different identity: another directory); the
    # round-2 prompt alone fills the context and cutting its summary would not make it fit
    flags[-3] = str(tmp_path / "out2")
    assert main(["eval", *flags, "--context-overflow", "error"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "exceeds the model's context" in err[0]
    assert err[0].endswith("in round 2: shorten the question")


# --------------------------------------------------------------------------- fixes offered


def small_context_backend(tokenizer, limit: int, overflow: str = "error"):
    from conftest import build_sharp_model
    from motif.backends.hf import TransformersBackend

    model = build_sharp_model(tokenizer, seed=3)
    model.config.max_position_embeddings = limit
    return TransformersBackend(model, tokenizer, overflow=overflow, decode_dtype="model")


def prompt_length(tokenizer, chat) -> int:
    from motif.backends.hf import render_ids

    return len(render_ids(tokenizer, [chat])[0])


def overflow_message(engine, question="What is 2 + 3?") -> str:
    with pytest.raises(ContextOverflow) as error:
        engine.run([question])
    return str(error.value)


def test_a_round_one_overflow_names_round_one_budget_only(tokenizer):
    from motif.prompts import round_messages

    room = prompt_length(tokenizer, round_messages("What is 2 + 3?", 1, 3)) + 12
    backend = small_context_backend(tokenizer, room)
    engine = RolloutEngine(backend, Protocol(rounds=3), SamplingParams(16), SamplingParams(4))
    message = overflow_message(engine)
    assert message.endswith("in round 1: lower --max-new-tokens (round 1's budget)")
    assert "--later-max-new-tokens" not in message and "truncate" not in message


def test_a_later_overflow_names_the_later_budget_and_the_summary_cut(tokenizer):
    from motif.prompts import round_messages

    question, summary = "What is 2 + 3?", "five " * 20
    full = prompt_length(tokenizer, round_messages(question, 2, 3, summary))
    bare = prompt_length(tokenizer, round_messages(question, 2, 3, ""))
    room = full + 10

    def continued(overflow, later, limit=room):  # round 2 carries `summary`, `later` new tokens
        backend = small_context_backend(tokenizer, limit, overflow)
        engine = RolloutEngine(backend, Protocol(3), SamplingParams(8), SamplingParams(later))
        with pytest.raises(ContextOverflow) as error:
            engine.continue_from([question], [f"<answer>{summary}</answer>"], k=1)
        return str(error.value)

    message = continued("error", room - bare)  # fits by cutting the summary, or a lower budget
    assert message.endswith(
        "in round 2: lower --later-max-new-tokens (the budget of rounds 2..n), or cut the "
        "carried summary (--context-overflow truncate; overflow='truncate_left' in the library)"
    )
    assert "round 1's budget" not in message
    message = continued("error", full - bare + 3, full - 2)  # the prompt alone is too long
    assert message.endswith(
        "in round 2: lower --later-max-new-tokens (the budget of rounds 2..n) and cut the "
        "carried summary (--context-overflow truncate; overflow='truncate_left' in the library)"
    )
    # already cutting the summary: that fix is not offered again
    message = continued("truncate_left", room - bare + 5)
    assert message.endswith(
        "cut to nothing in round 2: lower --later-max-new-tokens (the budget of rounds 2..n)"
    )


@pytest.mark.parametrize(
    ("protocol", "named"),
    [
        (
            Protocol(
                rounds=2, carry_over="tail", window=TailWindow(chunk=16, head=2, max_chunks=2)
            ),
            "--tail-chunk",
        ),
        (Protocol(rounds=1, carry_over="none"), "--max-new-tokens"),
    ],
)
def test_tail_and_one_pass_overflows_name_their_budget(tokenizer, protocol, named):
    from motif.prompts import round_messages

    room = prompt_length(tokenizer, round_messages("What is 2 + 3?", 1, 1)) + 12
    engine = RolloutEngine(small_context_backend(tokenizer, room), protocol, SamplingParams(16))
    message = overflow_message(engine)
    assert f"in round 1: lower {named}" in message
    assert "later-max-new-tokens" not in message and "truncate" not in message
    if protocol.carry_over == "tail":
        assert "--max-new-tokens" not in message


@pytest.mark.parametrize(
    ("proto", "gen", "option"),
    [
        (ProtocolArgs(), GenerationArgs(max_new_tokens=8, later_max_new_tokens=64), "--later"),
        (
            ProtocolArgs(rounds=1),
            GenerationArgs(max_new_tokens=64, later_max_new_tokens=99),
            "--max",
        ),
        (ProtocolArgs(carry_over="tail", tail_chunk=64, tail_head=8), GenerationArgs(), "--tail"),
    ],
)
def test_vllm_budget_checks_name_the_option_that_sets_the_budget(monkeypatch, proto, gen, option):
    import motif.backends.vllm_options as options
    from motif.backends.vllm_options import VllmArgs
    from motif.errors import ConfigError
    from motif.runtime import protocol_generation

    model = ModelArgs(backend="vllm")
    monkeypatch.setattr(options, "vllm_installed", lambda: True)
    monkeypatch.setattr(options, "gpu_visible", lambda: True)
    used = protocol_generation(gen, proto)
    with pytest.raises(ConfigError, match=f"raise it to at least 65 or lower {option}") as error:
        options.plan_backend(model, VllmArgs(max_model_len=64), used, protocol=proto)
    assert str(error.value).count("--") == 2  # --max-model-len and the one budget option


def test_training_round_one_overflow_names_the_budget_option(tokenizer):
    from conftest import fake_policy_trainer
    from motif.prompts import round_messages
    from motif.training.policy import TrainingPolicy
    from motif.training.round1 import round1_rollout

    chat = round_messages("What is 2 + 3?", 1, 1)
    policy = small_context_backend(tokenizer, prompt_length(tokenizer, chat) + 4).model
    rollout = round1_rollout(SamplingParams(8), TrainingPolicy(4, "model"))
    with pytest.raises(ValueError, match=r"lower round 1's budget \(--max-completion-length; "):
        rollout([chat], fake_policy_trainer(policy, tokenizer))


def test_cut_continuations_name_the_continuation_budget(caplog):
    from motif.engine import Trajectory
    from motif.training.config import MotifArgs
    from motif.training.reward import FutureAccuracyReward

    cut = Trajectory("Q", cut_round=2)
    for args, option in [
        (MotifArgs(rounds=3), "lower --continuation-max-new-tokens"),
        (MotifArgs(carry_over="tail", tail_chunk=64, tail_head=8), "lower --tail-chunk"),
    ]:
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="motif.training.reward"):
            FutureAccuracyReward(args)._log(None, [None], [[cut]], 0, 0.0, ["1"])
        assert "1 continuation(s) cut" in caplog.text and option in caplog.text
