"""Evaluations on scripted backends: the arithmetic fixture and its scripted answers, eval
arguments and loaders, a backend whose context overflows, and hand-written result directories.

The arithmetic fixture's questions read ``What is A + B?``; a summary chat's last user turn
names the previous round as ``Progress in round N``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from conftest import FIXTURES
from fakes import ScriptedBackend
from motif.backends.base import GenerationBackend, GenerationOutput, SamplingParams
from motif.config import GenerationArgs, ModelArgs, ProtocolArgs
from motif.eval.runner import EvalArgs, run_eval
from motif.eval.store import SAMPLES_FILE, ResultStore

ARITH = str(FIXTURES / "eval_arith.jsonl")
"""The arithmetic benchmark fixture (``What is A + B?`` questions), as a path string."""


def reply(answer: str | None, progress: str = "working") -> str:
    """A formatted round: the boxed ``answer``, or ``progress`` and no box when it is None."""
    body = f"\\boxed{{{answer}}}" if answer is not None else progress
    return f"<reasoning>\nthink\n</reasoning>\n<answer>\n{body}\n</answer>"


def round_of(chat) -> int:
    """The round (1-based) a chat asks for, read from its last user turn."""
    match = re.search(r"Progress in round (\d+)", chat[-1]["content"])
    return int(match.group(1)) + 1 if match else 1


def sum_of(chat) -> int:
    """The right answer to the ``What is A + B?`` question of a chat's last user turn."""
    a, b = re.search(r"What is (\d+) \+ (\d+)\?", chat[-1]["content"]).groups()
    return int(a) + int(b)


def solver(chat, sample):
    """Right in every round."""
    return reply(str(sum_of(chat)))


def args(tmp_path, **overrides) -> EvalArgs:
    """Eval arguments on :data:`ARITH` writing to ``tmp_path/out``, batches of 2."""
    values = {"benchmark": ARITH, "output_dir": str(tmp_path / "out"), "batch_size": 2}
    return EvalArgs(**{**values, **overrides})


def loader_for(script, calls: list | None = None):
    """A backend loader answering from ``script``; each call's model args go to ``calls``."""

    def load(model_args):
        if calls is not None:
            calls.append(model_args)
        return ScriptedBackend(script)

    return load


def rows_of(out: Path) -> list[dict]:
    """The sample rows an eval stored in directory ``out``, in file order."""
    return [json.loads(line) for line in (out / SAMPLES_FILE).read_text().splitlines()]


class ContextBackend(GenerationBackend):
    """Answers ``<answer>\\boxed{ANSWER}</answer>`` padded to a length; a user turn longer than
    ``limit`` characters is flagged as a context overflow (what ``overflow="skip"`` does)."""

    def __init__(self, limit: int, reply_words: int = 5) -> None:
        super().__init__(64)
        self.limit = limit
        self.reply_words = reply_words

    def _generate_chunk(self, prompts, params: SamplingParams, num_samples, offset):
        outs = []
        for chat in prompts:
            content = chat[-1]["content"]
            for _ in range(num_samples):
                if len(content) > self.limit:
                    outs.append(GenerationOutput("", len(content), 0, False, context_overflow=True))
                    continue
                answer = "4" if "2 + 2" in content else "7"
                text = "pad " * self.reply_words + f"<answer>\\boxed{{{answer}}}</answer>"
                outs.append(GenerationOutput(text, len(content), self.reply_words, False))
        return outs


def write_set(tmp_path):
    """A three-problem benchmark file (its middle question 30 characters longer); its path."""
    path = tmp_path / "set.jsonl"
    rows = [
        {"id": "short", "question": "What is 2 + 2?", "answer": "4"},
        {"id": "long", "question": "What is 3 + 4? " + "x" * 30, "answer": "7"},
        {"id": "after", "question": "What is 2 + 2? again", "answer": "4"},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def scripted_chain_eval(
    out: Path, config: dict, script, protocol: ProtocolArgs, max_new_tokens: int
) -> tuple[dict, list[dict]]:
    """A ``reasoning_gym:chain_sum`` eval answered by ``script``: its summary and stored rows."""
    summary = run_eval(
        EvalArgs(
            benchmark="reasoning_gym:chain_sum",
            task_config=json.dumps(config),
            output_dir=str(out),
        ),
        ModelArgs(),
        GenerationArgs(max_new_tokens=max_new_tokens),
        protocol,
        backend_loader=lambda m: ScriptedBackend(script),
    )
    return summary, [json.loads(x) for x in (out / "samples.jsonl").read_text().splitlines()]


def write_run(
    directory: Path, outcomes: dict[str, list[bool | None]], question: str = "What is {}?"
) -> Path:
    """An eval directory written by the store: ``outcomes[id]`` = each sample's ``correct``."""
    samples = len(next(iter(outcomes.values())))
    config = {"sampling": {"samples": samples}, "data": {"benchmark": "hand-written"}}
    store = ResultStore(directory, config, samples)
    store.append(
        {
            "id": item,
            "sample": k,
            "question": question.format(item),
            "answer": None,
            "correct": correct,
            "rounds": [{"round": 1, "text": "", "answer": None, "correct": correct}],
        }
        for item, flags in outcomes.items()
        for k, correct in enumerate(flags)
    )
    store.write_summary({"label": directory.name, "config": config})
    return directory


def greedy(flags: str) -> dict[str, list[bool | None]]:
    """``"1100"`` -> items 0..3, right, right, wrong, wrong (``?``: ungraded)."""
    value = {"1": True, "0": False, "?": None}
    return {str(i): [value[f]] for i, f in enumerate(flags)}
