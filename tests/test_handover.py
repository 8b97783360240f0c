"""motif.handover: the hand-over watch (issue 33, item 3), each flag raised and not, and its rates."""

from __future__ import annotations

import pytest

from motif.answer_format import format_reply
from motif.carryover import SummaryCarryOver, TailCarryOver, TailWindow
from motif.engine import RoundRecord, Trajectory
from motif.handover import (
    FLAGS,
    MIN_STATE_CHARS,
    HandOver,
    degenerate_state,
    handover_rates,
    holds_answer,
    row_rates,
    run_strategy,
    same_state,
    watch_rounds,
    watch_row,
    watch_trajectory,
)

PROGRESS = "Computed the partial sum of the first two terms: 17."
OTHER = "Added the third term to the partial sum; checking the carry next."


def never_same(content: str, answer: str) -> bool:
    raise AssertionError("a string match must not call the grader")


def test_answer_smuggled_in_a_box_counts_even_when_the_final_answer_is_wrong():
    # the gold would be 8: the watch compares with the final answer (7), never with the gold
    assert holds_answer(f"{PROGRESS} So \\boxed{{7}}", "7", never_same)
    assert holds_answer(f"{PROGRESS} So \\boxed{{ 7 }}.", "$7$", never_same)


def test_answer_smuggled_as_a_line_of_its_own():
    assert holds_answer(f"{PROGRESS}\nAnswer: 42.", "42", never_same)
    assert holds_answer(f"{PROGRESS}\n  $42$ ", "42", never_same)
    assert not holds_answer(f"{PROGRESS}\nthe value 42 is close", "42", never_same)


def test_a_box_that_grades_equal_is_the_answer():
    """motif.grading decides a box that differs as a string: 1/2 is 0.5, 1/3 is not."""
    assert holds_answer(f"{PROGRESS} \\boxed{{\\frac{{1}}{{2}}}}", "0.5")
    assert not holds_answer(f"{PROGRESS} \\boxed{{\\frac{{1}}{{3}}}}", "0.5")


def test_no_smuggling_without_the_answer_or_without_a_final_answer():
    assert not holds_answer(PROGRESS, "7", never_same)
    assert not holds_answer(f"{PROGRESS} \\boxed{{7}}", None, never_same)
    assert not holds_answer(f"{PROGRESS} \\boxed{{6}}", "7", lambda a, b: False)


@pytest.mark.parametrize(
    ("state", "why"),
    [
        ("", "empty"),
        ("  \n\t ", "empty"),
        ("x = 42", "short"),  # 4 non-blank characters
        ("a" * (MIN_STATE_CHARS - 1), "short"),
        ("step " * 12, "repeated"),
        ("so far so far so far", "repeated"),
        ("=-" * 20, "repeated"),
        ("..........", "repeated"),
        (PROGRESS, None),
        ("so far so far", None),  # two repeats: below MIN_REPEATS, long enough
    ],
)
def test_degenerate_states(state, why):
    assert degenerate_state(state) == why


def test_copied_state_is_the_previous_one_up_to_whitespace():
    assert same_state(f"  {PROGRESS}\n", PROGRESS.replace(" ", "\n "))
    assert not same_state(OTHER, PROGRESS)
    assert not same_state("", "")  # an empty state is degenerate, not copied


def texts_of(*answers: str) -> list[str]:
    return [format_reply("work", a) for a in answers]


def test_each_flag_of_a_three_round_trajectory():
    """Round 1 boxes an answer (not the last round) and hands it over; round 2 copies round
    1's state; round 3 is the last round: it hands nothing over and is never flagged."""
    texts = texts_of(f"{PROGRESS} \\boxed{{7}}", f"{PROGRESS}  \\boxed{{7}}", "\\boxed{7}")
    states = [f"{PROGRESS} \\boxed{{7}}", f"{PROGRESS}  \\boxed{{7}}", "\\boxed{7}"]
    watched = watch_rounds(texts, states, "7", never_same)
    assert [h.round for h in watched] == [1, 2]
    assert watched[0] == HandOver(1, smuggled=True, degenerate=None, copied=False, boxed=True)
    assert watched[1] == HandOver(2, smuggled=True, degenerate=None, copied=True, boxed=True)
    assert watched[1].flags() == ("smuggled", "copied", "boxed")


def test_a_clean_trajectory_raises_nothing():
    texts = texts_of(PROGRESS, OTHER, "\\boxed{7}")
    watched = watch_rounds(texts, [PROGRESS, OTHER, "\\boxed{7}"], "7", never_same)
    assert [h.flags() for h in watched] == [(), ()]


def test_box_in_round_1_of_3_only():
    texts = texts_of(f"{PROGRESS} \\boxed{{5}}", OTHER, "\\boxed{7}")
    watched = watch_rounds(texts, [PROGRESS, OTHER, ""], "7", lambda a, b: False)
    assert [h.flags() for h in watched] == [("boxed",), ()]


