"""Prefill of the fast decode path: each distinct prompt once, and each shared prefix once.

MOTIF's prompts share a lot: every prompt starts with the same ~200-token system prompt, and in
a later round the ``k`` continuations of one trajectory (or the trajectories of one question)
share the question too: ``[system][question + 'Progress in round r: "'][summary]``. The
prefill is a small prefix tree of at most three levels, each one forward call:

0. the prefix every prompt shares (at batch 1), when at least :data:`MIN_SHARED_PREFIX` long;
1. per group of prompts that share more (found by :func:`group_suffixes`), that part once;
2. each distinct prompt's own tokens.

Each level's rows copy their parent's cache row and append left-padded columns; the 2D mask
hides the padding, which may thus sit between levels, and positions count real tokens only
(as ``generate`` gives a left-padded row). Every prompt keeps at least one own token, so the
last column of level 2 is real and holds the next-token logits.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from motif.compat import cache_keyword

logger = logging.getLogger(__name__)

# A common prefix shorter than this is not worth its own forward call.
MIN_SHARED_PREFIX = 8


@dataclass
class Level:
    """One forward call of the prefill: ``spans[i]`` is appended to the cache row
    ``parents[i]`` of the previous level (``parents`` is None for the first level)."""

    parents: list[int] | None
    spans: list[list[int]]


def dedupe(prompts: Sequence[Sequence[int]], num_samples: int) -> tuple[list[list[int]], list[int]]:
    """Distinct prompts, and for each output row (prompt-major) the index of its prompt."""
    index: dict[tuple[int, ...], int] = {}
    unique: list[list[int]] = []
    row_of: list[int] = []
    for prompt in prompts:
        key = tuple(prompt)
        if key not in index:
            index[key] = len(unique)
            unique.append(list(prompt))
        row_of.extend([index[key]] * num_samples)
    return unique, row_of


def _lcp(a: Sequence[int], b: Sequence[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def common_prefix(prompts: Sequence[Sequence[int]]) -> int:
    """Length of the prefix all prompts share, leaving every prompt at least one own token."""
    first = prompts[0]
    return min(min(_lcp(first, p), len(p) - 1) for p in prompts)


def shared_prefix(prompts: Sequence[Sequence[int]]) -> int:
    """Tokens prefilled once for all prompts (0: one prompt, or a prefix too short to bother)."""
    shared = common_prefix(prompts) if len(prompts) > 1 else 0
    return shared if shared >= MIN_SHARED_PREFIX else 0


def group_suffixes(suffixes: Sequence[Sequence[int]]) -> list[tuple[list[int], int]]:
    """Groups of suffixes that share a prefix worth prefilling once: (members, its length).

    Suffixes are sorted; a run grows while adding the next one does not lower the tokens it
    saves, ``(size - 1) x shared length`` (so 4 continuations sharing a 25-token question are
    not merged with another question sharing 9 tokens). Every member keeps at least one own
    token; runs that save nothing are singletons with length 0. Members keep input order.
    """
    order = sorted(range(len(suffixes)), key=lambda i: suffixes[i])
    groups: list[tuple[list[int], int]] = []
    start = 0
    while start < len(order):
        head = suffixes[order[start]]
        members, common = [order[start]], len(head) - 1
        for i in order[start + 1 :]:
            shared = min(_lcp(head, suffixes[i]), len(suffixes[i]) - 1, common)
            size = len(members)  # saves (size - 1) x common now, size x shared with i
            if shared < MIN_SHARED_PREFIX or size * shared < (size - 1) * common:
                break
            members.append(i)
            common = shared
        start += len(members)
        groups.append((sorted(members), common if len(members) > 1 else 0))
    return groups


def prefix_levels(prompts: list[list[int]]) -> tuple[list[Level], int]:
    """The prefill's levels for distinct ``prompts`` (last level: one row each, in order),
    and how many leading cache columns every row holds alike and unmasked (the cascade's
    prefix: level 0, or the whole prompt when there is one; 0 if none)."""
    if len(prompts) == 1:
        return [Level(None, [prompts[0]])], len(prompts[0])
    shared = shared_prefix(prompts)
    levels = [Level(None, [prompts[0][:shared]])] if shared else []
    suffixes = [p[shared:] for p in prompts]
    groups = [g for g in group_suffixes(suffixes) if g[1] > 0]
    if not groups:
        parents = [0] * len(prompts) if shared else None
        return [*levels, Level(parents, suffixes)], shared
    parent = [len(groups)] * len(prompts)  # the rest share one row with no level-1 tokens
    spans = []
    for row, (members, length) in enumerate(groups):
        spans.append(suffixes[members[0]][:length])
        for i in members:
            parent[i] = row
            suffixes[i] = suffixes[i][length:]
    if len(groups) in parent:
        spans.append([])
    first = Level([0] * len(spans) if shared else None, spans)
    return [*levels, first, Level(parent, suffixes)], shared


def cache_width(levels: list[Level]) -> int:
    """Cache columns the prefill fills: each level's widest span (padding included)."""
    return sum(max(len(span) for span in level.spans) for level in levels)


