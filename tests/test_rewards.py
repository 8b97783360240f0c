"""Rewards: format (paper vs fixed), accuracy, MOTIF future accuracy, column checks."""

from __future__ import annotations

import logging
import pickle

import pytest

from motif.engine import RoundRecord, Trajectory
from motif.grading import GradeStats
from motif.rewards import (
    AccuracyReward,
    MissingColumnError,
    accuracy_reward,
    completion_text,
    format_rewards,
    future_accuracy,
    paper_accuracy_score,
    paper_future_score,
    require_columns,
    soft_format_reward,
    strict_format_reward,
    xmlcount_reward,
)

ONE_LINE = "<reasoning>\nadd them\n</reasoning>\n<answer>\n\\boxed{18}\n</answer>\n"
ONE_LINE_NO_NL = ONE_LINE.rstrip("\n")
MULTI_LINE = (
    "<reasoning>\n16 - 3 - 4 = 9 eggs.\n9 * 2 = 18 dollars.\n</reasoning>\n"
    "<answer>\nShe makes\n\\boxed{18}\n</answer>"
)
INLINE = "<reasoning>add them</reasoning> <answer>\\boxed{18}</answer>"
TWO_BLOCKS = ONE_LINE + ONE_LINE
UNTAGGED = "She makes \\boxed{18} dollars."


def _reward(fn, text: str) -> float:
    return fn(prompts=["q"], completions=[text])[0]


# --------------------------------------------------------------------------- format

# Hand-computed with the reference's count_xml: 4 x 0.125, minus 0.001 x the text after the
# last "\n</answer>\n" (the whole text when it is missing), minus 0.001 x (the text after
# the last "\n</answer>", minus 1).
XML_PAPER = {
    "one_line": 0.5,
    "one_line_no_nl": 0.5 - 0.001 * len(ONE_LINE_NO_NL) + 0.001,
    "multi_line": 0.5 - 0.001 * len(MULTI_LINE) + 0.001,
    "inline": 0.0,
    "two_blocks": 0.0,
    "untagged": 0.0,
}
XML_FIXED = {
    "one_line": 0.5,
    "one_line_no_nl": 0.5,
    "multi_line": 0.5,
    "inline": 0.0,
    "two_blocks": 0.0,
    "untagged": 0.0,
}
SOFT_PAPER = {
    "one_line": 0.0,  # "\n" right after <reasoning> already defeats the non-DOTALL ".*?"
    "one_line_no_nl": 0.0,
    "multi_line": 0.0,
    "inline": 0.5,
    "two_blocks": 0.0,
    "untagged": 0.0,
}
SOFT_FIXED = {
    "one_line": 0.5,
    "one_line_no_nl": 0.5,
    "multi_line": 0.5,
    "inline": 0.5,
    "two_blocks": 0.5,  # soft, like the reference: only the start is checked
    "untagged": 0.0,
}
STRICT_PAPER = {
    "one_line": 0.5,
    "one_line_no_nl": 0.0,
    "multi_line": 0.0,
    "inline": 0.0,
    "two_blocks": 0.0,
    "untagged": 0.0,
}
STRICT_FIXED = {
    "one_line": 0.5,
    "one_line_no_nl": 0.5,
    "multi_line": 0.5,
    "inline": 0.0,
    "two_blocks": 0.0,
    "untagged": 0.0,
}
TEXTS = {
    "one_line": ONE_LINE,
    "one_line_no_nl": ONE_LINE_NO_NL,
    "multi_line": MULTI_LINE,
    "inline": INLINE,
    "two_blocks": TWO_BLOCKS,
    "untagged": UNTAGGED,
}
TABLE = [
    (factory, paper, expected, name)
    for factory, paper, expected in [
        (xmlcount_reward, True, XML_PAPER),
        (xmlcount_reward, False, XML_FIXED),
        (soft_format_reward, True, SOFT_PAPER),
        (soft_format_reward, False, SOFT_FIXED),
        (strict_format_reward, True, STRICT_PAPER),
        (strict_format_reward, False, STRICT_FIXED),
    ]
    for name in TEXTS
]


@pytest.mark.parametrize(("factory", "paper", "expected", "name"), TABLE)
def test_format_rewards(factory, paper: bool, expected: dict, name: str) -> None:
    assert _reward(factory(paper), TEXTS[name]) == pytest.approx(expected[name])


