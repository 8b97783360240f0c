"""Test doubles: a scripted generation backend that answers from a function of the chat.

Tokens are words: every word of a reply is one token (its id from a vocabulary the backend
grows), and a reply's text is its words each followed by a space, so the texts of ``tail``
chunks join into the thought. A continued assistant turn (``prefixes``) reaches the script as
a third message, ``{"role": "assistant", "content": <the carried words>}``.
"""

from __future__ import annotations

from collections.abc import Callable

from motif.backends.base import GenerationBackend, GenerationOutput, SamplingParams
from motif.prompts import Chat

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
        self.prefixes: list = []
        self.vocab: dict[str, int] = {}

    def generate(self, chats, params, num_samples=1, prefixes=None):
        self.calls.append((len(chats), num_samples))
        self.chats.extend(chats)
        self.prefixes.extend(prefixes or [None] * len(chats))
        return super().generate(chats, params, num_samples, prefixes)

    def continue_prompts(self, chats, prompts, prefixes):
        words = {i: w for w, i in self.vocab.items()}
        return [
            [*chat, {"role": "assistant", "content": " ".join(words[t] for t in ids)}]
            for chat, ids in zip(prompts, prefixes, strict=True)
        ]

    def _ids(self, words):
        return [self.vocab.setdefault(w, len(self.vocab)) for w in words]

    def detokenize(self, token_ids):
        """The text of a whole id sequence (a tail thought is decoded whole)."""
        words = {i: w for w, i in self.vocab.items()}
        return "".join(words[t] + " " for t in token_ids)

    def _generate_chunk(self, prompts, params: SamplingParams, num_samples, offset):
        self.chunks.append(len(prompts) * num_samples)
        outs = []
        for chat in prompts:
            for s in range(num_samples):
                text = self.script(chat, s)
                words = text.split()
                kept = words[: params.max_new_tokens]
                carried = len(chat[2]["content"].split()) if len(chat) > 2 else 0
                outs.append(
                    GenerationOutput(
                        text=text
                        if len(words) <= params.max_new_tokens
                        else "".join(w + " " for w in kept),
                        prompt_tokens=len(chat[1]["content"].split()) + carried,
                        completion_tokens=len(kept),
                        truncated=len(words) > params.max_new_tokens,
                        token_ids=self._ids(kept),
                    )
                )
        return outs
