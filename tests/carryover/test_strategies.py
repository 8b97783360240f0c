"""Carry-over strategies as objects (issue 32): every registered strategy answers the same
questions, and what each answers is its own (prompt, carried text, budget, stop test, reading)."""

from __future__ import annotations

from typing import get_args

import pytest

from motif.carryover import (
    CARRY_OVERS,
    CarryOver,
    CarryOverName,
    OnePass,
    SummaryCarryOver,
    TailCarryOver,
    TailWindow,
    carry_over_class,
    make_carry_over,
    stored_carry_over,
)
from motif.config import ProtocolArgs
from motif.errors import ConfigError
from motif.prompts import round_messages
from motif.protocol import Protocol

TEXT = "<reasoning>4 + 7 = 11</reasoning>\n<answer>so far 11, \\boxed{11}</answer>"


def protocol_args(name: str) -> ProtocolArgs:
    """Small, valid options for each strategy (tail: a window that leaves room to write)."""
    if name == "tail":
        return ProtocolArgs(
            carry_over=name, tail_chunk=64, tail_head=4, tail_keep=16, tail_chunks=3
        )
    return ProtocolArgs(carry_over=name)


def test_the_names_are_listed_once_and_typed():
    assert CARRY_OVERS == ("summary", "tail", "none")
    assert set(get_args(CarryOverName)) == set(CARRY_OVERS)
    assert [carry_over_class(n).name for n in CARRY_OVERS] == list(CARRY_OVERS)


@pytest.mark.parametrize("name", CARRY_OVERS)
def test_options_and_protocol_build_the_same_strategy(name):
    """The run's options and the engine's Protocol never disagree on the strategy (a name the
    builder did not know used to fall through to summary)."""
    args = protocol_args(name)
    strategy = args.strategy()
    assert type(strategy) is carry_over_class(name) and strategy.rounds == args.rounds
    assert args.protocol().carry == strategy


def test_a_strategy_that_does_not_say_how_to_build_it_is_refused():
    class Unfinished(CarryOver):
        name = "unfinished"

    with pytest.raises(NotImplementedError, match="Unfinished"):
        Unfinished.make(2, "paper", None)


@pytest.mark.parametrize(
    ("name", "rounds", "window", "message"),
    [
        ("none", 2, None, "one pass"),
        ("tail", 3, None, "needs a TailWindow"),
        ("tail", 2, TailWindow(64, 0, None, 3), "max_chunks == rounds"),
        ("summary", 3, TailWindow(64, 0, None, 3), "only applies to carry_over='tail'"),
    ],
)
def test_protocol_fields_that_do_not_belong_together_are_refused(name, rounds, window, message):
    with pytest.raises(ValueError, match=message):
        make_carry_over(name, rounds, "paper", window)
    with pytest.raises(ConfigError, match="carry_over must be one of summary, tail, none"):
        make_carry_over("memory", 3)


def test_stored_names_read_back_runs_from_before_carry_overs_as_summary():
    assert stored_carry_over(None) is SummaryCarryOver
    assert stored_carry_over("tail") is TailCarryOver
    with pytest.raises(ConfigError, match="carry_over must be one of"):
        stored_carry_over("memory")


def test_summary_round_prompts_carry_the_summary_where_the_chat_says():
    carry = SummaryCarryOver(rounds=3, rule="paper")
    assert carry.carried(TEXT) == "so far 11, \\boxed{11}"
    chat = carry.chat("Q?", 2, "so far 11")
    assert chat == round_messages("Q?", 2, 3, "so far 11")
    assert chat.carried == ('Q? Progress in round 1: "', "so far 11", '"')
    assert carry.chat("Q?", 1).carried is None
    assert SummaryCarryOver(rounds=3, rule="strict").carried("no tags") == ""


def test_one_prompt_and_nothing_carried_in_text_for_tail_and_one_pass():
    for carry in (TailCarryOver(TailWindow(64, 4, 16, 3)), OnePass()):
        assert carry.carried(TEXT) == ""
        assert carry.chat("Q?", 2, "ignored") == round_messages("Q?", 1, 1)
        assert carry.chat("Q?", 2).carried is None
    tail = TailCarryOver(TailWindow(64, 4, 16, 3))
    assert tail.prefix(list(range(30))) == [0, 1, 2, 3, *range(14, 30)]
    assert OnePass().prefix([1, 2]) is None and tail.tail_window() == TailWindow(64, 4, 16, 3)


