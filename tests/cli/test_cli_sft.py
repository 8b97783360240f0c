"""``motif sft``'s own lines: rows trained as counted, the held-out check in words (motif.cli.sft)."""

from __future__ import annotations

import pytest

from motif.cli.sft import held_out_line, trained_rows


@pytest.mark.parametrize(
    ("rows", "seen", "text"),
    [
        (16, 16, "16 rows"),
        (16, 8, "8 of 16 rows"),  # --max-steps stopped after 2 batches of 4
        (16, 32, "32 rows: 2 passes over 16"),
        (1, 1, "1 row"),
    ],
)
def test_the_rows_a_run_trained_on_are_the_rows_it_saw(rows, seen, text):
    assert trained_rows({"rows": rows, "rows_seen": seen}) == text


def test_rows_seen_counts_steps_of_batches_up_to_the_epochs():
    from types import SimpleNamespace

    from motif.training.sft import rows_seen

    config = SimpleNamespace(
        sft=SimpleNamespace(per_device_batch_size=4, gradient_accumulation_steps=1, epochs=1)
    )
    assert rows_seen(config, 16, 2, SimpleNamespace(world_size=1)) == 8
    assert rows_seen(config, 14, 4, SimpleNamespace(world_size=1)) == 14  # a short last batch
    assert rows_seen(config, 16, 2, SimpleNamespace(world_size=2)) == 16


def test_the_held_out_check_is_one_line_in_words():
    held = {
        "items": 1,
        "responses": 2,
        "accuracy": 0.5,
        "format_rate": 1.0,
        "step_accuracy": None,
        "state_right_rate": 0.25,
        "truncated": 0,
        "context_overflow_cut": 1,
        "sample": {"long": "text"},
    }
    assert held_out_line(held) == (
        "1 item, 2 replies: accuracy 50.0%, format 100.0%, states right 25.0%, 1 cut trajectory"
    )