def test_paper_soft_format_one_line_blocks() -> None:
    # The only layout the reference's soft regex accepts: blocks without newlines.
    assert _reward(soft_format_reward(paper=True), "<reasoning>a</reasoning>\n<answer>b</answer>")


def test_fixed_xmlcount_penalises_trailing_text() -> None:
    assert _reward(xmlcount_reward(), ONE_LINE + "extra") == pytest.approx(0.5 - 0.005)
    assert _reward(xmlcount_reward(), ONE_LINE + "  \n ") == pytest.approx(0.5)


def test_fixed_strict_format_rejects_text_around_the_blocks() -> None:
    assert _reward(strict_format_reward(), "Sure!\n" + ONE_LINE) == 0.0
    assert _reward(strict_format_reward(), ONE_LINE + "PS") == 0.0


def test_reward_names_and_order() -> None:
    assert [f.__name__ for f in format_rewards()] == [
        "xmlcount_reward",
        "soft_format_reward",
        "strict_format_reward",
    ]
    assert [f.__name__ for f in format_rewards(paper=True)] == [
        "xmlcount_reward_paper",
        "soft_format_reward_paper",
        "strict_format_reward_paper",
    ]


def test_rewards_take_conversational_completions() -> None:
    completions = [
        [{"role": "assistant", "content": ONE_LINE}],
        ONE_LINE,
        [{"role": "assistant", "content": [{"type": "text", "text": ONE_LINE}]}],
    ]
    for fn in format_rewards():
        scores = fn(prompts=["q"] * 3, completions=completions, answer=["18"] * 3)
        assert len(set(scores)) == 1


def test_completion_text() -> None:
    assert completion_text("x") == "x"
    assert completion_text([]) == ""
    assert (
        completion_text([{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}])
        == "a"
    )
    with pytest.raises(TypeError, match="completion must be"):
        completion_text(42)  # type: ignore[arg-type]


def test_rewards_are_picklable_and_stateless() -> None:
    for fn in [*format_rewards(), *format_rewards(paper=True), accuracy_reward()]:
        clone = pickle.loads(pickle.dumps(fn))
        assert clone.__name__ == fn.__name__
        first = fn(prompts=["q"], completions=[MULTI_LINE], answer=["18"])
        assert fn(prompts=["q"], completions=[MULTI_LINE], answer=["18"]) == first
        assert clone(prompts=["q"], completions=[MULTI_LINE], answer=["18"]) == first


# --------------------------------------------------------------------------- accuracy


def test_accuracy_reward_default() -> None:
    reward = accuracy_reward()
    completions = [MULTI_LINE, ONE_LINE.replace("18", "17"), UNTAGGED, "<answer>\\boxed{}</answer>"]
    completions.append("<answer>\\boxed{4\\sqrt(2)}</answer>")  # malformed: cannot grade
    scores = reward(prompts=["q"] * 5, completions=completions, answer=["#### 18"] * 5)
    # An empty box is no answer (0.0); a box that cannot be read faithfully is None.
    assert scores == [2.0, 0.0, 0.0, 0.0, None]


def test_accuracy_reward_options() -> None:
    reward = AccuracyReward(answer_column="solution", weight=1.0, fallback="response")
    assert reward(prompts=["q"], completions=[UNTAGGED], solution=["18"]) == [1.0]


def test_accuracy_reward_logs_ungraded(caplog: pytest.LogCaptureFixture) -> None:
    metrics: dict = {}
    with caplog.at_level(logging.WARNING, logger="motif.rewards"):
        scores = accuracy_reward()(
            prompts=["q"] * 2,
            completions=[ONE_LINE, ONE_LINE],
            answer=["18", ""],
            log_metric=metrics.__setitem__,
        )
    assert scores == [2.0, None]
    assert metrics == {"accuracy_reward/ungraded": 1.0}
    assert "accuracy_reward: 2 graded" in caplog.text and "gold_unparseable 1" in caplog.text


def test_paper_accuracy_reward() -> None:
    reward = accuracy_reward(mode="paper")
    texts = [ONE_LINE, UNTAGGED, "\\boxed{1,234}", "\\boxed{1234}", "\\boxed{ 18 }"]
    golds = ["#### 18", "18", "#### 1,234", "#### 1,234", "18"]
    assert reward(prompts=["q"] * 5, completions=texts, answer=golds) == [2.0, 2.0, 2.0, 0.0, 0.0]
    assert reward.__name__ == "accuracy_reward_paper"
    assert paper_accuracy_score("\\boxed{180}", "18") == 0.0


