"""Carry-over strategies: what a bounded-context answer hands from one round (or chunk) to the next.

Pure functions and dataclasses, no torch. Three strategies share one rollout loop
(:class:`motif.engine.RolloutEngine`):

* ``summary``: each round is a fresh chat holding the question and the text the model wrote
  for the next round (its ``<answer>``). MOTIF's progress summary (arXiv 2507.02851) and
  InftyThink's model-written summary (arXiv 2503.06692). The paper preset.
* ``tail``: Delethink, "The Markovian Thinker" (arXiv 2510.06557). One long thought written in
  chunks. Chunk 1 writes up to ``C`` tokens after the single-round prompt; every later chunk
  re-prompts the *same assistant turn* with the question, the first ``h`` tokens of the thought
  and its last ``m`` tokens, and the model keeps writing, up to ``C - h - m`` new tokens, so the
  part of the context after the prompt never holds more than ``C`` tokens. It stops at the
  model's end-of-sequence or after ``I`` chunks.
* ``none``: a single pass, the whole budget in one context (the long chain-of-thought reference).

Budgets are counted in tokens of the model's tokenizer. *New tokens* are tokens the model
generated; the *context* of a round is its prompt tokens (chat template included) plus its new
tokens, the most the model attends over in that round.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from motif.errors import ConfigError

CarryOver = Literal["summary", "tail", "none"]
CARRY_OVERS: tuple[str, ...] = ("summary", "tail", "none")

DELETHINK_CHUNK = 8192
"""C, the chunk size of Delethink's main runs (arXiv 2510.06557, section 4)."""
DELETHINK_HEAD = 100
"""h, the first tokens of the thought kept in every chunk's prompt."""
DELETHINK_CHUNKS = 5
"""I, the most chunks of one thought (8K chunks for 24K tokens of thinking)."""


def check_carry_over(name: str, option: str = "--carry-over") -> None:
    """Raise :class:`ConfigError` unless ``name`` is one of :data:`CARRY_OVERS`."""
    if name not in CARRY_OVERS:
        raise ConfigError(f"{option} must be one of {', '.join(CARRY_OVERS)}; got {name!r}")


@dataclass(frozen=True)
class TailWindow:
    """Delethink's chunking of one long thought.

    Args:
        chunk: C, the most tokens of thought in any chunk's context (new tokens included).
        head: h, the first tokens of the thought kept in every later chunk's prompt.
        tail: m, the last tokens of the thought kept; None means ``chunk // 2`` (the paper's m = C/2).
        max_chunks: I, the most chunks; the thought stops earlier at end-of-sequence.

    Raises:
        ConfigError: ``max_chunks < 1``, ``tail >= chunk``, or ``head + tail`` leaves no room to
            write in a later chunk (``chunk - head - tail < 1``); the message names the option.
    """

    chunk: int = DELETHINK_CHUNK
    head: int = DELETHINK_HEAD
    tail: int | None = None
    max_chunks: int = DELETHINK_CHUNKS

    def __post_init__(self) -> None:
        if self.chunk < 1:
            raise ConfigError(f"--tail-chunk must be >= 1 token; got {self.chunk}")
        if self.head < 0 or self.keep_tail < 0:
            raise ConfigError("--tail-head and --tail-keep must be >= 0 tokens")
        if self.max_chunks < 1:
            raise ConfigError(f"--tail-chunks must be >= 1; got {self.max_chunks}")
        if self.keep_tail >= self.chunk:
            raise ConfigError(
                f"--tail-keep ({self.keep_tail}) must be smaller than --tail-chunk ({self.chunk}); "
                "the paper keeps half a chunk"
            )
        if self.later_new_tokens < 1:
            raise ConfigError(
                f"--tail-chunk ({self.chunk}) leaves no room to write after keeping --tail-head "
                f"({self.head}) + --tail-keep ({self.keep_tail}) tokens: raise --tail-chunk or "
                "lower the other two"
            )

    @property
    def keep_tail(self) -> int:
        """m: the last tokens of the thought carried into the next chunk."""
        return self.chunk // 2 if self.tail is None else self.tail

    @property
    def later_new_tokens(self) -> int:
        """New tokens a chunk after the first may write: ``C - h - m``."""
        return self.chunk - self.head - self.keep_tail

    def new_tokens(self, index: int) -> int:
        """The budget of chunk ``index`` (1-based): C for the first, ``C - h - m`` after."""
        return self.chunk if index == 1 else self.later_new_tokens

    @property
    def total_budget(self) -> int:
        """Most new tokens of one thought: ``C + (I - 1)(C - h - m)``.

        With ``h = 0`` this is the paper's ``C + (I - 1)(C - m)``.
        """
        return self.chunk + (self.max_chunks - 1) * self.later_new_tokens

    def carried(self, thought: Sequence[int]) -> list[int]:
        """The part of the thought (token ids) kept in the next chunk's prompt.

        The whole thought when it fits ``h + m`` tokens, else its first ``h`` and last ``m``.
        """
        thought = list(thought)
        if len(thought) <= self.head + self.keep_tail:
            return thought
        tail = thought[len(thought) - self.keep_tail :] if self.keep_tail else []
        return thought[: self.head] + tail


@dataclass(frozen=True)
class GridCell:
    """One cell of an equal-budget comparison.

    Args:
        carry_over: the strategy.
        rounds: rounds (``summary``), chunks (``tail``), or 1 (``none``).
        budget: new tokens per round (``summary``: every round; ``tail``: the chunk size C;
            ``none``: the whole budget).
    """

    carry_over: CarryOver
    rounds: int
    budget: int

    def total_budget(self, head: int = 0, keep: int | None = None) -> int:
        """Most new tokens of one trajectory under this cell."""
        if self.carry_over == "tail":
            return self.window(head, keep).total_budget
        return self.rounds * self.budget

    def largest_context(self) -> int:
        """Most model-written tokens in one round's context (prompt template and question aside).

        ``summary``: 2B, the carried previous answer (at most B tokens, it was written in the
        previous round) plus B new tokens; ``tail``: C (the carried h + m plus C - h - m new);
        ``none``: the whole budget. The measured context (prompt included) is in each eval's
        ``tokens.largest_round_context``.
        """
        if self.carry_over == "summary" and self.rounds > 1:
            return 2 * self.budget
        return self.budget

    def window(self, head: int = 0, keep: int | None = None) -> TailWindow:
        """The :class:`TailWindow` of a ``tail`` cell."""
        return TailWindow(chunk=self.budget, head=head, tail=keep, max_chunks=self.rounds)

    @property
    def label(self) -> str:
        """``summary-3x64``, ``tail-3x64``, ``none-1x192``."""
        return f"{self.carry_over}-{self.rounds}x{self.budget}"
