"""The rows of a cold start: which formats are demonstrated, how many rows, built and checked.

A cold start demonstrates its items in one or more *formats*, each a ``(carry-over, rounds)``
pair: ``--carry-over summary`` with ``--rounds n`` and every ``--extra-rounds`` count (1 is
the vanilla single-round prompt, which is also what ``--carry-over none`` demonstrates; with
``--round-end model``, ``--max-rounds`` phi rounds and every ``--extra-rounds`` count up to
phi, each in the model-ended prompts, the last round concluding), and
``--extra-carry-over tail`` (the chunks of one thought, :func:`motif.training.demos.tail_rows`)
or ``none``, and ``--extra-round-end model`` (the ``--rounds`` rounds again in the model-ended
prompts, phi = ``--rounds``). Several formats in one adapter let one cold start serve every arm of a
bounded-context comparison (``motif eval --grid``): the same items, the same training run.

Rows of ``summary`` and ``none`` are conversational prompt-completion rows, which TRL renders
with the chat template; ``tail`` rows are token ids. When a cold start mixes them, every row is
turned into token ids (:func:`motif.training.demos.conversation_ids`, the template's own
rendering) so that one dataset holds them all.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from motif import models
from motif.backends.template import folds_system
from motif.carryover import carry_over_class
from motif.prompts import fold_system
from motif.protocol import Protocol
from motif.training.demos import (
    check_round_budget,
    check_row_length,
    check_split,
    conversation_ids,
    demonstration_rows,
    load_items,
    tail_rows,
)
from motif.training.sft_config import SftConfig


@dataclass(frozen=True)
class Format:
    """One demonstrated format: ``rounds`` conversational rounds (each a fresh chat: the
    ``summary`` carry-over, or one pass with ``rounds == 1``), or with ``thought`` the chunks
    of one thought continued in one assistant turn (a carry-over that ``continues_turn``:
    ``tail``).

    ``option`` names the flag that asked for it (for error messages). ``cap`` (phi) is set
    where the model ends its rounds (``--round-end model``): ``rounds`` rounds under the cap,
    the last concluding.
    """

    thought: bool
    rounds: int
    option: str
    cap: int | None = None

    @property
    def label(self) -> str:
        if self.thought:
            return "tail (chunks of one thought)"
        if self.cap is not None:
            return f"model-ended, {self.rounds} of at most {self.cap} rounds"
        return "one pass" if self.rounds == 1 else f"summary, {self.rounds} rounds"

    def protocol(self, summary_rule: str) -> Protocol:
        """The protocol whose prompts this format's conversational rounds are written in."""
        if self.cap is None:
            return Protocol(rounds=self.rounds, summary_rule=summary_rule)  # type: ignore[arg-type]
        return Protocol(rounds=self.cap, summary_rule=summary_rule, round_end="model")  # type: ignore[arg-type]


def formats(config: SftConfig) -> list[Format]:
    """The demonstrated formats, ``--carry-over`` / ``--rounds`` first, without repeats."""
    sft, carry = config.sft, config.protocol.carry_class()
    if carry.continues_turn:
        return [Format(True, 1, "--carry-over")]
    cap = config.protocol.rounds if carry.round_end == "model" else None
    found = [Format(False, config.protocol.rounds, carry.rounds_option or "--rounds", cap)]
    found += [Format(False, int(r), "--extra-rounds", cap) for r in sft.extra_rounds or []]
    for value in sft.extra_carry_over or []:
        thought = carry_over_class(value, "--extra-carry-over").continues_turn
        found.append(Format(thought, 1, "--extra-carry-over"))
    n = config.protocol.rounds
    found += [Format(False, n, "--extra-round-end", n) for _ in sft.extra_round_end or []]
    unique: list[Format] = []
    for f in found:
        if all((f.thought, f.rounds, f.cap) != (u.thought, u.rounds, u.cap) for u in unique):
            unique.append(f)
    return unique


def demo_round_counts(config: SftConfig) -> list[int]:
    """The round counts of the conversational formats (``[1]`` for tail or none alone)."""
    counts = [f.rounds for f in formats(config) if not f.thought]
    return counts or [1]


