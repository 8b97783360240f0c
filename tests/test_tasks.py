"""Long-horizon tasks: step and state checkers, the knob, demonstrations split over any number
of rounds (summary) or cut into chunks (tail), and the checks in eval rows and metrics."""

from __future__ import annotations

import json
import re

import pytest

from conftest import FIXTURES, REPO
from eval_fakes import scripted_chain_eval
from fakes import ScriptedBackend
from motif.answer_format import format_ok, parse_answer, parse_boxed
from motif.backends.base import GenerationBackend, GenerationOutput, SamplingParams
from motif.carryover import TailWindow, extract_summary
from motif.config import GenerationArgs, ModelArgs, ProtocolArgs
from motif.data import load_problems
from motif.engine import RolloutEngine
from motif.errors import ConfigError
from motif.eval.metrics import work_lines
from motif.eval.runner import EvalArgs, run_eval
from motif.protocol import Protocol
from motif.tasks import (
    ChainProblem,
    LetterProblem,
    check_task_config,
    check_trajectory,
    item_for,
    skips_steps_in,
)
from motif.training.demos import (
    _render_ids,
    chunk_rows,
    demonstration_responses,
    demonstration_rows,
    load_items,
    split_chunks,
    tail_rows,
    thought_ids,
    thought_response,
)

CHAIN = ChainProblem("Q", "7", ("-", "+", "-"), (7, 3, 5, 2))  # partial sums 7, 4, 9, 7
LETTERS = LetterProblem("Q", "3", "b", ("bob", "cab", "dog"))  # counts 2, 1, 0
LONG_CHAINS = {"min_terms": 12, "max_terms": 12, "min_digits": 1, "max_digits": 2}
LONG_LETTERS = {"min_words": 10, "max_words": 10}


# --------------------------------------------------------------------------- checkers


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Start with 7. 7 - 3 = 4. 4 + 5 = 9. 9 - 2 = 7.", (3, 3)),
        ("7 - 3 = 5.", (0, 1)),
        ("4 + 7 = 11, then 11 - 6 = 5.", (2, 2)),
        ("44+75=119.", (1, 1)),
        ("5 - -3 = 8. -4 + 8 = 4.", (2, 2)),
        ("7 - 3 + 5 - 2 = 7.", (0, 0)),  # the chain restated is not a step
        ("4 + 7 = 1", (0, 0)),  # cut at the end of the text: not judged
        ("1.5 + 2 = 3.5.", (0, 0)),
        ("Partial result after round 1: 4. Remaining: + 5 - 2", (0, 0)),
        ("no steps here", (0, 0)),
    ],
)
def test_chain_step_checker(text, expected):
    assert CHAIN.check_steps(text) == expected


@pytest.mark.parametrize(
    ("state", "right"),
    [
        ("Partial result after round 1: 4. Remaining: + 5 - 2", True),
        ("Partial result after round 1: 4. Remaining: + 5 - 2.", True),
        ("Partial result after round 2: 9. Remaining: - 2", True),
        ("Partial result after round 1: 7. Remaining: - 3 + 5 - 2", True),
        ("Partial result after round 3: 7. Remaining: nothing", True),
        ("Partial result after round 1: 5. Remaining: + 5 - 2", False),  # wrong value
        ("Partial result after round 1: 4. Remaining: - 2", False),  # a term skipped
        ("Partial result after round 1: 4. Remaining: + 5 + 2", False),  # wrong operator
        ("Partial result after round 1: 4. Remaining: + 5 - 2 and so on", False),
        ("Partial result: 0. Remaining: + 7 - 3 + 5 - 2", False),  # more terms than exist
        ("Partial result after round 1: 4.", False),
        ("Remaining: + 5 - 2", False),
        ("", False),
        ("Partial result after round 1: 4. Remaining: + ²", False),  # model text: no crash
        ("Partial result after round 1: 4. Remaining: + 5 - ²", False),
    ],
)
def test_chain_state_checker(state, right):
    assert CHAIN.check_state(state) is right


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Start with 0. bob has 2 b, 0 + 2 = 2. cab has 1 b, 2 + 1 = 3.", (2, 2)),
        ("bob has 1 b, 0 + 1 = 1.", (0, 1)),  # miscounted
        ("bob has 2 b, 0 + 2 = 3.", (0, 1)),  # wrong sum
        ("bob has 2 o, 0 + 2 = 2.", (0, 1)),  # another letter
        ("bob has 2 b, 0 + 1 = 1.", (0, 1)),  # added another count
        ("dog has 0 b, 3 + 0 = 3", (0, 0)),  # cut at the end
    ],
)
def test_letter_step_checker(text, expected):
    assert LETTERS.check_steps(text) == expected


