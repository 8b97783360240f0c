"""Continuing a started assistant turn through the chat template's own continuation support.

A ``tail`` chunk (``motif.carryover``) re-prompts the *same* assistant turn with carried
thought tokens, and the model keeps writing. The carried tokens are the model's own token ids,
appended after the templated prompt where the assistant turn opens, so nothing is decoded and
re-tokenized (which could change the tokens). That this point is where the template continues
an assistant turn is checked with the template itself: rendering the chat plus a partial
assistant message with ``continue_final_message=True`` (transformers'
``apply_chat_template``) must give the generation prompt followed by that message, exactly.
A template that inserts anything there (a thinking block, a stripped or reformatted message)
cannot continue a turn this way, and ``--carry-over tail`` refuses it.

No torch: works on any tokenizer with ``apply_chat_template``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from motif.errors import ConfigError
from motif.protocol import Chat

_PROBE = "Let me continue this thought"
"""A partial assistant message used to probe the template (plain words: no normalisation)."""


def _render(tokenizer: Any, chat: Chat, **kwargs: Any) -> str:
    return tokenizer.apply_chat_template(chat, tokenize=False, **kwargs)


def check_continuation(tokenizer: Any, chat: Chat | None = None) -> None:
    """Raise unless the chat template continues an assistant turn right after its generation prompt.

    Args:
        tokenizer: a tokenizer with a chat template.
        chat: the chat to probe with (default: a system and a user message).

    Raises:
        ConfigError: naming ``--carry-over tail`` and the fix, when the template raises on
            ``continue_final_message`` or renders a partial assistant message anywhere but
            directly after the generation prompt.
    """
    chat = chat or [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "What is 1 + 1?"},
    ]
    opened = _render(tokenizer, chat, add_generation_prompt=True)
    partial = [*chat, {"role": "assistant", "content": _PROBE}]
    try:
        continued = _render(tokenizer, partial, continue_final_message=True)
    except Exception as exc:  # the template's own failure, whatever its type
        raise _unsupported(f"continue_final_message fails: {exc}") from exc
    if continued != opened + _PROBE:
        raise _unsupported(
            "a partial assistant message is not rendered right after the generation prompt"
        )


def _unsupported(why: str) -> ConfigError:
    return ConfigError(
        f"--carry-over tail needs a chat template that continues an assistant turn, and this "
        f"model's cannot ({why}); use --carry-over summary or none, or a model whose template "
        "supports continue_final_message"
    )


def continue_prompts(
    tokenizer: Any, chats: Sequence[Chat], prompts: Sequence[list[int]], prefixes: Sequence
) -> list[list[int]]:
    """Each rendered prompt (token ids, generation prompt included) followed by its prefix.

    ``prefixes[i]`` holds the token ids already written in the assistant turn of ``chats[i]``;
    the template is checked once on ``chats[0]`` (:func:`check_continuation`).

    Raises:
        ValueError: the lengths differ. ConfigError: see :func:`check_continuation`.
    """
    if not len(chats) == len(prompts) == len(prefixes):
        raise ValueError(f"got {len(chats)} chats but {len(prefixes)} prefixes")
    if chats:
        check_continuation(tokenizer, list(chats[0]))
    return [list(p) + [int(t) for t in x] for p, x in zip(prompts, prefixes, strict=True)]