def test_missing_gold_column_names_it() -> None:
    with pytest.raises(MissingColumnError, match="'answer'.*columns present: \\['question'\\]"):
        accuracy_reward()(prompts=["q"], completions=[ONE_LINE], question=["q"])
    with pytest.raises(KeyError):  # also a KeyError, for callers that catch those
        accuracy_reward(answer_column="gold")(prompts=["q"], completions=[ONE_LINE], answer=["1"])


def test_gold_column_length_must_match() -> None:
    with pytest.raises(ValueError, match="2 values for 1 completions"):
        accuracy_reward()(prompts=["q"], completions=[ONE_LINE], answer=["1", "2"])


def test_mode_and_weight_validation() -> None:
    with pytest.raises(ValueError, match="unknown scoring mode"):
        accuracy_reward(mode="exact")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="fixed 2/1/0 scale"):
        accuracy_reward(mode="paper", weight=1.0)
    with pytest.raises(ValueError, match="weight must be positive"):
        future_accuracy([], [], weight=0.0)
    with pytest.raises(ValueError, match="unknown fallback"):
        accuracy_reward(fallback="anywhere")  # type: ignore[arg-type]


def test_require_columns() -> None:
    require_columns(["question", "answer"], ["answer"], "gsm8k")
    with pytest.raises(MissingColumnError) as info:
        require_columns(["problem", "solution"], ["question", "answer"], "math500")
    message = str(info.value)
    assert "math500" in message and "'question'" in message and "'answer'" in message
    assert not message.startswith("'")  # printed plainly, not as a KeyError repr


# --------------------------------------------------------------------------- future accuracy


def _trajectory(*texts: str) -> Trajectory:
    rounds = [
        RoundRecord(
            round=i + 1,
            prompt="q",
            text=text,
            reasoning=None,
            answer=None,
            summary="",
            prompt_tokens=1,
            completion_tokens=1,
            truncated=False,
        )
        for i, text in enumerate(texts)
    ]
    return Trajectory("q", rounds)


R1 = "<reasoning>\nround one\n</reasoning>\n<answer>\nprogress\n</answer>"
RIGHT = "<reasoning>\nwork\n</reasoning>\n<answer>\n\\boxed{18}\n</answer>"
WRONG = "<reasoning>\nwork\n</reasoning>\n<answer>\n\\boxed{17}\n</answer>"
BOX_OUTSIDE = "<reasoning>\nso \\boxed{18}\n</reasoning>\n<answer>\nI think 17\n</answer>"
NO_TAGS = "The answer is \\boxed{18}"
GARBAGE_BOX = "<answer>\\boxed{4\\sqrt(2)}</answer>"  # cannot be read faithfully


def test_future_accuracy_default() -> None:
    groups = [
        [_trajectory(R1, "r2", RIGHT), _trajectory(R1, "r2", WRONG)],
        [_trajectory(R1, "r2", NO_TAGS), _trajectory(R1, "r2", RIGHT)],
        [_trajectory(R1, RIGHT)],  # stopped early: its last round is its final round
    ]
    assert future_accuracy(groups, ["#### 18"] * 3) == [1.0, 1.0, 2.0]
    assert future_accuracy(groups, ["18"] * 3, weight=1.0) == [0.5, 0.5, 1.0]
    assert future_accuracy(groups, ["18"] * 3, fallback="response") == [1.0, 2.0, 2.0]


def test_future_accuracy_only_grades_the_last_round() -> None:
    group = [_trajectory(RIGHT, "r2", WRONG), _trajectory(WRONG, RIGHT, "no answer")]
    assert future_accuracy([group], ["18"]) == [0.0]


def test_future_accuracy_ungradable(caplog: pytest.LogCaptureFixture) -> None:
    stats = GradeStats()
    mixed = [_trajectory(R1, RIGHT), _trajectory(R1, GARBAGE_BOX)]
    with caplog.at_level(logging.WARNING, logger="motif.rewards"):
        rewards = future_accuracy([mixed, [_trajectory(R1, RIGHT)]], ["18", ""], stats=stats)
    # A None grading counts 0 in the mean; a completion with nothing gradable gets None.
    assert rewards == [1.0, None]
    assert stats.total == 3 and stats.ungraded == 2
    assert "future_accuracy: 3 graded" in caplog.text and "(2 None)" in caplog.text