def test_budgets_and_the_options_that_set_them():
    summary, tail, one = SummaryCarryOver(3), TailCarryOver(TailWindow(64, 4, 16, 3)), OnePass()
    assert [summary.max_new_tokens(i, 96, 192) for i in (1, 2, 3)] == [96, 192, 192]
    assert summary.max_new_tokens(2, 96, None) == 96
    assert [tail.max_new_tokens(i, 96, 192) for i in (1, 2)] == [64, 64 - 4 - 16]
    assert one.max_new_tokens(1, 96, 192) == 96
    assert summary.largest_budget(96, 192) == (192, "--later-max-new-tokens")
    assert tail.largest_budget(96, 192) == (64, "--tail-chunk")
    assert one.largest_budget(96, 192) == (96, "--max-new-tokens")
    assert summary.budget_option(2).startswith("--later-max-new-tokens")
    assert (
        tail.budget_option(1).startswith("--tail-chunk")
        and one.budget_option(1) == "--max-new-tokens"
    )
    assert tail.sets_budgets and not summary.sets_budgets and not one.sets_budgets


def test_stop_tests():
    summary, tail = SummaryCarryOver(3), TailCarryOver(TailWindow(64, 4, 16, 3))
    assert summary.finished(TEXT, truncated=False, early_stop=True)
    assert not summary.finished(TEXT, truncated=False, early_stop=False)  # the paper runs all
    assert not summary.finished("<answer>no box</answer>", truncated=False, early_stop=True)
    assert tail.finished("", truncated=False, early_stop=False)  # the thought reached its EOS
    assert not tail.finished("", truncated=True, early_stop=False)


def test_which_text_the_answer_is_read_from():
    texts = ["<reasoning>a", "b</reasoning><answer>\\boxed{1}</answer>"]
    assert TailCarryOver.answer_text(texts) == "".join(texts)
    assert TailCarryOver.read_texts(texts) == ["".join(texts)]
    assert SummaryCarryOver.answer_text(texts) == texts[-1]
    assert SummaryCarryOver.read_texts(texts) == texts and OnePass.answer_text([]) == ""


def test_words_and_labels():
    assert SummaryCarryOver.heading(2, 12, 5, ", truncated") == "Round 2 (12 tokens, truncated)"
    assert TailCarryOver.heading(2, 12, 5) == "Chunk 2 (12 new tokens, 5 carried)"
    assert OnePass.heading(1, 12, 0) == "One pass (12 tokens)"
    assert SummaryCarryOver.label(3) == "3 rounds" and SummaryCarryOver.label(1) == "1 round"
    assert TailCarryOver.label(3, 64) == "tail 3 chunks of 64" and OnePass.label(1) == "one pass"


def test_identity_and_unused_options():
    args = protocol_args("tail")
    assert args.strategy().identity() == {
        "window": {"chunk": 64, "head": 4, "keep": 16, "chunks": 3}
    }
    assert SummaryCarryOver(3).identity() == {} == OnePass().identity()
    notes = TailCarryOver.unused_options(args)
    assert notes[1] == ("protocol", ("summary_rule",), "--carry-over tail carries tokens")
    assert SummaryCarryOver.unused_options(protocol_args("summary")) == []
    assert OnePass.unused_options(protocol_args("none"))[0][2] == "one round (--carry-over none)"


def test_grid_cells_ask_their_strategy():
    assert SummaryCarryOver.cell_largest_context(3, 64) == 128
    assert TailCarryOver.cell_total_budget(3, 64, 0, None) == 64 + 2 * 32
    assert TailCarryOver.cell_options(3, 64) == {"rounds": None, "tail_chunk": 64, "tail_chunks": 3}
    assert SummaryCarryOver.suggest_cell(64, 192, 0, None) == "use summary:3x64"
    assert OnePass.suggest_cell(64, 192, 0, None) == "use none:1x192"
    with pytest.raises(ConfigError, match="none is one pass; write none:1x192"):
        OnePass.check_cell(3, 64, "'none:3x64'")


def test_protocol_delegates_to_its_strategy():
    protocol = Protocol(rounds=3)
    assert protocol.summary(TEXT) == protocol.carry.carried(TEXT)
    assert protocol.messages("Q?", 2, "s") == protocol.carry.chat("Q?", 2, "s")
    assert not protocol.continues_turn
    tail = Protocol(rounds=3, carry_over="tail", window=TailWindow(64, 4, 16, 3))
    assert tail.continues_turn and tail.summary(TEXT) == ""