@pytest.mark.parametrize(
    ("state", "right"),
    [
        ("Count after round 1: 2. Remaining: cab dog", True),
        ("Count after round 2: 3. Remaining: dog.", True),
        ("Count after round 3: 3. Remaining: nothing", True),
        ("Count after round 1: 0. Remaining: bob cab dog", True),
        ("Count after round 1: 3. Remaining: cab dog", False),
        ("Count after round 1: 2. Remaining: dog", False),
        ("Count after round 1: 2. Remaining: dog cab", False),
        ("Count after round 1: 2.", False),
    ],
)
def test_letter_state_checker(state, right):
    assert LETTERS.check_state(state) is right


# --------------------------------------------------------------------------- the knob


@pytest.mark.parametrize(
    ("task", "config", "message"),
    [
        ("chain_sum", {"min_terms": 12, "max_terms": 12}, None),
        ("chain_sum", None, None),
        ("leg_counting", {"min_terms": 0}, None),  # not a kind: left to reasoning-gym
        ("chain_sum", {"min_terms": 0}, "--task-config min_terms must be a whole number from 1"),
        ("chain_sum", {"max_terms": 1001}, "max_terms must be a whole number from 1 to 1000"),
        ("chain_sum", {"min_terms": "12"}, "min_terms must be a whole number"),
        ("chain_sum", {"min_terms": True}, "min_terms must be a whole number"),
        ("chain_sum", {"min_terms": 8}, "min_terms (8) must not exceed max_terms (6)"),
        ("basic_arithmetic", {"max_terms": 2000}, "max_terms must be"),
        ("letter_counting", {"max_words": 0}, "max_words must be a whole number"),
    ],
)
def test_knob_is_checked(task, config, message):
    if message is None:
        check_task_config(task, config)
        return
    with pytest.raises(ConfigError) as caught:
        check_task_config(task, config)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_the_knob_scales_the_work_linearly():
    for terms in (4, 8, 16):
        (item,) = load_items("chain_sum", 1, 0, {"min_terms": terms, "max_terms": terms})
        assert item.units == terms
        assert item.check_steps(demonstration_responses(item, 1)[0]) == (terms - 1, terms - 1)


# --------------------------------------------------------------------------- summary demos


@pytest.mark.parametrize("rounds", [1, 2, 3, 4, 5])
@pytest.mark.parametrize(
    ("task", "config"), [("chain_sum", LONG_CHAINS), ("letter_counting", LONG_LETTERS)]
)
def test_summary_demos_split_the_work(task, config, rounds):
    """Each round does its share, hands over a right state, and the last boxes the result."""
    for item in load_items(task, 6, 3, config):
        responses = demonstration_responses(item, rounds)
        shares = split_chunks(item.units, rounds)
        for i, (text, share) in enumerate(zip(responses, shares, strict=True), start=1):
            steps = len(share) - (task != "letter_counting" and 0 in share)
            assert item.check_steps(text) == (steps, steps) and steps >= 1 - (i == 1)
            assert format_ok(text, final=i == rounds)
            state = extract_summary(text)
            if i < rounds:
                assert item.check_state(state), state
                assert state.startswith(("Partial result after round", "Count after round"))
            else:
                assert parse_boxed(parse_answer(text)) == item.answer == str(item.total)


