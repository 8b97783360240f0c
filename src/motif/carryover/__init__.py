"""Carry-over strategies: what a bounded-context answer hands from one round (or chunk) to the next.

Pure functions and dataclasses, no torch. Each strategy is one :class:`CarryOver` subclass
that owns everything that differs between them: a round's prompt (and where the carried text
sits in it), its token budget and the option that sets it, the stop test, the text the answer
is read from, and which options apply. The rollout loop (:class:`motif.engine.RolloutEngine`),
the runtime, the configs, the CLI, tasks and the viewer ask the strategy; a new carry-over is one
class here plus its tests (and its name in :data:`CARRY_OVERS`).

* ``summary`` (:class:`SummaryCarryOver`): each round is a fresh chat holding the question and
  the text the model wrote for the next round (its ``<answer>``). MOTIF's progress summary
  (arXiv 2507.02851) and InftyThink's model-written summary (arXiv 2503.06692). The paper preset.
* ``tail`` (:class:`TailCarryOver`): Delethink, "The Markovian Thinker" (arXiv 2510.06557). One
  long thought written in chunks. Chunk 1 writes up to ``C`` tokens after the single-round
  prompt; every later chunk re-prompts the *same assistant turn* with the question, the first
  ``h`` tokens of the thought and its last ``m`` tokens, and the model keeps writing, up to
  ``C - h - m`` new tokens, so the part of the context after the prompt never holds more than
  ``C`` tokens. It stops at the model's end-of-sequence or after ``I`` chunks.
* ``none`` (:class:`OnePass`): a single pass, the whole budget in one context (the long
  chain-of-thought reference).

``--round-end model`` (:class:`ModelEndedCarryOver`, with ``summary``): InftyThink's rounds
the model ends itself (arXiv 2503.06692, 2602.06960): each round ends with a summary for the
next or a conclusion (a boxed answer) that ends the trajectory, within a cap of phi rounds.

Budgets are counted in tokens of the model's tokenizer. *New tokens* are tokens the model
generated; the *context* of a round is its prompt tokens (chat template included) plus its new
tokens, the most the model attends over in that round.
"""

from __future__ import annotations

from motif.carryover.base import CarryOver
from motif.carryover.grid import GridCell
from motif.carryover.model_ended import (
    DEFAULT_MAX_ROUNDS,
    MIN_ROUND_TOKENS,
    ModelEndedCarryOver,
)
from motif.carryover.one_pass import OnePass
from motif.carryover.registry import (
    CARRY_OVERS,
    ROUND_ENDS,
    CarryOverName,
    carry_over_class,
    check_carry_over,
    check_round_end,
    make_carry_over,
    protocol_carry_over,
    stored_carry_over,
    strategy_classes,
)
from motif.carryover.summary import SUMMARY_RULES, SummaryCarryOver, SummaryRule, extract_summary
from motif.carryover.tail import TailCarryOver
from motif.carryover.window import (
    DELETHINK_CHUNK,
    DELETHINK_CHUNKS,
    DELETHINK_HEAD,
    TAIL_OPTIONS,
    TailWindow,
    tail_window,
)

__all__ = [
    "CARRY_OVERS",
    "DELETHINK_CHUNK",
    "DELETHINK_CHUNKS",
    "DEFAULT_MAX_ROUNDS",
    "DELETHINK_HEAD",
    "MIN_ROUND_TOKENS",
    "ROUND_ENDS",
    "SUMMARY_RULES",
    "TAIL_OPTIONS",
    "CarryOver",
    "CarryOverName",
    "GridCell",
    "ModelEndedCarryOver",
    "OnePass",
    "SummaryCarryOver",
    "SummaryRule",
    "TailCarryOver",
    "TailWindow",
    "carry_over_class",
    "check_carry_over",
    "check_round_end",
    "extract_summary",
    "make_carry_over",
    "protocol_carry_over",
    "stored_carry_over",
    "strategy_classes",
    "tail_window",
]
