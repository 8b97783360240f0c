"""Demonstrations for the cold start (``motif sft``): the work of a task split over rounds.

The demonstrations are written by this module from the task's own data, never by a model.
Tasks are the kinds of :mod:`motif.tasks`: reasoning-gym ``chain_sum`` (every item),
``basic_arithmetic`` (only its items without ``*``, ``/`` or parentheses; set its
``operators: ["+", "-"]`` and ``allow_parentheses: false`` to keep them all) and
``letter_counting``. An item's work is a row of *units* (terms, words), one step each.

``summary``: for ``n`` rounds the units are split into ``n`` contiguous shares (earlier shares
take the extra units). Round ``i`` does its share from the state carried from round ``i - 1``;
its ``<answer>`` hands over the state (the partial result and the work still to do); the last
round boxes the result. ``n = 1`` is the vanilla single-round format. Response format
(:func:`motif.answer_format.format_reply`: one line of reasoning, one line of answer, a final
newline)::

    <reasoning>\\nSTEPS\\n</reasoning>\\n<answer>\\nSTATE\\n</answer>\\n

It matches the reference's strict format regex
``^<reasoning>\\n.*?\\n</reasoning>\\n<answer>\\n.*?\\n</answer>\\n$`` (compiled without
DOTALL, so the one-line contents are what make it match) and earns the full xmlcount reward.
Each round is one SFT row in TRL's conversational prompt-completion form; its prompt is
exactly what :class:`motif.engine.RolloutEngine` would send: ``Protocol.messages(question,
i, Protocol.summary(previous response))``.

``tail`` (Delethink): one single-round response, the *thought*, whose steps are interleaved
every :data:`TAIL_CHECKPOINT` steps with ``Next: <the next units>.``, cut into the chunks the
engine would write (:func:`tail_rows`); ``none``: the single-round response.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from motif.answer_format import format_reply
from motif.backends.base import text_cuts
from motif.carryover import SummaryRule, TailWindow, carry_over_class
from motif.errors import ConfigError, MotifError
from motif.protocol import Protocol
from motif.tasks import (
    TASK_KINDS,
    TaskItem,
    chain_from_entry,
    check_task_config,
    item_from_entry,
    task_kind,
)
from motif.tasks import ChainProblem as ChainProblem  # re-exported: it moved to motif.tasks
from motif.tasks import parse_chain as parse_chain  # re-exported

logger = logging.getLogger(__name__)

problem_from_entry = chain_from_entry
"""The chain of a reasoning-gym entry (:func:`motif.tasks.chain_from_entry`), by its first name."""

SUPPORTED_TASKS = tuple(TASK_KINDS)
HELD_OUT_SEED_OFFSET = 1_000_003
"""Held-out items are generated with ``seed + HELD_OUT_SEED_OFFSET`` (reasoning-gym seeds
item ``j`` of a set with ``seed + j``, so nearby seeds would share items)."""
POOL_FACTOR = 20
"""At most ``POOL_FACTOR * size`` task items are drawn to find ``size`` usable ones."""
TAIL_CHECKPOINT = 4
"""A ``tail`` thought writes the next this-many units before every this-many steps.

