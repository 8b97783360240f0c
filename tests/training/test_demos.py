"""Demonstration rows of a ``tail`` thought (real tokenizer): texts shown for each chunk are
read from the whole thought, so a character split over a chunk end shows whole."""

from __future__ import annotations

from motif.carryover import TailWindow
from motif.prompts import round_messages
from motif.training.demos import chunk_rows

THOUGHT = (
    "<reasoning>\nDone \U0001f600 so 1\u2009000.\n</reasoning>\n<answer>\n\\boxed{1000}\n</answer>"
)


def test_chunk_texts_are_cut_from_the_whole_thought(tokenizer):
    ids = [*tokenizer(THOUGHT, add_special_tokens=False)["input_ids"], tokenizer.eos_token_id]
    split = next(k for k in range(len(ids)) if tokenizer.decode(ids[:k]).endswith("\ufffd"))
    window = TailWindow(chunk=split, head=1, tail=2, max_chunks=20)  # chunk 1 ends in the emoji
    chat = round_messages("Q?", 1, 1)
    rows = chunk_rows(chat, [1, 2, 3], ids, window, tokenizer.decode)
    texts = [row["completion"][0]["content"] for row in rows]
    assert "".join(texts) == tokenizer.decode(ids)  # the chunks join into the thought
    assert "\U0001f600" in texts[1] and "\U0001f600" not in texts[0]
    shown = [row["prompt"][-1]["content"] for row in rows[1:]]
    assert not any("\ufffd" in t for t in [*texts, *shown])
    for row in rows:  # the token ids trained on are unchanged: prompt, carried, new
        new = sum(row["completion_mask"])
        assert row["input_ids"][:3] == [1, 2, 3] and len(row["input_ids"]) - new >= 3
    assert sum(sum(row["completion_mask"]) for row in rows) == len(ids)
    assert shown[-1].startswith(tokenizer.decode(ids[:1]))  # the head's text, then the tail's