def test_watch_rounds_refuses_unequal_lengths():
    with pytest.raises(ValueError, match="2 round texts but 1 states"):
        watch_rounds(["a", "b"], ["a"], None)


def hand(r: int, *flags: str) -> HandOver:
    return HandOver(
        r, "smuggled" in flags, "empty" if "degenerate" in flags else None, "copied" in flags,
        "boxed" in flags,
    )  # fmt: skip


def test_rates_per_round_are_flagged_over_handed():
    """Three trajectories of 3 rounds: two hand over twice, one stopped after round 1 (none)."""
    watched = [
        [hand(1, "smuggled", "boxed"), hand(2, "copied")],
        [hand(1, "degenerate"), hand(2, "smuggled", "copied")],
        [],  # stopped early in round 1: its only round is its last, it hands nothing over
    ]
    rates = handover_rates(watched, rounds=3)
    assert rates["handed"] == [2, 2] and all(len(rates[flag]) == 2 for flag in FLAGS)
    assert rates["counts"] == {
        "smuggled": [1, 1], "degenerate": [1, 0], "copied": [0, 2], "boxed": [1, 0]
    }  # fmt: skip
    assert rates["smuggled"] == [0.5, 0.5] and rates["degenerate"] == [0.5, 0.0]
    assert rates["copied"] == [0.0, 1.0] and rates["boxed"] == [0.5, 0.0]
    assert rates["overall"] == {"smuggled": 2 / 4, "degenerate": 1 / 4, "copied": 2 / 4,
                                "boxed": 1 / 4}  # fmt: skip
    assert rates["any_round"] == {"smuggled": 2 / 3, "degenerate": 1 / 3, "copied": 2 / 3,
                                  "boxed": 1 / 3}  # fmt: skip


def test_rates_with_nothing_handed_are_none():
    rates = handover_rates([[], []], rounds=3)
    assert rates["handed"] == [0, 0] and rates["smuggled"] == [None, None]
    assert rates["overall"]["copied"] is None and rates["any_round"]["boxed"] == 0.0
    one = handover_rates([], rounds=1)
    assert one["handed"] == [] and one["boxed"] == [] and one["any_round"]["boxed"] is None


def row(texts: list[str], answer: str | None, carry_over: str = "summary", cut=None) -> dict:
    rounds = [{"round": i, "text": t} for i, t in enumerate(texts, start=1)]
    return {"answer": answer, "cut_round": cut, "carry_over": carry_over, "rounds": rounds}


def test_rows_read_states_with_the_runs_rule():
    """A row stores no summary: the run's strategy reads each state again from the text."""
    texts = [f"<answer>\n{PROGRESS}\n\\boxed{{7}}\n</answer>", "untagged \\boxed{7}", "\\boxed{7}"]
    paper = run_strategy({"rounds": 3, "summary_rule": "paper"})
    strict = run_strategy({"rounds": 3, "summary_rule": "strict"})
    assert isinstance(paper, SummaryCarryOver) and strict.rule == "strict"
    by_paper = watch_row(row(texts, "7"), paper, never_same)
    by_strict = watch_row(row(texts, "7"), strict, never_same)
    # round 2 is untagged: the paper rule carries it whole (a smuggled box), strict carries ""
    assert by_paper[1].flags() == ("smuggled", "boxed")
    assert by_strict[1].flags() == ("degenerate", "boxed")
    assert by_strict[1].degenerate == "empty"


def test_a_cut_trajectory_has_no_final_answer_to_smuggle():
    texts = [f"<answer>\n{PROGRESS} \\boxed{{7}}\n</answer>", OTHER]
    carry = run_strategy({"rounds": 3})
    assert watch_row(row(texts, None, cut=3), carry, never_same)[0].flags() == ("boxed",)


def test_strategies_that_hand_no_state_get_no_block():
    assert run_strategy({"carry_over": "tail", "rounds": 4}) is None
    assert run_strategy(None, "none") is None
    assert row_rates([row(["a", "b"], "7", carry_over="tail")], rounds=2) is None
    block = row_rates([row(texts_of(PROGRESS, "\\boxed{7}"), "7")], rounds=2)
    assert block is not None and block["handed"] == [1] and block["smuggled"] == [0.0]


def test_watch_trajectory_reads_the_engine_records():
    def record(r: int, text: str, summary: str) -> RoundRecord:
        return RoundRecord(r, "p", text, None, None, summary, 5, 5, False)

    final = format_reply("done", "\\boxed{7}")
    traj = Trajectory("q", [record(1, "a \\boxed{7}", "\\boxed{7}"), record(2, final, "")])
    (only,) = watch_trajectory(traj, SummaryCarryOver(rounds=2), never_same)
    assert only.flags() == ("smuggled", "degenerate", "boxed") and only.degenerate == "short"
    tail = TailCarryOver(window=TailWindow(chunk=64, head=8, tail=8, max_chunks=2))
    assert watch_trajectory(traj, tail) is None