def test_summary_rows_replay_through_the_engine():
    items = load_items("letter_counting", 3, 1, LONG_LETTERS)
    protocol = Protocol(rounds=4)
    rows = [row for item in items for row in demonstration_rows(item, protocol)]
    replies = {json.dumps(r["prompt"]): r["completion"][0]["content"] for r in rows}
    engine = RolloutEngine(
        ScriptedBackend(lambda chat, s: replies[json.dumps(chat)]), protocol, SamplingParams(9999)
    )
    for item, traj in zip(items, engine.run([i.question for i in items]), strict=True):
        checks = check_trajectory(item, traj)
        assert [c.state_right for c in checks] == [True, True, True, None]
        assert all(c.steps == c.steps_right > 0 for c in checks)


# --------------------------------------------------------------------------- tail demos

WINDOW = TailWindow(chunk=64, head=8, tail=24, max_chunks=8)


def _thought(tokenizer, item):
    chat = Protocol(rounds=1).messages(item.question, 1)
    prompt = _render_ids(tokenizer, chat, add_generation_prompt=True)
    return chat, prompt, thought_ids(tokenizer, chat, prompt, thought_response(item))


@pytest.mark.parametrize(
    ("task", "config"), [("chain_sum", LONG_CHAINS), ("letter_counting", LONG_LETTERS)]
)
def test_tail_chunk_rows(tokenizer, task, config):
    for item in load_items(task, 3, 0, config):
        chat, prompt, thought = _thought(tokenizer, item)
        assert thought[-1] == tokenizer.eos_token_id
        assert tokenizer.decode(thought[:-1]) == thought_response(item)
        rows = chunk_rows(chat, prompt, thought, WINDOW, tokenizer.decode)
        assert len(rows) > 2
        written: list[int] = []
        for index, row in enumerate(rows, start=1):
            ids, mask = row["input_ids"], row["completion_mask"]
            new = [t for t, m in zip(ids, mask, strict=True) if m]
            assert ids[: len(prompt)] == prompt and mask == sorted(mask)  # zeros, then ones
            assert len(new) <= WINDOW.new_tokens(index)
            carried = ids[len(prompt) : len(ids) - len(new)]
            if index > 1:
                assert carried == written[: WINDOW.head] + written[-WINDOW.keep_tail :]
            assert len(carried) + len(new) <= WINDOW.chunk
            written += new
        assert written == thought  # the chunks joined are the thought


def test_tail_thought_checkpoints_let_the_tail_find_its_place(tokenizer):
    """In the CPU tail recipe, every later chunk that still has steps to write carries a
    ``Next:`` checkpoint in its last m tokens (m must exceed the ~60 tokens between two)."""
    import yaml

    recipe = yaml.safe_load((REPO / "recipes" / "sft_long_chain_sum_tail_cpu.yaml").read_text())
    window = TailWindow(
        recipe["tail_chunk"], recipe["tail_head"], recipe["tail_keep"], recipe["tail_chunks"]
    )
    checked = 0
    for item in load_items("chain_sum", 8, 0, recipe["task_config"]):
        chat, prompt, thought = _thought(tokenizer, item)
        rows = chunk_rows(chat, prompt, thought, window, tokenizer.decode)
        assert len(rows) in (2, 3)
        for row in rows[1:]:
            tail = row["input_ids"][len(prompt) + window.head :][: window.keep_tail]
            if " = " in row["completion"][0]["content"]:
                assert "Next:" in tokenizer.decode(tail)
                checked += 1
    assert checked >= 8