def prefill(
    model: Any,
    cache: Any,
    levels: list[Level],
    pad_id: int,
    device: torch.device,
    reuse: dict | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Fill the cache with :func:`prefix_levels`' levels: one row per distinct prompt, in order.

    Returns the last-position logits [prompts, vocab] and the 2D mask [prompts,
    :func:`cache_width`]. ``reuse`` (weights unchanged since it was filled): a level-0
    prefix computed before is copied from it instead of run again, and a new one stored.
    """
    logger.debug("prefill: %s", [(len(lv.spans), max(map(len, lv.spans))) for lv in levels])
    mask = torch.zeros((1, 0), dtype=torch.long, device=device)
    logits = None
    for depth, level in enumerate(levels):
        if level.parents is not None:
            index = torch.tensor(level.parents, dtype=torch.long, device=device)
            cache.batch_select_indices(index)
            mask = mask[index]
        if depth == 0 and len(levels) > 1 and len(level.spans) == 1 and reuse is not None:
            # a prefix every prompt shares (a first level of groups has several spans)
            mask = _shared_prefix_cache(model, cache, level.spans[0], mask, reuse, pad_id)
            continue
        logits, mask = _extend(model, cache, level.spans, mask, pad_id)
    return logits, mask


def _shared_prefix_cache(
    model: Any, cache: Any, prefix: list[int], empty: torch.Tensor, reuse: dict, pad_id: int
) -> torch.Tensor:
    """Fill the empty ``cache`` (mask ``empty``, [1, 0]) with ``prefix`` at batch 1, from
    ``reuse`` if there; its mask."""
    key = ("prefix", id(model), tuple(prefix))
    stored = reuse.get(key)
    if stored is None:
        _, mask = _extend(model, cache, [prefix], empty, pad_id)
        n = len(prefix)
        reuse[key] = [
            (lr.keys[:, :, :n].clone(), lr.values[:, :, :n].clone()) for lr in cache.layers
        ]
        return mask
    for index, (keys, values) in enumerate(stored):
        cache.update(keys, values, index)
    return torch.ones((1, len(prefix)), dtype=torch.long, device=empty.device)


def _extend(
    model: Any, cache: Any, spans: list[list[int]], mask: torch.Tensor, pad_id: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Append left-padded ``spans`` (one per cache row) in one forward; logits and new mask."""
    device = mask.device
    width = max(len(s) for s in spans)
    ids = torch.full((len(spans), width), pad_id, dtype=torch.long)
    new = torch.zeros((len(spans), width), dtype=torch.long)
    for row, span in enumerate(spans):
        if span:
            ids[row, width - len(span) :] = torch.tensor(span, dtype=torch.long)
            new[row, width - len(span) :] = 1
    mask = torch.cat([mask.expand(len(spans), -1), new.to(device)], dim=1)
    # As generate: position = number of real tokens before, padding at position 0.
    pos = (mask.cumsum(-1) - 1).masked_fill(mask == 0, 0)[:, -width:]
    return forward_last(model, ids.to(device), mask, pos, cache), mask


def forward_last(
    model: Any, ids: torch.Tensor, mask: torch.Tensor, pos: torch.Tensor, cache: Any
) -> torch.Tensor:
    """Logits of the last position only."""
    # The last position as a 1-D index, not the int 1: the int slices a strided view, which a
    # bf16 lm_head on CPU runs as a bmm over a materialised copy of the whole head weight.
    last = torch.tensor([ids.shape[1] - 1], device=ids.device) if ids.shape[1] > 1 else 1
    out = model(
        input_ids=ids,
        attention_mask=mask,
        position_ids=pos,
        **{cache_keyword(): cache},  # the keyword's name depends on the release (motif.compat)
        use_cache=True,
        logits_to_keep=last,
    )
    return out.logits[:, -1, :]
