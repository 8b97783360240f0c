"""Delethink's window: how one long thought is cut into chunks (``--carry-over tail``).

Token arithmetic only (C, h, m, I of arXiv 2510.06557); the strategy that uses it is
:class:`motif.carryover.tail.TailCarryOver`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from motif.errors import ConfigError

TAIL_OPTIONS: tuple[str, ...] = ("tail_chunk", "tail_head", "tail_keep", "tail_chunks")
"""The ``ProtocolArgs`` fields of ``--carry-over tail`` (Delethink's C, h, m and I)."""

DELETHINK_CHUNK = 8192
"""C, the chunk size of Delethink's main runs (arXiv 2510.06557, section 4)."""
DELETHINK_HEAD = 100
"""h, the first tokens of the thought kept in every chunk's prompt."""
DELETHINK_CHUNKS = 5
"""I, the most chunks of one thought (8K chunks for 24K tokens of thinking)."""


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


def tail_window(args: Any) -> TailWindow:
    """The :class:`TailWindow` of a ``ProtocolArgs``' ``--tail-*`` options, whatever its
    ``--carry-over`` (``motif sft --extra-carry-over tail`` demonstrates it).

    Raises:
        ConfigError: C, h, m, I do not leave room to write (see :class:`TailWindow`).
    """
    return TailWindow(
        chunk=args.tail_chunk, head=args.tail_head, tail=args.tail_keep, max_chunks=args.tail_chunks
    )