class ReplayBackend(GenerationBackend):
    """Renders chats with the real tokenizer and answers each prompt from demonstration rows
    (a prompt no row holds raises KeyError): the engine must send exactly the rows' prompts."""

    def __init__(self, tokenizer, rows):
        super().__init__()
        self.tokenizer = tokenizer
        self.replies = {}
        for row in rows:
            start = row["completion_mask"].index(1)
            self.replies[tuple(row["input_ids"][:start])] = row["input_ids"][start:]

    def render(self, chats):
        return [_render_ids(self.tokenizer, c, add_generation_prompt=True) for c in chats]

    def detokenize(self, token_ids):
        return self.tokenizer.decode(list(token_ids), skip_special_tokens=True)

    def continue_prompts(self, chats, prompts, prefixes):
        from motif.backends.template import continue_prompts

        return continue_prompts(self.tokenizer, chats, prompts, prefixes)

    def _generate_chunk(self, prompts, params, num_samples, offset):
        outs = []
        for ids in prompts:
            new = self.replies[tuple(ids)][: params.max_new_tokens]
            text = self.tokenizer.decode(new, skip_special_tokens=True)
            ended = self.tokenizer.eos_token_id in new
            outs.append(GenerationOutput(text, len(ids), len(new), not ended, list(new)))
        return outs


def test_tail_rows_are_what_the_engine_sends_and_the_held_out_check_scores_them(tokenizer):
    from motif.training.sft import format_report

    items = load_items("chain_sum", 3, 0, LONG_CHAINS)
    rows = tail_rows(items, tokenizer, WINDOW)
    protocol = Protocol(rounds=WINDOW.max_chunks, carry_over="tail", window=WINDOW)
    report = format_report(ReplayBackend(tokenizer, rows), items, protocol, max_new_tokens=1)
    assert report["format_rate"] == report["accuracy"] == 1.0 and report["responses"] == 3
    assert report["state_right_rate"] is None and report["state_right_by_round"] == []
    assert 0 < report["steps_written"] <= 3 * 11 and report["step_accuracy"] == 1.0


def test_tail_thought_longer_than_the_window_is_refused(tokenizer):
    items = load_items("chain_sum", 2, 0, LONG_CHAINS)
    with pytest.raises(ConfigError, match="--tail-chunks 2 chunks of --tail-chunk 64 hold"):
        tail_rows(items, tokenizer, TailWindow(64, 8, 24, 2))


# --------------------------------------------------------------------------- eval rows


def round_of(chat) -> int:
    """The round a summary-protocol chat asks for (its user turn names the previous one)."""
    match = re.search(r"Progress in round (\d+)", chat[1]["content"])
    return int(match.group(1)) + 1 if match else 1


def _demo_script(items, rounds, break_first=False):
    """Answers every round with the demonstration; item 0's round 1 states a wrong partial
    result and writes one wrong step when ``break_first``."""
    replies = {}
    for j, item in enumerate(items):
        responses = demonstration_responses(item, rounds)
        if break_first and j == 0:
            responses[0] = (
                responses[0]
                .replace("Remaining:", "Remaining: + 1")
                .replace(". ", ". 2 + 2 = 5. ", 1)
            )
        for i, text in enumerate(responses, start=1):
            replies[(item.question, i)] = text

    def script(chat, sample):
        question = next(q for q, _ in replies if chat[1]["content"].startswith(q))
        index = round_of(chat)
        return replies[(question, index)]

    return script


def test_eval_rows_hold_state_and_steps(tmp_path):
    config = {**LONG_CHAINS, "size": 4}
    problems = load_problems("reasoning_gym:chain_sum", task_config=config)
    items = [item_for(p.question, p.gold, p.meta) for p in problems]
    script = _demo_script(items, 3, break_first=True)
    summary, rows = scripted_chain_eval(
        tmp_path / "out", config, script, ProtocolArgs(rounds=3), 4000
    )
    first = rows[0]["rounds"]
    assert [r["state_right"] for r in first] == [False, True, None]
    assert first[0]["steps"] == first[0]["steps_right"] + 1  # the inserted wrong step
    assert all(r["steps"] == r["steps_right"] for row in rows[1:] for r in row["rounds"])
    assert all(row["correct"] is True for row in rows)
    m = summary["metrics"]
    assert m["rounds"]["state_right"] == [0.75, 1.0, None]
    written = sum(r["steps"] for row in rows for r in row["rounds"])
    assert m["steps"] == {"right": written - 1, "written": written} == {"right": 44, "written": 45}
    assert m["step_accuracy"] == pytest.approx(44 / 45)
    lines = work_lines(m)
    assert "steps right 97.8% (44/45 written)" in lines[0]
    assert lines[1] == "  state handed over right, after round: 1 75.0%, 2 100.0%"


