"""The backend interface's text helpers: pieces of one id sequence read from the whole sequence
(real tokenizer: a thin space and an emoji are two byte-level tokens each), and the
context-overflow error's fixes."""

from __future__ import annotations

import pytest

from motif.backends.base import ContextOverflow, piece_texts, text_cuts

THIN = "\\boxed{1\u2009000}"  # U+2009 is three UTF-8 bytes, two SmolLM2 tokens
EMOJI = "Done \U0001f600 ok"  # four UTF-8 bytes, two SmolLM2 tokens


def decoder(tokenizer):
    return lambda ids: tokenizer.decode(ids, skip_special_tokens=True)


def split_inside(tokenizer, text: str, char: str) -> tuple[list[int], int]:
    """``text``'s ids and an offset that falls inside ``char``'s bytes (its tokens split)."""
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    for k in range(1, len(ids)):
        if tokenizer.decode(ids[:k]).endswith("\ufffd") and char in tokenizer.decode(ids[: k + 1]):
            return ids, k
    raise AssertionError(f"{char!r} is one token here; the test needs a split character")


@pytest.mark.parametrize(("text", "char"), [(THIN, "\u2009"), (EMOJI, "\U0001f600")])
def test_pieces_split_inside_a_character_join_into_the_whole_text(tokenizer, text, char):
    ids, k = split_inside(tokenizer, text, char)
    decode = decoder(tokenizer)
    alone = decode(ids[:k]) + decode(ids[k:])  # what joining per-piece decodes gave
    assert "\ufffd" in alone and alone != text
    pieces = piece_texts(decode, ids, [k, len(ids)])
    assert "".join(pieces) == text and "\ufffd" not in "".join(pieces)
    assert char in pieces[1] and char not in pieces[0]  # the piece that completes it holds it


def test_text_cuts_map_token_offsets_to_characters(tokenizer):
    ids, k = split_inside(tokenizer, THIN, "\u2009")
    text, cuts = text_cuts(decoder(tokenizer), ids, [0, 3, k, len(ids)])
    assert text == THIN
    assert cuts[0] == 0 and cuts[-1] == len(THIN)
    assert THIN[: cuts[1]] == tokenizer.decode(ids[:3])  # a whole-character offset: exact
    assert THIN[: cuts[2]] == "\\boxed{1"  # inside the thin space: cut before it


def test_pieces_of_whole_tokens_are_the_tokens_text(tokenizer):
    ids = tokenizer("one two three", add_special_tokens=False)["input_ids"]
    pieces = piece_texts(decoder(tokenizer), ids, [1, 2, len(ids)])
    assert pieces == [tokenizer.decode(ids[:1]), tokenizer.decode(ids[1:2]), " three"]


@pytest.mark.parametrize(
    ("fixes", "message"),
    [
        (None, "F: lower the round's token budget"),
        (["lower {budget}", "cut it"], "F: lower the round's token budget, or cut it"),
        (["lower {budget} and cut it"], "F: lower the round's token budget and cut it"),
        (["shorten the question"], "F: shorten the question"),
    ],
)
def test_context_overflow_lists_only_the_fixes_given(fixes, message):
    exc = ContextOverflow("F") if fixes is None else ContextOverflow("F", fixes)
    assert str(exc) == message
    named = exc.named("in round 2", "--later-max-new-tokens")
    assert str(named) == message.replace("F:", "F in round 2:").replace(
        "the round's token budget", "--later-max-new-tokens"
    )
