"""The fast path's prefill plan: distinct prompts, the shared prefix, groups, levels."""

from __future__ import annotations

import pytest

from motif.backends.prefill import (
    MIN_SHARED_PREFIX,
    common_prefix,
    dedupe,
    group_suffixes,
    prefix_levels,
    shared_prefix,
)

SYS = list(range(100, 100 + 2 * MIN_SHARED_PREFIX))  # a system prompt
QA = list(range(500, 500 + 2 * MIN_SHARED_PREFIX))  # a question, shared by its continuations
QC = list(range(700, 700 + 2 * MIN_SHARED_PREFIX))  # a question sharing nothing with QA
QB = QA[: MIN_SHARED_PREFIX + 1] + [999] * 5  # another, sharing a few tokens with QA


def test_dedupe_keeps_first_appearance_order():
    unique, row_of = dedupe([[1, 2, 3], [1, 2, 4], [1, 2, 3]], num_samples=2)
    assert unique == [[1, 2, 3], [1, 2, 4]]
    assert row_of == [0, 0, 1, 1, 0, 0]


@pytest.mark.parametrize(
    "prompts, common",
    [
        ([[1, 2, 3], [1, 2, 4]], 2),
        ([[1, 2], [1, 2, 3]], 1),  # every prompt keeps an own token
        ([[1, 2, 3], [1, 2, 3]], 2),
        ([[5], [6]], 0),
    ],
)
def test_common_prefix(prompts, common):
    assert common_prefix(prompts) == common


def test_shared_prefix_needs_two_prompts_and_a_minimum_length():
    assert shared_prefix([SYS + [1], SYS + [2]]) == len(SYS)
    assert shared_prefix([SYS + [1]]) == 0
    short = SYS[: MIN_SHARED_PREFIX - 1]
    assert shared_prefix([short + [1], short + [2]]) == 0


@pytest.mark.parametrize(
    "suffixes, groups",
    [
        # 3 continuations of QA group on QA; a lone prompt stays alone (length 0)
        ([QA + [1], [7, 8], QA + [2], QA + [3, 4]], [([0, 2, 3], len(QA)), ([1], 0)]),
        # QB shares 9 tokens with QA's group: merging would save 3 x 9 < 2 x 16, so it does not
        ([QA + [1], QA + [2], QA + [3], QB], [([0, 1, 2], len(QA)), ([3], 0)]),
        # two prompts sharing 9 tokens do group: 9 saved > 0
        ([QA + [1], QB], [([0, 1], MIN_SHARED_PREFIX + 1)]),
        # a member that is the others' prefix keeps its last token
        ([QA, QA + [1]], [([0, 1], len(QA) - 1)]),
        # too short to bother
        ([[1, 2, 3], [1, 2, 4]], [([0], 0), ([1], 0)]),
    ],
)
def test_group_suffixes(suffixes, groups):
    assert sorted(group_suffixes(suffixes)) == sorted(groups)


def spans_of(levels, row):
    """The tokens a final row's cache holds, following its parents back to level 0."""
    out = []
    for level in reversed(levels):
        out = level.spans[row] + out
        row = level.parents[row] if level.parents is not None else 0
    return out


@pytest.mark.parametrize(
    "prompts, shapes, shared",
    [
        ([SYS + [1, 2]], [1], len(SYS) + 2),  # one prompt: all of it, once
        ([SYS + [1], SYS + [2]], [1, 2], len(SYS)),
        ([[1, 2], [3, 4]], [2], 0),  # nothing shared
        ([SYS + QA + [1], SYS + QA + [2], SYS + [7]], [1, 2, 3], len(SYS)),
        # two groups and no lone prompt: no extra level-1 row
        ([SYS + QA + [1], SYS + QA + [2], SYS + QC + [1], SYS + QC + [2]], [1, 2, 4], len(SYS)),
        ([QA + [1], QA + [2], [9, 9]], [2, 3], 0),  # a group but no prefix shared by all
        ([QA + [1], QA + [2]], [1, 2], len(QA)),
    ],
)
def test_prefix_levels_rebuild_every_prompt(prompts, shapes, shared):
    levels, same = prefix_levels(prompts)
    assert [len(level.spans) for level in levels] == shapes
    assert same == shared
    assert [spans_of(levels, row) for row in range(len(prompts))] == prompts
