"""The generation backend interface: the one place where generation varies.

The rollout engine only calls :meth:`GenerationBackend.generate` (inside :meth:`~GenerationBackend.frozen_weights`); a backend turns chats
into text. Chunking by ``max_batch_size`` lives here, so every backend honours it the same way.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

from motif.protocol import Chat


@dataclass(frozen=True)
class SamplingParams:
    """How to sample one generate call.

    Args:
        max_new_tokens: most tokens generated per sequence.
        temperature: 0 means greedy decoding.
        top_p: nucleus mass in (0, 1]; 1 disables it.
        top_k: keep the k most likely tokens; 0 disables it.
        seed: seeds the sampler for reproducible output; None leaves the RNG as it is.
    """

    max_new_tokens: int = 256
    temperature: float = 0.0
    top_p: float = 1.0
    top_k: int = 0
    seed: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.max_new_tokens, int) or self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be an integer >= 1, got {self.max_new_tokens!r}")
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0 (0 = greedy), got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.top_k < 0:
            raise ValueError(f"top_k must be >= 0 (0 = off), got {self.top_k}")

    @property
    def greedy(self) -> bool:
        """True when decoding is greedy."""
        return self.temperature == 0


@dataclass
class GenerationOutput:
    """One generated sequence.

    Args:
        text: decoded completion, special tokens removed.
        prompt_tokens: tokens in the templated prompt.
        completion_tokens: tokens generated, EOS included when one was produced.
        truncated: True when generation stopped at ``max_new_tokens`` without an EOS.
        token_ids: the generated token ids (EOS included when produced).
        context_overflow: the prompt plus ``max_new_tokens`` did not fit the model's context,
            so nothing was generated (a backend in ``overflow="skip"`` mode; the caller
            records the trajectory as cut at this round).
    """

    text: str
    prompt_tokens: int
    completion_tokens: int
    truncated: bool
    token_ids: list[int] = field(default_factory=list)
    context_overflow: bool = False


class GenerationBackend(abc.ABC):
    """Generates completions for chats, in chunks of at most ``max_batch_size`` sequences."""

    def __init__(self, max_batch_size: int = 64) -> None:
        if max_batch_size < 1:
            raise ValueError(f"max_batch_size must be >= 1, got {max_batch_size}")
        self.max_batch_size = max_batch_size

    def generate(
        self,
        chats: Sequence[Chat],
        params: SamplingParams,
        num_samples: int = 1,
        prefixes: Sequence[Sequence[int]] | None = None,
    ) -> list[GenerationOutput]:
        """Generate ``num_samples`` completions for every chat.

        ``prefixes`` (optional, one per chat): token ids the assistant turn already holds; the
        model continues that turn after them (:meth:`continue_prompts`). ``prompt_tokens`` then
        counts them, and the output holds only the new tokens.

        Returns a flat list ordered chat by chat: the samples of ``chats[0]`` first.
        """
        if num_samples < 1:
            raise ValueError(f"num_samples must be >= 1, got {num_samples}")
        if not chats:
            return []
        prompts = self.render(chats)
        if prefixes is not None:
            prompts = self.continue_prompts(chats, prompts, prefixes)
        if params.seed is not None:
            self.seed(params.seed)
        # Chunk by whole prompts so one prompt's samples stay together (prefix sharing).
        per_chunk = max(1, self.max_batch_size // num_samples)
        outputs: list[GenerationOutput] = []
        for start in range(0, len(prompts), per_chunk):
            chunk = prompts[start : start + per_chunk]
            outputs.extend(self._generate_chunk(chunk, params, num_samples, start))
        return outputs

    @contextmanager
    def frozen_weights(self) -> Iterator[None]:
        """A block in which the caller promises the weights (and adapter state) stay the same.

        Inside it a backend may keep work derived from the weights from one ``generate`` call
        to the next, and must drop it on exit; nested blocks share the outer one. The rollout
        engine opens one per rollout: every round of one rollout runs with one policy.
        Default: nothing is kept.
        """
        yield

    def seed(self, seed: int) -> None:  # noqa: B027 - optional hook, deliberately a no-op
        """Seed the backend's sampler once per generate call (default: nothing to seed)."""

    def render(self, chats: Sequence[Chat]) -> list:
        """Turn chats into the backend's prompt form (default: the chats themselves)."""
        return list(chats)

    def continue_prompts(
        self, chats: Sequence[Chat], prompts: list, prefixes: Sequence[Sequence[int]]
    ) -> list:
        """Rendered prompts whose assistant turn already holds ``prefixes`` (token ids).

        Raises:
            NotImplementedError: this backend cannot continue an assistant turn (the default).
        """
        raise NotImplementedError(f"{type(self).__name__} cannot continue an assistant turn")

    @abc.abstractmethod
    def _generate_chunk(
        self, prompts: list, params: SamplingParams, num_samples: int, offset: int
    ) -> list[GenerationOutput]:
        """Generate ``num_samples`` outputs for each prompt of one chunk.

        ``offset`` is the index of ``prompts[0]`` in the whole request, for error messages.
        """
