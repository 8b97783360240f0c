"""Rendering chats with a model's chat template, checked against the template itself.

Every chat motif renders (inference, evaluation, training rounds and continuations,
demonstrations) goes through :func:`render_chat`. Two properties of a template are read
once per template by rendering a probe chat (never from a list of model names):

* A template that refuses the system role (Gemma's ``raise_exception('System role not
  supported')``) gets the system prompt folded into the first user turn
  (:func:`motif.prompts.fold_system`, the layout Gemma 3's own template gives it); one note
  line on stderr says so, once per template and process.
* A template that opens no assistant turn for ``add_generation_prompt=True`` (it renders the
  same text either way, while an assistant message gets a role header) would make the model
  write that header itself, and the summary or answer read from the reply would carry it into
  the next round: refused for every carry-over, with one line naming the model and the fix.

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

import sys
from collections.abc import Sequence
from typing import Any

from motif.errors import ConfigError
from motif.prompts import Chat, fold_system

_PROBE = "Let me continue this thought"
"""A partial assistant message used to probe the template (plain words: no normalisation)."""
_PROBE_CHAT: Chat = [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "What is 1 + 1?"},
]
_FOLDS: dict[str, bool] = {}
"""Whether each template (by its text) refuses the system role; filled by :func:`folds_system`."""


def _apply(tokenizer: Any, chat: Chat, **kwargs: Any) -> str:
    return tokenizer.apply_chat_template(chat, tokenize=False, **kwargs)


def _name(tokenizer: Any) -> str:
    return str(getattr(tokenizer, "name_or_path", "") or "this model")


def render_chat(tokenizer: Any, chat: Chat, **kwargs: Any) -> str:
    """``chat`` rendered by the tokenizer's chat template as text (``kwargs``: e.g.
    ``add_generation_prompt``, ``continue_final_message``), its system message folded into
    the first user turn when the template refuses the system role.

    Raises:
        ConfigError: see :func:`folds_system`.
    """
    if folds_system(tokenizer):
        chat = fold_system(chat)
    return _apply(tokenizer, chat, **kwargs)


def folds_system(tokenizer: Any) -> bool:
    """Whether this template refuses a system message (motif then folds it into the user turn).

    Decided once per template: a system and a user message are rendered; when that raises
    and the folded chat renders, the answer is True and a note line goes to stderr. The
    template's generation prompt is checked on the same chat (:func:`check_generation_prompt`).

    Raises:
        ConfigError: naming the model, when the template fails on the folded chat too, or
            opens no assistant turn for ``add_generation_prompt=True``.
    """
    key = getattr(tokenizer, "chat_template", None)
    if isinstance(key, str) and key in _FOLDS:
        return _FOLDS[key]
    folds, chat = False, _PROBE_CHAT
    try:
        _apply(tokenizer, chat, add_generation_prompt=True)
    except Exception as exc:  # the template's own failure, whatever its type
        folds, chat = True, fold_system(chat)
        try:
            _apply(tokenizer, chat, add_generation_prompt=True)
        except Exception:
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise ConfigError(
                f"the chat template of {_name(tokenizer)} cannot render a system and a user "
                f"message ({reason}); motif needs a chat model whose template renders one"
            ) from exc
    check_generation_prompt(tokenizer, chat)
    if folds:
        print(
            f"note: the chat template of {_name(tokenizer)} refuses a system message; the "
            "system prompt is folded into the first user turn",
            file=sys.stderr,
        )
    if isinstance(key, str):
        _FOLDS[key] = folds
    return folds


def check_generation_prompt(tokenizer: Any, chat: Chat) -> None:
    """Raise unless ``add_generation_prompt=True`` opens the assistant turn the template gives
    an assistant message.

    A template that renders the same text with and without the generation prompt, while an
    assistant message after the chat is rendered with a header before its content (the role
    name), is refused: the model would write that header itself. A template whose assistant
    messages carry no header (plain concatenation) is not.

    Raises:
        ConfigError: naming the model, ``add_generation_prompt`` and the fix.
    """
    opened = _apply(tokenizer, chat, add_generation_prompt=True)
    if opened != _apply(tokenizer, chat, add_generation_prompt=False):
        return
    try:
        replied = _apply(tokenizer, [*chat, {"role": "assistant", "content": _PROBE}])
    except Exception:  # a template that cannot show a reply: nothing to compare against
        return
    at = replied.find(_PROBE, len(opened))
    header = replied[len(opened) : at] if replied.startswith(opened) and at >= 0 else ""
    if header.strip():
        raise ConfigError(
            f"the chat template of {_name(tokenizer)} ignores add_generation_prompt: it opens "
            f"no assistant turn, so the model would write the role header ({header.strip()!r}) "
            "itself and carry it into the next round; use a model whose chat template opens "
            "the assistant turn when add_generation_prompt is true, or fix its chat_template"
        )


def check_continuation(tokenizer: Any, chat: Chat | None = None) -> None:
    """Raise unless the chat template continues an assistant turn right after its generation prompt.

    Args:
        tokenizer: a tokenizer with a chat template.
        chat: the chat to probe with (default: a system and a user message).

    Raises:
        ConfigError: naming ``--carry-over tail`` and the fix, when the template raises on
            ``continue_final_message`` or renders a partial assistant message anywhere but
            directly after the generation prompt (or see :func:`folds_system`).
    """
    chat = chat or _PROBE_CHAT
    opened = render_chat(tokenizer, chat, add_generation_prompt=True)
    partial = [*chat, {"role": "assistant", "content": _PROBE}]
    try:
        continued = render_chat(tokenizer, partial, continue_final_message=True)
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
