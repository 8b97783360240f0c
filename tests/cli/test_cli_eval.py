"""``motif eval``'s own lines: the overflow hint names only what would help (motif.cli.eval)."""

from __future__ import annotations

import pytest

from motif.cli.eval import overflow_line


def _cut(by_round: dict[str, int]) -> dict:
    return {"context_overflow": {"cut": sum(by_round.values()), "cut_by_round": by_round}}


def test_round_one_cuts_name_round_ones_budget_only():
    line = overflow_line(_cut({"1": 1}))
    assert "1 trajectory cut" in line and "--max-new-tokens (round 1's budget)" in line
    assert "--later-max-new-tokens" not in line and "truncate" not in line


def test_later_round_cuts_name_the_later_budget_and_the_summary_cut():
    line = overflow_line(_cut({"2": 1, "3": 1}))
    assert "2 trajectories cut" in line and "round 2: 1" in line and "round 3: 1" in line
    assert "--later-max-new-tokens" in line and "--context-overflow truncate" in line
    assert "round 1's budget" not in line


@pytest.mark.parametrize("rounds", [{"1": 2}, {"3": 2}])
def test_tail_cuts_name_the_chunk(rounds):
    line = overflow_line(_cut(rounds), carry_over="tail")
    assert "--tail-chunk" in line and "--later-max-new-tokens" not in line


def test_no_cut_says_so():
    assert "none" in overflow_line(_cut({}))


def test_eval_help_states_the_later_default_it_uses(capsys):
    from motif.cli.main import main

    with pytest.raises(SystemExit):
        main(["eval", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "Default: twice --max-new-tokens" in text
    assert (
        "Default: twice --max-new-tokens (the paper: 1024 in round 1, 2048 after). (default"
        not in text
    )
