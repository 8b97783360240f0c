"""Test doubles: a scripted generation backend that answers from a function of the chat."""

from __future__ import annotations

from collections.abc import Callable

from motif.backends.base import GenerationBackend, GenerationOutput, SamplingParams
from motif.protocol import Chat

Script = Callable[[Chat, int], str]


class ScriptedBackend(GenerationBackend):
    """Answers each chat with ``script(chat, sample_index)``; records every call it gets.

    ``calls`` holds one entry per public ``generate`` call (number of chats, samples);
    ``chunks`` one entry per chunk (number of sequences), to check batching.
    """

    def __init__(self, script: Script, max_batch_size: int = 64) -> None:
        super().__init__(max_batch_size)
        self.script = script
        self.calls: list[tuple[int, int]] = []
        self.chunks: list[int] = []
        self.chats: list[Chat] = []

    def generate(self, chats, params, num_samples=1):
        self.calls.append((len(chats), num_samples))
        self.chats.extend(chats)
        return super().generate(chats, params, num_samples)

    def _generate_chunk(self, prompts, params: SamplingParams, num_samples, offset):
        self.chunks.append(len(prompts) * num_samples)
        outs = []
        for chat in prompts:
            for s in range(num_samples):
                text = self.script(chat, s)
                words = len(text.split())
                outs.append(
                    GenerationOutput(
                        text=text,
                        prompt_tokens=len(chat[-1]["content"].split()),
                        completion_tokens=min(words, params.max_new_tokens),
                        truncated=words > params.max_new_tokens,
                    )
                )
        return outs