def test_paper_future_score_hand_computed() -> None:
    assert paper_future_score(RIGHT, "#### 18") == 2.0
    assert paper_future_score(BOX_OUTSIDE, "18") == 1.0
    assert paper_future_score(WRONG, "18") == 0.0
    # No tags: the reference carries the whole response as the "answer", so 2.0.
    assert paper_future_score(NO_TAGS, "18") == 2.0
    # Unclosed <answer>: everything after it is the "answer".
    assert paper_future_score("<answer>\n\\boxed{18}", "18") == 2.0
    # String match only: an equal but differently written answer scores 0...
    assert paper_future_score("<answer>\\boxed{18.0}</answer>", "18") == 0.0
    # ...and the gold keeps its thousands separator.
    assert paper_future_score("<answer>\\boxed{1,234}</answer>", "x\n#### 1,234") == 2.0
    assert paper_future_score("<answer>\\boxed{1234}</answer>", "x\n#### 1,234") == 0.0


def test_future_accuracy_paper_mean() -> None:
    group = [_trajectory(R1, t) for t in (RIGHT, BOX_OUTSIDE, WRONG, NO_TAGS)]
    # (2 + 1 + 0 + 2) / 4
    assert future_accuracy([group], ["18"], mode="paper") == [1.25]
    # Paper mode never asks the oracle, so an unparseable gold still scores by string.
    assert future_accuracy([[_trajectory(R1, "\\boxed{}")]], [""], mode="paper") == [2.0]


def test_future_accuracy_shape_errors() -> None:
    with pytest.raises(ValueError, match="2 trajectory groups but 1 golds"):
        future_accuracy([[_trajectory(RIGHT)], [_trajectory(RIGHT)]], ["18"])
    with pytest.raises(ValueError, match="no continuation trajectories"):
        future_accuracy([[]], ["18"])


def test_future_accuracy_grades_a_tail_thought_whole() -> None:
    """--carry-over tail: the chunks are one thought, so an answer split across them counts."""
    chunks = ["<reasoning>\nwork\n</reasoning>\n<answer>\n\\boxed{1", "8}\n</answer>"]
    tail = _trajectory(*chunks)
    tail.carry_over = "tail"
    assert future_accuracy([[tail], [_trajectory(*chunks)]], ["18", "18"]) == [2.0, 0.0]
    assert future_accuracy([[tail]], ["18"], mode="paper") == [2.0]


# --------------------------------------------------------------------------- efficiency


def test_efficiency_factor_is_inftythinks_quadratic():
    from motif.rewards import efficiency_factor

    assert efficiency_factor(1, 4) == 1.0
    assert efficiency_factor(2, 4) == 1 - (1 / 4) ** 2 == 0.9375
    assert efficiency_factor(3, 4) == 0.75
    assert efficiency_factor(4, 4) == 1 - (3 / 4) ** 2 == 0.4375  # the cap still scores > 0
    assert efficiency_factor(1, 1) == 1.0
    for bad in ((0, 4), (5, 4)):
        with pytest.raises(ValueError, match="rounds_used must be in 1..4"):
            efficiency_factor(*bad)
    with pytest.raises(ValueError, match="max_rounds"):
        efficiency_factor(1, 0)


def test_efficiency_scales_each_trajectory_by_the_rounds_it_used():
    """InftyThink+'s efficiency term (--efficiency-reward): each continuation's score times
    1 - ((n-1)/phi)^2, then the mean; a wrong answer stays 0, an ungraded group None."""
    groups = [
        [_trajectory(RIGHT), _trajectory(R1, "r2", RIGHT)],  # concluded in round 1, and in 3
        [_trajectory(R1, WRONG)],
        [_trajectory(R1, "r2", RIGHT)],
    ]
    got = future_accuracy(groups, ["18"] * 3, weight=1.0, phi=3)
    assert got == [(1.0 + (1 - (2 / 3) ** 2)) / 2, 0.0, 1 - (2 / 3) ** 2]
    assert future_accuracy(groups, ["18"] * 3, weight=1.0) == [1.0, 0.0, 1.0]  # off: unchanged
    paper = future_accuracy(groups[:1], ["18"], mode="paper", phi=3)
    assert paper == [(2.0 + 2.0 * (1 - (2 / 3) ** 2)) / 2]