def _tokenizer(config: SftConfig) -> Any:
    return models.load_tokenizer(config.model.model, config.model.trust_remote_code)


def build_blocks(
    config: SftConfig, tokenizer: Any = None, items: list | None = None
) -> list[tuple[Format, list[dict]]]:
    """Each format with its rows, item by item (round by round, or chunk by chunk).

    ``items`` defaults to the demonstrated items; ``tokenizer`` (the model's by default) is
    loaded when not given (its chat template decides whether the system prompt is folded).
    """
    sft, chosen = config.sft, formats(config)
    if items is None:
        items = load_items(sft.task, sft.num_examples, sft.data_seed, sft.task_config)
    as_ids = any(f.thought for f in chosen) and len(chosen) > 1
    tokenizer = tokenizer if tokenizer is not None else _tokenizer(config)
    # TRL's SFTTrainer renders conversational rows itself: fold the system prompt into the
    # user turn for a template that refuses it, as motif's own rendering does.
    fold = not as_ids and folds_system(tokenizer)
    blocks = []
    for f in chosen:
        if f.thought:
            rows = tail_rows(items, tokenizer, config.protocol.tail_window())
        else:
            protocol = f.protocol(config.protocol.summary_rule)
            rows = [
                r for item in items for r in demonstration_rows(item, protocol, False, f.rounds)
            ]
            if as_ids:
                rows = [conversation_ids(tokenizer, r) for r in rows]
            elif fold:
                rows = [{**r, "prompt": fold_system(r["prompt"])} for r in rows]
        blocks.append((f, rows))
    return blocks


def build_rows(config: SftConfig, tokenizer: Any = None, items: list | None = None) -> list[dict]:
    """Every demonstration row, format by format (:func:`build_blocks`)."""
    return [row for _, rows in build_blocks(config, tokenizer, items) for row in rows]


def total_steps(config: SftConfig, rows: int | None = None) -> int:
    """Optimiser steps the run will take (single process) over ``rows`` demonstration rows.

    ``rows`` defaults to items x demonstrated rounds; ``tail`` rows (one per chunk, as many as
    each thought needs) are counted by building them.
    """
    sft = config.sft
    if sft.max_steps > 0:
        return sft.max_steps
    if rows is None:
        if any(f.thought for f in formats(config)):
            rows = len(build_rows(config))
        else:
            rows = sft.num_examples * sum(demo_round_counts(config))
    per_epoch = math.ceil(rows / sft.per_device_batch_size / sft.gradient_accumulation_steps)
    return max(1, math.ceil(per_epoch * sft.epochs))


def check_demonstrations(config: SftConfig) -> list[tuple[Format, list[dict]]]:
    """Build the rows of every format, checked against the budgets; loads no model.

    Every round gets a share of the work (``--rounds`` and ``--extra-rounds`` at most the units
    of the smallest item), every demonstrated round fits ``--eval-max-new-tokens`` (``tail``:
    every thought fits the ``--tail-*`` window) and every row fits ``--max-length``.

    Returns:
        Each format with its rows (:func:`build_blocks`).

    Raises:
        ConfigError: naming the option and the fix.
    """
    sft = config.sft
    items = load_items(sft.task, sft.num_examples, sft.data_seed, sft.task_config)
    tokenizer = _tokenizer(config)
    for f in formats(config):
        if not f.thought:
            check_split(items, f.rounds, sft.task, f.option)
            check_round_budget(items, f.rounds, tokenizer, sft.eval_max_new_tokens)
    blocks = build_blocks(config, tokenizer, items)
    check_row_length([r for _, rows in blocks for r in rows], tokenizer, sft.max_length)
    return blocks


def training_rows(rows: list[dict]) -> list[dict]:
    """What TRL trains on: token-id rows as token ids only (TRL then neither re-tokenizes
    them nor appends an end-of-sequence token to a chunk that does not end the thought)."""
    if rows and "input_ids" in rows[0]:
        return [
            {"input_ids": r["input_ids"], "completion_mask": r["completion_mask"]} for r in rows
        ]
    return rows