A later chunk sees the question, the thought's first ``h`` and last ``m`` tokens: to go on it
must find its place in the question. ``44 + 75 = 119.`` alone does not say which ``+ 75`` it
was (one-digit terms repeat), so every 4 steps the thought copies the next 4 units
(``Next: - 32 + 75 - 32 + 5.``): the last ``m`` tokens then hold a checkpoint and the steps
after it, and copying the units that follow that checkpoint's units is an exact match in the
question. 4 units cost about 12 tokens per 4 steps of about 11 tokens each (one-digit terms),
against the remaining terms at every step, whose length grows with the chain."""


def _check_task(task: str, task_config: dict | None) -> dict:
    if task not in SUPPORTED_TASKS:
        raise ConfigError(
            f"--task {task!r} has no demonstration writer; use one of {', '.join(SUPPORTED_TASKS)}"
        )
    config = dict(task_config or {})
    for key in ("size", "seed"):
        if key in config:
            raise ConfigError(
                f"task_config must not set {key!r}; use --num-examples and --data-seed instead"
            )
    check_task_config(task, config)
    return config


def load_items(
    task: str,
    size: int,
    seed: int,
    task_config: dict | None = None,
    exclude: set[str] | frozenset[str] = frozenset(),
) -> list[TaskItem]:
    """The first ``size`` usable items of a reasoning-gym task, in order.

    Items the task's reader cannot use (not a flat ``+``/``-`` chain, an answer that disagrees
    with the one computed here), or whose question is in ``exclude``, are skipped (logged).

    Raises:
        ConfigError: unknown task, a knob out of range, or a task config the task rejects.
        MotifError: fewer than ``size`` usable items among ``POOL_FACTOR * size`` drawn.
    """
    import reasoning_gym

    config = _check_task(task, task_config)
    if size < 1:
        raise ConfigError(f"the number of problems must be >= 1; got {size}")
    try:
        dataset = reasoning_gym.create_dataset(task, seed=seed, size=size * POOL_FACTOR, **config)
    except (TypeError, ValueError, AssertionError) as exc:
        raise ConfigError(
            f"reasoning-gym task {task!r} rejects task_config {config}: {exc}"
        ) from exc
    items: list[TaskItem] = []
    skipped = 0
    for entry in dataset:
        item = item_from_entry(task, entry)
        if item is None or item.question in exclude:
            skipped += 1
            continue
        items.append(item)
        if len(items) == size:
            break
    if skipped:
        logger.info("%s: skipped %d unusable or excluded items", task, skipped)
    if len(items) < size:
        raise MotifError(
            f"only {len(items)} of {size} {task} items are usable; for basic_arithmetic set "
            "task_config operators: ['+', '-'] and allow_parentheses: false"
        )
    return items


def held_out_problems(
    task: str, size: int, seed: int, task_config: dict | None = None, train_size: int = 0
) -> list[TaskItem]:
    """``size`` items for evaluation, disjoint from the first ``train_size`` demonstrations.

    Generated with ``seed + HELD_OUT_SEED_OFFSET``; any question that also appears among the
    ``train_size`` demonstration items of ``seed`` is skipped.
    """
    exclude: frozenset[str] = frozenset()
    if train_size > 0:
        exclude = frozenset(p.question for p in load_items(task, train_size, seed, task_config))
    return load_items(task, size, seed + HELD_OUT_SEED_OFFSET, task_config, exclude)


def split_chunks(count: int, rounds: int) -> list[range]:
    """Split ``count`` unit indices into ``rounds`` contiguous shares, larger shares first."""
    base, extra = divmod(count, rounds)
    chunks, start = [], 0
    for i in range(rounds):
        end = start + base + (1 if i < extra else 0)
        chunks.append(range(start, end))
        start = end
    return chunks


def check_split(
    items: Sequence[TaskItem], rounds: int, task: str, option: str = "--rounds"
) -> None:
    """Every round must get a share of the work: ``rounds`` <= the units of the smallest item.

    Raises:
        ConfigError: naming ``option`` and the fix (fewer rounds or longer items).
    """
    smallest = min(item.units for item in items)
    if rounds <= smallest:
        return
    kind = task_kind(task)
    knob, low = (kind.knob, kind.low) if kind else ("units", "the task's size")
    raise ConfigError(
        f"{option} {rounds} splits the work into more rounds than the {smallest} {knob} of the "
        f"smallest demonstrated {task} item, so a round would have nothing to do: use "
        f"{option} {smallest} or fewer, or longer items (--task-config {low} >= {rounds})"
    )


def demonstration_responses(item: TaskItem, rounds: int, checkpoint: int = 0) -> list[str]:
    """The ``rounds`` responses of one demonstration (the last one boxes the result).

    ``checkpoint > 0`` writes the next units before every ``checkpoint`` steps (the ``tail``
    thought, :data:`TAIL_CHECKPOINT`).
    """
    if rounds < 1:
        raise ConfigError(f"--rounds must be >= 1; got {rounds}")
    chunks = split_chunks(item.units, rounds)
    responses, carried = [], None
    for i, chunk in enumerate(chunks, start=1):
        reasoning, carried = item.work(chunk, carried, checkpoint)
        if i == rounds:
            if carried != item.total:
                raise AssertionError(f"the steps give {carried}, expected {item.total}")
            answer = f"\\boxed{{{item.answer}}}"
        else:
            answer = item.state(i, carried, chunk.stop)
        responses.append(format_reply(reasoning, answer))
    return responses


def thought_response(item: TaskItem) -> str:
    """The single-round response a ``tail`` demonstration cuts into chunks."""
    return demonstration_responses(item, 1, TAIL_CHECKPOINT)[0]


def demonstration_rows(
    item: TaskItem, protocol: Protocol, thought: bool = False, rounds: int | None = None
) -> list[dict]:
    """One prompt-completion row per round, each prompt built as the engine builds it.

    ``rounds`` rows (default ``protocol.rounds``; fewer only where the model ends its rounds,
    ``--round-end model``: a trajectory that concludes before the cap); ``thought=True``
    (``tail``, with a single-round protocol): one row holding the checkpointed thought, uncut
    (see :func:`tail_rows` for its chunks).
    """
    if thought:
        responses = [thought_response(item)]
    else:
        responses = demonstration_responses(item, rounds or protocol.rounds)
    rows, summary = [], None
    for i, response in enumerate(responses, start=1):
        prompt = protocol.messages(item.question, i, summary)
        rows.append({"prompt": prompt, "completion": [{"role": "assistant", "content": response}]})
        summary = protocol.summary(response)
    return rows


def build_demonstrations(
    task: str,
    rounds: int,
    size: int,
    seed: int,
    task_config: dict | None = None,
    summary_rule: SummaryRule = "paper",
    carry_over: str = "summary",
    round_end: str = "budget",
) -> list[dict]:
    """SFT rows for ``size`` task items over ``rounds`` rounds (``size * rounds`` rows).

    Rows are ordered item by item, round by round: row ``j * rounds + i`` is round ``i + 1``
    of item ``j``. Each row is ``{"prompt": [system, user], "completion": [assistant]}``.
    ``carry_over`` ``tail`` or ``none``: one single-round row per item whatever ``rounds``
    (chunk 1 of a tail thought is prompted like a one-pass answer; :func:`demonstration_rows`).
    ``round_end`` ``model``: the prompts of rounds the model ends itself, ``rounds`` being phi
    (the last round concludes with the boxed answer, the earlier ones hand on a summary).

    Raises:
        ConfigError: an unknown ``carry_over`` or task, a knob out of range, a ``round_end``
            that does not apply to ``carry_over``.
    """
    carry = carry_over_class(carry_over, round_end=round_end)
    protocol = Protocol(
        rounds=rounds if carry.hands_state else 1,
        summary_rule=summary_rule,
        round_end=carry.round_end,
    )
    rows: list[dict] = []
    for item in load_items(task, size, seed, task_config):
        rows.extend(demonstration_rows(item, protocol, thought=carry.continues_turn))
    return rows


# --------------------------------------------------------------------------- token budgets


def _render_ids(tokenizer: Any, chat: list[dict], add_generation_prompt: bool = False) -> list[int]:
    """Token ids of one chat as the transformers backend renders it (``hf.render_ids``)."""
    from motif.backends.hf import render_ids  # torch: imported only where a tokenizer is used

    return list(render_ids(tokenizer, [chat], add_generation_prompt)[0])


def thought_ids(tokenizer: Any, chat: list[dict], prompt: list[int], response: str) -> list[int]:
    """The token ids of ``response`` as the assistant turn after ``prompt``, end-of-turn included.

    The chat plus the response is rendered by the template and tokenized; the ids after the
    prompt, up to and including the first end-of-sequence token (where generation stops).

    Raises:
        MotifError: the template renders the prompt differently once a reply follows it.
    """
    full = _render_ids(tokenizer, [*chat, {"role": "assistant", "content": response}])
    if full[: len(prompt)] != prompt:
        raise MotifError(
            "the chat template renders the prompt differently once an assistant turn follows "
            "it, so a demonstrated thought cannot be cut into tail chunks for this model"
        )
    thought = full[len(prompt) :]
    eos = tokenizer.eos_token_id
    return thought[: thought.index(eos) + 1] if eos in thought else thought


def conversation_ids(tokenizer: Any, row: dict) -> dict:
    """A conversational prompt-completion row with its token ids added, as TRL would train it.

    ``input_ids``: the prompt rendered with the generation prompt, then the completion's ids
    (:func:`thought_ids`: the template's rendering, end of turn included); ``completion_mask``
    is 1 on the completion. ``prompt`` and ``completion`` are kept for display.
    """
    chat = list(row["prompt"])
    prompt = _render_ids(tokenizer, chat, add_generation_prompt=True)
    reply = thought_ids(tokenizer, chat, prompt, row["completion"][0]["content"])
    return {
        **row,
        "input_ids": [*prompt, *reply],
        "completion_mask": [0] * len(prompt) + [1] * len(reply),
    }


def chunk_rows(
    chat: list[dict], prompt: list[int], thought: list[int], window: TailWindow, decode: Any
) -> list[dict]:
    """The ``tail`` chunks of one thought, as the engine writes them, one row each.

    Chunk 1 writes the first ``C`` thought tokens after ``prompt``; chunk ``j > 1`` is
    ``prompt`` + :meth:`TailWindow.carried` (the first ``h`` and last ``m`` tokens of the
    thought so far) and writes the next ``C - h - m``, until the thought ends. Each row holds
    ``input_ids`` and ``completion_mask`` (1 on the chunk's new tokens: the loss), plus, for
    display, ``prompt`` (the chat, and the carried tokens' text as a started assistant turn)
    and ``completion`` (the new tokens' text). Texts are read from the whole thought decoded
    by ``decode`` (:func:`motif.backends.base.text_cuts`), never from a part decoded alone: a
    character split over a chunk end shows whole, in the chunk that completes it.
    """
    starts, done, index = [], 0, 1
    while done < len(thought):
        starts.append(done)
        done, index = min(len(thought), done + window.new_tokens(index)), index + 1
    text, cut = _cut_at(decode, thought, [*starts, len(thought)], window)
    rows = []
    for j, start in enumerate(starts):
        end = starts[j + 1] if j + 1 < len(starts) else len(thought)
        carried = window.carried(thought[:start]) if j else []
        shown = chat
        if carried:
            shown = [
                *chat,
                {"role": "assistant", "content": _carried_text(text, cut, start, window)},
            ]
        rows.append(
            {
                "prompt": list(shown),
                "completion": [{"role": "assistant", "content": text[cut(start) : cut(end)]}],
                "input_ids": [*prompt, *carried, *thought[start:end]],
                "completion_mask": [0] * (len(prompt) + len(carried)) + [1] * (end - start),
            }
        )
    return rows


def _cut_at(decode: Any, thought: list[int], starts: list[int], window: TailWindow) -> tuple:
    """(the thought's text, a map from a token offset to its character offset in that text),
    for the offsets the chunk rows show: the chunk starts, the head's end and each carried
    tail's start."""

    offsets = sorted(
        {*starts, window.head, *(max(0, s - window.keep_tail) for s in starts)} - {len(thought)}
    )
    text, cuts = text_cuts(decode, thought, [*offsets, len(thought)])
    found = dict(zip([*offsets, len(thought)], cuts, strict=True))
    return text, found.__getitem__


def _carried_text(text: str, cut: Any, start: int, window: TailWindow) -> str:
    """The text of what chunk starting at token ``start`` carries: the thought so far when it
    fits ``h + m`` tokens, else its first ``h`` tokens' text and its last ``m`` tokens' text."""
    if start <= window.head + window.keep_tail:
        return text[: cut(start)]
    return text[: cut(window.head)] + text[cut(start - window.keep_tail) : cut(start)]


def tail_rows(items: Sequence[TaskItem], tokenizer: Any, window: TailWindow) -> list[dict]:
    """The chunk rows (:func:`chunk_rows`) of every item's thought, item by item.

    Raises:
        ConfigError: a thought longer than the window's ``C + (I - 1)(C - h - m)`` tokens.
    """
    protocol = Protocol(rounds=1)
    rows: list[dict] = []
    for j, item in enumerate(items, start=1):
        chat = protocol.messages(item.question, 1)
        prompt = _render_ids(tokenizer, chat, add_generation_prompt=True)
        thought = thought_ids(tokenizer, chat, prompt, thought_response(item))
        if len(thought) > window.total_budget:
            raise ConfigError(
                f"the demonstrated thought of item {j} is {len(thought)} tokens, more than "
                f"--tail-chunks {window.max_chunks} chunks of --tail-chunk {window.chunk} hold "
                f"({window.total_budget} = C + (I - 1)(C - h - m) tokens): raise --tail-chunks "
                "or --tail-chunk, or use shorter items (--task-config max_terms or max_words)"
            )
        rows.extend(chunk_rows(chat, prompt, thought, window, tokenizer.decode))
    return rows


def longest_round(items: Sequence[TaskItem], rounds: int, tokenizer: Any) -> tuple[int, int, int]:
    """(new tokens, item number, round) of the longest demonstrated round of ``rounds`` rounds.

    New tokens: the response's tokens plus one end-of-turn token, what generation must write
    within a round's budget for the round to end untruncated.
    """
    best = (0, 0, 0)
    for j, item in enumerate(items, start=1):
        responses = demonstration_responses(item, rounds)
        counts = tokenizer(responses, add_special_tokens=False)["input_ids"]
        for i, ids in enumerate(counts, start=1):
            best = max(best, (len(ids) + 1, j, i))
    return best


def check_round_budget(
    items: Sequence[TaskItem],
    rounds: int,
    tokenizer: Any,
    budget: int,
    option: str = "--eval-max-new-tokens",
) -> None:
    """Every demonstrated round must fit ``budget`` new tokens (:func:`longest_round`).

    Raises:
        ConfigError: naming ``option`` and the fixes (more rounds, shorter items, more budget).
    """
    tokens, item, index = longest_round(items, rounds, tokenizer)
    if tokens > budget:
        raise ConfigError(
            f"the longest demonstrated round is {tokens} new tokens (item {item}, round {index} "
            f"of {rounds}), more than the per-round budget {option} {budget}: use more --rounds, "
            f"shorter items (--task-config max_terms or max_words), or {option} {tokens} or more"
        )


def row_tokens(row: dict, tokenizer: Any) -> int:
    """Tokens of one training row (prompt and completion), as TRL tokenizes it."""
    if "input_ids" in row:
        return len(row["input_ids"])
    return len(_render_ids(tokenizer, [*row["prompt"], *row["completion"]]))


def check_row_length(rows: Sequence[dict], tokenizer: Any, max_length: int) -> None:
    """Every row must fit ``--max-length`` (TRL would cut the end of its completion).

    Raises:
        ConfigError: naming ``--max-length`` and the length needed.
    """
    longest = max((row_tokens(row, tokenizer) for row in rows), default=0)
    if longest > max_length:
        raise ConfigError(
            f"the longest demonstration row is {longest} tokens (prompt and completion), more "
            f"than --max-length {max_length}, so training would cut its completion: "
            f"use --max-length {longest} or more"
        )


# --------------------------------------------------------------------------- display


def rows_text(
    task: str, items: int, counts: Sequence[int], rows: Sequence[dict], tail: bool | None = None
) -> str:
    """The plan's demonstrations line: items x rounds = rows, or chunks per thought (``tail``;
    by default: rows of token ids)."""
    if tail is None:
        tail = bool(rows) and "input_ids" in rows[0]
    if tail:
        starts = sum(len(r["prompt"]) == 2 for r in rows)  # chunk 1 of each thought
        per = len(rows) / starts
        return f"{items} {task} items x one thought in {per:.1f} chunks (mean) = {len(rows)} rows"
    shown = str(counts[0]) if len(counts) == 1 else f"({' + '.join(map(str, counts))})"
    unit = "round" if shown == "1" else "rounds"
    return f"{items} {task} items x {shown} {unit} = {len(rows)} rows"


def sample_text(rows: Sequence[dict], rounds: int, tail: bool | None = None) -> str:
    """The first demonstration for a dry run: its ``rounds`` rounds, or every chunk (``tail``;
    by default: rows of token ids)."""
    if tail is None:
        tail = bool(rows) and "input_ids" in rows[0]
    if not tail:
        parts = []
        for i, row in enumerate(rows[:rounds], start=1):
            parts.append(f"--- round {i} user ---\n{row['prompt'][-1]['content']}")
            parts.append(f"--- round {i} completion ---\n{row['completion'][0]['content']}")
        return "\n".join(parts)
    chunks = [rows[0]]
    for row in rows[1:]:
        if len(row["prompt"]) == 2:
            break
        chunks.append(row)
    parts = [f"--- user ---\n{rows[0]['prompt'][-1]['content']}"]
    for i, row in enumerate(chunks, start=1):
        new = sum(row["completion_mask"])
        if i > 1:
            carried = row["prompt"][-1]["content"]
            parts.append(f"--- chunk {i} continues from (first h + last m tokens) ---\n{carried}")
        parts.append(f"--- chunk {i} writes {new} tokens ---\n{row['completion'][0]['content']}")
    return "\n".join(parts)
