"""The generation backend interface: the one place where generation varies.

The rollout engine only calls :meth:`GenerationBackend.generate` (inside :meth:`~GenerationBackend.frozen_weights`); a backend turns chats
into text. Chunking by ``max_batch_size`` lives here, so every backend honours it the same way.
So do the helpers every backend shares (no torch): the texts of pieces of one generated id
sequence read from the whole sequence (:func:`piece_texts`), the summary a later round's user
turn carries (:meth:`GenerationBackend._cut_summary`, read from the
:class:`motif.prompts.RoundChat` the carry-over built), and context-overflow errors that offer only the fixes
that help (:func:`overflow_error`).
"""

from __future__ import annotations

import abc
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from motif.prompts import Chat, RoundChat


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
        carried_tokens: of ``prompt_tokens``, the tokens the summary carried in the user turn
            takes (a later ``summary`` round: the prompt's length minus that of the same
            prompt carrying an empty summary, after any ``truncate_left`` cut); 0 when the
            prompt carries none or the backend does not count them.
    """

    text: str
    prompt_tokens: int
    completion_tokens: int
    truncated: bool
    token_ids: list[int] = field(default_factory=list)
    context_overflow: bool = False
    carried_tokens: int = 0


class ContextOverflow(ValueError):
    """A prompt plus its token budget does not fit the model's context (``overflow="error"``).

    Args:
        facts: what does not fit (``"prompt 0 has 300 tokens; with max_new_tokens=8 it
            exceeds the model's context of 256 tokens"``).
        fixes: the fixes that help this prompt, each one on its own (``"lower {budget}"``,
            ``"shorten the question"``); ``{budget}`` stands for the round's token budget.
        budget: how the round's token budget is named in the message.
    """

    def __init__(
        self,
        facts: str,
        fixes: Sequence[str] = ("lower {budget}",),
        budget: str = "the round's token budget",
    ) -> None:
        self.facts, self.fixes = facts, list(fixes)
        helps = [fix.format(budget=budget) for fix in self.fixes]
        super().__init__(f"{facts}: {', or '.join(helps)}" if helps else facts)

    def named(self, where: str, budget: str) -> ContextOverflow:
        """The same overflow with ``where`` (``"in round 2"``) after the facts and the round's
        budget named as ``budget`` (the option that sets it)."""
        return ContextOverflow(f"{self.facts} {where}", self.fixes, budget)


def text_cuts(
    decode: Callable[[list[int]], str], ids: Sequence[int], offsets: Sequence[int]
) -> tuple[str, list[int]]:
    """The text of a whole id sequence, and where each token offset falls in it.

    ``decode(ids)`` once for the whole sequence; offset ``k`` (tokens) maps to the length of
    what ``decode(ids[:k])`` shares with that text (characters). A character whose bytes span
    the offset (a thin space, an emoji split over two tokens) decodes alone as U+FFFD, so it
    falls *after* the cut: it belongs to the part that completes it. Text is never read from
    a part decoded alone, which would hold that U+FFFD.

    Returns:
        ``(text, cuts)``: ``cuts[i]`` in ``0..len(text)`` for ``offsets[i]`` in
        ``0..len(ids)`` (0 and ``len(ids)`` map to 0 and ``len(text)``).
    """
    ids = list(ids)
    text = decode(ids)
    cuts = []
    for k in offsets:
        if k <= 0 or k >= len(ids):
            cuts.append(0 if k <= 0 else len(text))
        else:
            cuts.append(len(os.path.commonprefix([decode(ids[:k]), text])))
    return text, cuts


def piece_texts(
    decode: Callable[[list[int]], str], ids: Sequence[int], ends: Sequence[int]
) -> list[str]:
    """The texts of consecutive pieces of one id sequence, read from the whole sequence.

    ``ends``: each piece's end offset in tokens, ascending (the last is ``len(ids)``). The
    texts join into ``decode(ids)`` exactly; a character split over two pieces is in the
    later one (:func:`text_cuts`).
    """
    text, cuts = text_cuts(decode, ids, ends)
    texts, start = [], 0
    for cut in cuts:
        cut = max(cut, start)
        texts.append(text[start:cut])
        start = cut
    texts[-1] += text[start:]
    return texts


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
        self._chats = list(chats)  # prompt i's chat, for its carried summary (_carried)
        try:
            for start in range(0, len(prompts), per_chunk):
                chunk = prompts[start : start + per_chunk]
                outputs.extend(self._generate_chunk(chunk, params, num_samples, start))
        finally:
            self._chats = []
        return outputs

    def _carried(self, index: int) -> RoundChat | None:
        """Prompt ``index``'s chat (of the ``generate`` call in progress) when it carries a
        summary (a :class:`motif.prompts.RoundChat` whose ``carried`` is set), else None."""
        chats = getattr(self, "_chats", [])
        chat = chats[index] if index < len(chats) else None
        return chat if getattr(chat, "carried", None) is not None else None

    def _cut_summary(self, chat: RoundChat, room: int) -> list[int] | None:
        """The chat's ids with the oldest characters of its carried summary dropped to fit
        ``room`` tokens.

        Only the summary is cut, and only whole characters (the summary's text is cut, never
        its token ids): the system prompt, the template, the question and the round
        instructions stay whole, whatever their wording (the chat says where the summary
        sits). None when even no summary would fit.
        """
        summary = chat.carried[1]

        def render(start: int) -> list[int]:
            return self.render([chat.with_carried(summary[start:])])[0]

        if len(render(len(summary))) > room:
            return None
        low, high = 0, len(summary)  # the earliest start that fits: binary search
        while low < high:
            mid = (low + high) // 2
            low, high = (low, mid) if len(render(mid)) <= room else (mid + 1, high)
        return render(low)

    def _carried_tokens(self, index: int, ids: list[int]) -> int:
        """Tokens of ``ids`` (prompt ``index``, as fitted) that its carried summary takes:
        ``len(ids)`` minus the length of the same prompt carrying an empty summary."""
        chat = self._carried(index)
        if chat is None:
            return 0
        return max(0, len(ids) - len(self.render([chat.with_carried("")])[0]))

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

    def detokenize(self, token_ids: Sequence[int]) -> str:
        """The text of generated token ids decoded as one sequence (special tokens removed),
        as the backend decodes an output's ``text``.

        Raises:
            NotImplementedError: this backend cannot decode token ids (the default).
        """
        raise NotImplementedError(f"{type(self).__name__} cannot decode token ids")

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


def overflow_error(
    backend: Any,
    ids: list[int],
    index: int,
    params: SamplingParams,
    limit: int,
    where: str,
    fixes: Sequence[str] = (),
) -> ContextOverflow:
    """The :class:`ContextOverflow` of prompt ``index`` of ``backend``'s call, offering only
    fixes that help it.

    Lowering the round's budget, when the prompt alone is below ``limit``; cutting its carried
    summary (``truncate_left``), when the mode is not already cutting it and the prompt
    without it fits with the budget (or, with the budget lowered, at all); else shortening the
    question. ``fixes``: more fixes the caller knows help (a longer engine context).
    ``backend``: a transformers or vLLM backend inside ``generate`` (its carried summaries,
    ``overflow`` and ``render``).
    """
    parts = backend._carried(index)  # the chat when it carries a summary
    facts = f"prompt {index} has {len(ids)} tokens; with max_new_tokens={params.max_new_tokens} "
    facts += f"it exceeds {where}"
    smallest = len(ids) - (backend._carried_tokens(index, ids) if parts else 0)
    cutting = parts is not None and backend.overflow == "truncate_left"
    if cutting:
        facts += " even with its carried summary cut to nothing"
    cut = (
        "cut the carried summary (--context-overflow truncate; overflow='truncate_left' in the "
        "library)"
    )
    found = ["lower {budget}"] if (smallest if cutting else len(ids)) < limit else []
    if not cutting and smallest < len(ids):
        if smallest + params.max_new_tokens <= limit:
            found.append(cut)
        elif smallest < limit and not found:
            found.append("lower {budget} and " + cut)
    return ContextOverflow(facts, [*(found or ["shorten the question"]), *fixes])
