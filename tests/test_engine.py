"""The rollout engine on a scripted fake backend: calls per round, chunking, carry-over, early stop."""

from __future__ import annotations

import pytest

from fakes import ScriptedBackend
from motif.backends.base import SamplingParams
from motif.engine import RolloutEngine
from motif.protocol import Protocol

GREEDY = SamplingParams(max_new_tokens=32)


def echo_round(chat, sample):
    """Reply naming the round it saw and the sample index, in the paper's tags."""
    user = chat[-1]["content"]
    rnd = 1 if "Progress in round" not in user else int(user.split("Progress in round ")[1][0]) + 1
    return f"<reasoning>r{rnd}</reasoning><answer>s{rnd}-{sample}</answer>"


def test_one_generate_call_per_round_for_all_trajectories():
    backend = ScriptedBackend(echo_round)
    engine = RolloutEngine(backend, Protocol(rounds=3), GREEDY)
    trajs = engine.run([f"Q{i}" for i in range(5)])
    assert backend.calls == [(5, 1), (5, 1), (5, 1)]
    assert all(len(t.rounds) == 3 for t in trajs)
    assert [r.summary for r in trajs[0].rounds] == ["s1-0", "s2-0", "s3-0"]


def test_summary_carried_and_final_instruction():
    backend = ScriptedBackend(echo_round)
    engine = RolloutEngine(backend, Protocol(rounds=3), GREEDY)
    traj = engine.run(["What?"])[0]
    assert traj.rounds[0].prompt == "What?"
    assert traj.rounds[1].prompt == 'What? Progress in round 1: "s1-0"'
    assert traj.rounds[2].prompt == (
        'What? Progress in round 2: "s2-0" Current round is the final (third) round. '
        "Provide a final answer."
    )
    # every round is a fresh two-message chat
    assert all(len(chat) == 2 for chat in backend.chats)


def test_untagged_reply_is_carried_whole_under_paper_rule():
    backend = ScriptedBackend(lambda chat, s: "  plain words  ")
    traj = RolloutEngine(backend, Protocol(rounds=2), GREEDY).run(["Q"])[0]
    assert traj.rounds[1].prompt.startswith('Q Progress in round 1: "plain words" Current')
    strict = RolloutEngine(backend, Protocol(rounds=2, summary_rule="strict"), GREEDY)
    assert strict.run(["Q"])[0].rounds[1].prompt.startswith('Q Progress in round 1: "" Current')


def test_chunking_respects_max_batch_size():
    backend = ScriptedBackend(echo_round, max_batch_size=4)
    RolloutEngine(backend, Protocol(rounds=2), GREEDY).run([f"Q{i}" for i in range(10)])
    assert backend.calls == [(10, 1), (10, 1)]
    assert backend.chunks == [4, 4, 2, 4, 4, 2]


def test_num_samples_groups_by_question():
    backend = ScriptedBackend(echo_round)
    trajs = RolloutEngine(backend, Protocol(rounds=2), GREEDY).run(["A", "B"], num_samples=3)
    assert [t.question for t in trajs] == ["A"] * 3 + ["B"] * 3
    assert [t.rounds[0].summary for t in trajs[:3]] == ["s1-0", "s1-1", "s1-2"]
    assert backend.calls == [(2, 3), (6, 1)]


def test_continue_from_shares_round_two_prompt():
    backend = ScriptedBackend(echo_round)
    engine = RolloutEngine(backend, Protocol(rounds=3), GREEDY, SamplingParams(max_new_tokens=64))
    firsts = ["<answer>p1</answer>", "<answer>p2</answer>", "untagged"]
    groups = engine.continue_from(["Q1", "Q2", "Q3"], firsts, k=4)
    # round 2: one call, 3 distinct prompts x 4 samples; round 3: one call for all 12
    assert backend.calls == [(3, 4), (12, 1)]
    assert [len(g) for g in groups] == [4, 4, 4]
    for group, first in zip(groups, firsts, strict=True):
        assert all(t.rounds[0].text == first for t in group)
        assert [len(t.rounds) for t in group] == [3, 3, 3, 3]
    assert groups[0][2].rounds[1].summary == "s2-2"
    assert groups[2][0].rounds[1].prompt == 'Q3 Progress in round 1: "untagged"'


