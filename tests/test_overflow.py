"""Context overflow in any round: found per problem and round, recorded as cut, counted, logged;
the run goes on (issue 14, item 12)."""

from __future__ import annotations

import json
import logging

import pytest

from motif.backends.base import GenerationBackend, GenerationOutput, SamplingParams
from motif.cli.main import main
from motif.config import GenerationArgs, ModelArgs, ProtocolArgs
from motif.engine import RolloutEngine
from motif.eval.runner import EvalArgs, run_eval
from motif.protocol import Protocol


class ContextBackend(GenerationBackend):
    """Answers ``<answer>\\boxed{ANSWER}</answer>`` padded to a length; a user turn longer than
    ``limit`` characters is flagged as a context overflow (what ``overflow="skip"`` does)."""

    def __init__(self, limit: int, reply_words: int = 5) -> None:
        super().__init__(64)
        self.limit = limit
        self.reply_words = reply_words

    def _generate_chunk(self, prompts, params: SamplingParams, num_samples, offset):
        outs = []
        for chat in prompts:
            content = chat[-1]["content"]
            for _ in range(num_samples):
                if len(content) > self.limit:
                    outs.append(GenerationOutput("", len(content), 0, False, context_overflow=True))
                    continue
                answer = "4" if "2 + 2" in content else "7"
                text = "pad " * self.reply_words + f"<answer>\\boxed{{{answer}}}</answer>"
                outs.append(GenerationOutput(text, len(content), self.reply_words, False))
        return outs


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


def write_set(tmp_path):
    path = tmp_path / "set.jsonl"
    rows = [
        {"id": "short", "question": "What is 2 + 2?", "answer": "4"},
        {"id": "long", "question": "What is 3 + 4? " + "x" * 30, "answer": "7"},
        {"id": "after", "question": "What is 2 + 2? again", "answer": "4"},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


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
    from motif.protocol import round_messages

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
    assert "context overflow: 1 trajectories cut and ungraded (round 2: 1)" in out
    assert any("problem 0" in m and "round 2" in m for m in caplog.messages)
    # --context-overflow error stops instead (a different identity: another directory)
    flags[-3] = str(tmp_path / "out2")
    assert main(["eval", *flags, "--context-overflow", "error"]) == 2
    assert "exceeds the model's context" in capsys.readouterr().err
