"""The held-out check's hand-over watch (motif.training.heldout, issue 33, item 3): the report
of a strategy that hands a state on gets the ``handover`` block, its old keys unchanged."""

from __future__ import annotations

import re

from fakes import ScriptedBackend
from motif.protocol import Protocol
from motif.training.demos import demonstration_responses, load_items
from motif.training.heldout import format_report

REPORT_KEYS = {
    "items", "responses", "format_rate", "trajectory_format_rate", "format_rate_by_round",
    "paper_strict_rate", "accuracy", "step_accuracy", "steps_right", "steps_written",
    "state_right_rate", "state_right_by_round", "truncated", "context_overflow_cut",
    "generation_seconds", "sample",
}  # fmt: skip


def round_of(chat) -> int:
    match = re.search(r"Progress in round (\d+)", chat[1]["content"])
    return int(match.group(1)) + 1 if match else 1


def demo_script(problems, rounds: int, smuggle: bool = False):
    """The demonstrations' replies; ``smuggle``: round 1 also boxes the final total."""
    replies = {p.question: demonstration_responses(p, rounds) for p in problems}
    golds = {p.question: p.answer for p in problems}

    def script(chat, sample):
        question = next(q for q in replies if chat[1]["content"].startswith(q))
        text = replies[question][round_of(chat) - 1]
        if smuggle and round_of(chat) == 1:
            text = text.replace("</answer>", f"\\boxed{{{golds[question]}}}\n</answer>")
        return text

    return script


def test_demonstrations_hand_over_clean_states():
    problems = load_items("chain_sum", 4, 5)
    backend = ScriptedBackend(demo_script(problems, 3))
    report = format_report(backend, problems, Protocol(rounds=3), max_new_tokens=10_000)
    assert set(report) == REPORT_KEYS | {"handover"} and report["accuracy"] == 1.0
    block = report["handover"]
    assert block["handed"] == [4, 4]
    for flag in ("smuggled", "degenerate", "copied", "boxed"):
        assert block[flag] == [0.0, 0.0] and block["overall"][flag] == 0.0


def test_an_answer_boxed_in_round_1_of_3_is_smuggled_and_boxed():
    problems = load_items("chain_sum", 4, 5)
    backend = ScriptedBackend(demo_script(problems, 3, smuggle=True))
    report = format_report(backend, problems, Protocol(rounds=3), max_new_tokens=10_000)
    block = report["handover"]
    assert block["smuggled"] == [1.0, 0.0] and block["boxed"] == [1.0, 0.0]
    assert block["counts"]["smuggled"] == [4, 0] and block["overall"]["smuggled"] == 4 / 8
    assert block["any_round"]["smuggled"] == 1.0 and block["copied"] == [0.0, 0.0]


def test_one_pass_gets_no_hand_over_block():
    problems = load_items("chain_sum", 2, 5)
    backend = ScriptedBackend(demo_script(problems, 1))
    report = format_report(backend, problems, Protocol(rounds=1, carry_over="none"), 10_000)
    assert set(report) == REPORT_KEYS