def test_continue_from_single_round_protocol_is_noop():
    backend = ScriptedBackend(echo_round)
    groups = RolloutEngine(backend, Protocol(rounds=1), GREEDY).continue_from(["Q"], ["x"], k=2)
    assert backend.calls == [] and len(groups[0]) == 2


def boxed_in_round_one(chat, sample):
    user = chat[-1]["content"]
    if user.startswith("easy") and "Progress" not in user:
        return "<reasoning>done</reasoning><answer>\\boxed{4}</answer>"
    return "<reasoning>more</reasoning><answer>partial</answer>"


def test_early_stop_off_by_default_and_on_as_option():
    questions = ["easy one", "hard one"]
    off = ScriptedBackend(boxed_in_round_one)
    trajs = RolloutEngine(off, Protocol(rounds=3), GREEDY).run(questions)
    assert [len(t.rounds) for t in trajs] == [3, 3]
    on = ScriptedBackend(boxed_in_round_one)
    trajs = RolloutEngine(on, Protocol(rounds=3), GREEDY, early_stop=True).run(questions)
    assert [len(t.rounds) for t in trajs] == [1, 3]
    assert trajs[0].stopped_early and not trajs[1].stopped_early
    assert on.calls == [(2, 1), (1, 1), (1, 1)]


def test_token_counts_and_truncation_recorded():
    backend = ScriptedBackend(lambda chat, s: "word " * 10)
    traj = RolloutEngine(backend, Protocol(rounds=2), SamplingParams(max_new_tokens=5)).run(["Q"])[
        0
    ]
    assert [r.completion_tokens for r in traj.rounds] == [5, 5]
    assert all(r.truncated for r in traj.rounds)
    assert traj.completion_tokens == 10
    assert traj.to_dict()["rounds"][0]["truncated"] is True


@pytest.mark.parametrize("bad", [[""], ["  "], ["ok", ""]])
def test_empty_questions_rejected(bad):
    engine = RolloutEngine(ScriptedBackend(echo_round), Protocol(rounds=2), GREEDY)
    with pytest.raises(ValueError, match="empty"):
        engine.run(bad)


def test_continue_from_validates():
    engine = RolloutEngine(ScriptedBackend(echo_round), Protocol(rounds=2), GREEDY)
    with pytest.raises(ValueError, match="round-1 responses"):
        engine.continue_from(["Q"], ["a", "b"], k=2)
    with pytest.raises(ValueError, match="k must be"):
        engine.continue_from(["Q"], ["a"], k=0)


def concludes_in_round_two(chat, sample):
    """``A`` concludes (a boxed answer) in round 2; every other question hands on a summary."""
    user = chat[-1]["content"]
    if user.startswith("A") and "Progress in round 1" in user:
        return "<reasoning>done</reasoning><answer>\\boxed{7}</answer>"
    return "<reasoning>work</reasoning><answer>half way</answer>"


def test_model_ended_rounds_stop_at_a_conclusion_or_at_phi():
    backend = ScriptedBackend(concludes_in_round_two)
    protocol = Protocol(rounds=4, round_end="model")
    a, b = RolloutEngine(backend, protocol, GREEDY).run(["A?", "B?"])
    assert backend.calls == [(2, 1), (2, 1), (1, 1), (1, 1)]  # A leaves after round 2
    assert len(a.rounds) == 2 and a.stopped_early and a.rounds[-1].answer == "\\boxed{7}"
    assert len(b.rounds) == 4 and not b.stopped_early  # ran to phi without concluding
    assert [r.prompt for r in b.rounds[1:3]] == [
        'B? Progress in round 1: "half way"',
        'B? Progress in round 2: "half way"',
    ]
    assert b.rounds[3].prompt.endswith(
        "(round 4 of at most 4). Conclude: provide the final answer in \\boxed{}."
    )
    assert a.to_dict()["carry_over"] == "summary"  # read back as a summary trajectory
    assert a.final_text == a.rounds[-1].text
