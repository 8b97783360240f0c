"""Carry-over strategies: Delethink's tail window and the grid cells' budget bookkeeping."""

from __future__ import annotations

import pytest

from motif.carryover import GridCell, TailWindow, check_carry_over
from motif.errors import ConfigError


def test_paper_defaults():
    window = TailWindow()
    assert (window.chunk, window.head, window.keep_tail, window.max_chunks) == (8192, 100, 4096, 5)
    assert window.new_tokens(1) == 8192 and window.new_tokens(2) == 8192 - 100 - 4096
    # With h = 0 the total is the paper's C + (I - 1)(C - m) = 24,576 for C = 8K.
    assert TailWindow(head=0).total_budget == 8192 + 4 * 4096


@pytest.mark.parametrize(
    ("thought", "expected"),
    [
        ([], []),
        ([1, 2, 3], [1, 2, 3]),
        ([1, 2, 3, 4, 5], [1, 2, 3, 4, 5]),  # h + m covers the whole thought
        ([1, 2, 3, 4, 5, 6, 7], [1, 2, 5, 6, 7]),  # first 2 and last 3
    ],
)
def test_carried_keeps_head_and_tail(thought, expected):
    window = TailWindow(chunk=8, head=2, tail=3, max_chunks=3)
    assert window.carried(thought) == expected
    # The context after the prompt never holds more than C tokens.
    assert len(window.carried(thought)) + window.later_new_tokens <= window.chunk


def test_carried_without_tail():
    assert TailWindow(chunk=8, head=2, tail=0).carried(list(range(10))) == [0, 1]


@pytest.mark.parametrize(
    ("kwargs", "option"),
    [
        ({"chunk": 8, "head": 2, "tail": 6}, "--tail-chunk"),  # no room to write
        ({"chunk": 8, "head": 0, "tail": 8}, "--tail-keep"),  # m >= C
        ({"chunk": 8, "head": 0, "tail": 4, "max_chunks": 0}, "--tail-chunks"),
        ({"chunk": 0}, "--tail-chunk"),
        ({"chunk": 8, "head": -1, "tail": 2}, "--tail-head"),
    ],
)
def test_bad_windows_name_the_option(kwargs, option):
    with pytest.raises(ConfigError, match=option):
        TailWindow(**kwargs)


def test_unknown_strategy():
    check_carry_over("tail")
    with pytest.raises(ConfigError, match="--carry-over must be one of summary, tail, none"):
        check_carry_over("tails")


def test_grid_cells_count_their_budgets():
    assert GridCell("summary", 3, 64).total_budget() == 192
    assert GridCell("none", 1, 192).total_budget() == 192
    tail = GridCell("tail", 3, 64)
    assert tail.total_budget(head=8, keep=24) == 64 + 2 * (64 - 8 - 24)
    assert tail.largest_context() == 64 and tail.label == "tail-3x64"
    # a summary round re-reads the previous answer (up to B) besides writing B
    assert GridCell("summary", 3, 64).largest_context() == 128
    assert GridCell("summary", 1, 64).largest_context() == 64
    assert GridCell("none", 1, 192).largest_context() == 192
