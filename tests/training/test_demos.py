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


def test_model_ended_demonstrations_summarise_then_conclude():
    from motif.answer_format import extract_final_answer
    from motif.prompts import MODEL_ENDED_SYSTEM_PROMPT
    from motif.protocol import Protocol
    from motif.training.demos import build_demonstrations

    rows = build_demonstrations("chain_sum", 3, 2, 0, round_end="model")
    assert len(rows) == 6  # 2 items x phi = 3 rounds
    protocol = Protocol(rounds=3, round_end="model")
    for first in (0, 3):
        item = rows[first : first + 3]
        texts = [r["completion"][0]["content"] for r in item]
        assert [extract_final_answer(t) is not None for t in texts] == [False, False, True]
        assert all(r["prompt"][0]["content"] == MODEL_ENDED_SYSTEM_PROMPT for r in item)
        question, summary = item[0]["prompt"][1]["content"], None
        for i, (row, text) in enumerate(zip(item, texts, strict=True), start=1):
            assert row["prompt"] == protocol.messages(question, i, summary)  # as the engine sends
            summary = protocol.summary(text)
        assert item[2]["prompt"][1]["content"].endswith(
            "Conclude: provide the final answer in \\boxed{}."
        )


def test_a_model_ended_demonstration_may_conclude_before_phi():
    from motif.answer_format import extract_final_answer
    from motif.protocol import Protocol
    from motif.training.demos import demonstration_rows, load_items

    item = load_items("chain_sum", 1, 0)[0]
    rows = demonstration_rows(item, Protocol(rounds=4, round_end="model"), rounds=2)
    assert len(rows) == 2
    assert extract_final_answer(rows[1]["completion"][0]["content"]) == str(item.answer)
    assert "Conclude" not in rows[1]["prompt"][1]["content"]  # round 2 of at most 4 is not the last