def test_eval_rows_of_other_benchmarks_carry_no_checks(tmp_path):
    arith = str(FIXTURES / "eval_arith.jsonl")
    summary = run_eval(
        EvalArgs(benchmark=arith, output_dir=str(tmp_path / "o"), limit=2),
        ModelArgs(),
        GenerationArgs(max_new_tokens=64),
        ProtocolArgs(rounds=2),
        backend_loader=lambda m: ScriptedBackend(lambda chat, s: "\\boxed{1}"),
    )
    assert "step_accuracy" not in summary["metrics"] and not work_lines(summary["metrics"])
    row = json.loads((tmp_path / "o" / "samples.jsonl").read_text().splitlines()[0])
    assert "state_right" not in row["rounds"][0]


def test_tail_eval_rows_count_steps_per_chunk_and_hand_no_state(tmp_path):
    """A scripted tail thought: no state per chunk; steps cut at a chunk boundary are lost."""
    config = {**LONG_CHAINS, "size": 2}
    problems = load_problems("reasoning_gym:chain_sum", task_config=config)
    items = {p.question: item_for(p.question, p.gold, p.meta) for p in problems}
    written = {}

    def script(chat, sample):  # chunk by chunk through the thought's words
        words = thought_response(items[chat[1]["content"]]).split()
        done = written.get(chat[1]["content"], 0) if len(chat) > 2 else 0
        written[chat[1]["content"]] = done + (16 if done == 0 else 8)
        return " ".join(words[done:])

    tail = ProtocolArgs(carry_over="tail", tail_chunk=16, tail_head=4, tail_keep=4, tail_chunks=40)
    summary, rows = scripted_chain_eval(tmp_path / "t", config, script, tail, 64)
    for row in rows:
        assert row["correct"] is True and len(row["rounds"]) > 3
        assert all(r["state_right"] is None for r in row["rounds"])
        chunks = [r["steps"] for r in row["rounds"]]
        assert 0 < sum(chunks) <= 11 and all(r["steps_right"] == r["steps"] for r in row["rounds"])
    m = summary["metrics"]
    assert m["step_accuracy"] == 1.0 and all(v is None for v in m["rounds"]["state_right"])
    assert not any("state handed over" in line for line in work_lines(m))  # none for tail


def test_eval_rows_say_which_trajectories_box_an_answer_too_early(tmp_path):
    """The diagnostic of --heldout-every, in every eval of a task with checkers: one row
    boxes the right total after one step (a skip), one writes every step."""
    config = {**LONG_CHAINS, "size": 2}
    problems = load_problems("reasoning_gym:chain_sum", task_config=config)
    items = {p.question: item_for(p.question, p.gold, p.meta) for p in problems}
    early = problems[0].question

    def script(chat, sample):
        question = next(q for q in items if chat[1]["content"].startswith(q))
        item = items[question]
        if question != early:
            return thought_response(item)
        work, _ = item.work(range(2), None)  # the first two units of work only
        return f"<reasoning>\n{work}\n</reasoning>\n<answer>\n\\boxed{{{item.answer}}}\n</answer>"

    none = ProtocolArgs(carry_over="none")
    summary, rows = scripted_chain_eval(tmp_path / "s", config, script, none, 4000)
    assert {r["question"]: r["skipped_steps"] for r in rows} == {q: q == early for q in items}
    for r in rows:  # the same answer from the stored row alone (rows written before the field)
        texts = [x["text"] for x in r["rounds"]]
        assert skips_steps_in(items[r["question"]], texts, r["carry_over"]) is r["skipped_steps"]
    assert all(r["correct"] is True for r in rows)  # a right total does not hide the skip
    assert summary["metrics"]["skipped_steps"] == 0.5
    assert "  skips a step (boxes an answer too early) 50.0%" in work_lines(summary["metrics"])
