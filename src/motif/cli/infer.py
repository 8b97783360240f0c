"""``motif infer``: answer questions over several rounds and show every round."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from motif.answer_format import extract_final_answer
from motif.backends.vllm_options import VllmArgs
from motif.carryover import stored_carry_over
from motif.cli.common import parse, print_notes, quiet_libraries
from motif.config import GenerationArgs, ModelArgs, ProtocolArgs
from motif.engine import Trajectory
from motif.errors import ConfigError, MotifError
from motif.progress import Progress
from motif.runs.layout import ROUND_BUDGET_KEYS
from motif.runtime import build_engine, load_backend
from motif.textio import iter_lines, plural


@dataclass
class InferArgs:
    """What to answer and how to print it."""

    file: str | None = field(
        default=None,
        metadata={
            "help": "UTF-8 text file with one question per line (blank lines skipped; only "
            "newlines end a line)."
        },
    )
    json: bool = field(default=False, metadata={"help": "Print one JSON object per question."})


def read_questions(question: str | None, file: str | None) -> list[str]:
    """Questions from the positional argument and/or ``--file``; empty input is an error."""
    questions: list[str] = []
    if question is not None:
        if not question.strip():
            raise ConfigError("the question is empty; pass a question or --file")
        questions.append(question.strip())
    if file is not None:
        path = Path(file)
        if not path.is_file():
            raise MotifError(f"--file {file} does not exist")

        lines = [text.strip() for _, text in iter_lines(path)]
        questions.extend(line for line in lines if line)
        if not any(lines):
            raise ConfigError(f"--file {file} holds no question")
    if not questions:
        raise ConfigError("no question given; pass a question or --file FILE")
    return questions


def trajectory_json(traj: Trajectory) -> dict:
    """The ``--json`` record of one answered question: :meth:`Trajectory.to_dict` with its
    budget accounting, each round's keys in the order this record has always had, and the
    final answer (None when a round did not fit the context)."""
    data = traj.to_dict(budget=True)
    keys = ("round", "reasoning", "answer", "summary", "text", *ROUND_BUDGET_KEYS)
    return {
        "question": data["question"],
        "carry_over": data["carry_over"],
        **({"round_end": data["round_end"]} if "round_end" in data else {}),
        "rounds": [{k: r[k] for k in keys} for r in data["rounds"]],
        "generated_tokens": data["generated_tokens"],
        "largest_context": data["largest_context"],
        "stopped_early": data["stopped_early"],
        "cut_round": data["cut_round"],
        "final_answer": None
        if traj.cut
        else extract_final_answer(traj.final_text, fallback="response"),
    }


def print_text(record: dict) -> None:
    """Human-readable view of one answered question."""
    print(f"Question: {record['question']}")
    carry = stored_carry_over(record.get("carry_over"), record.get("round_end"))
    for r in record["rounds"]:
        flag = ", truncated" if r["truncated"] else ""
        heading = carry.heading(
            r["round"], r["completion_tokens"], r.get("carried_tokens", 0), flag
        )
        print(f"\n--- {heading} ---")
        if not carry.hands_state:  # what the round wrote; no summary to show
            print(r["text"])
            continue
        print(
            f"Reasoning: {r['reasoning'] if r['reasoning'] is not None else '(no <reasoning> tags)'}"
        )
        print(f"Summary:   {r['summary']}")
    if record["cut_round"] is not None:
        print(
            f"\n--- Round {record['cut_round']}: not generated: its prompt plus the token "
            "budget exceeds the model's context (--context-overflow cut) ---"
        )
    print(
        f"\nFinal answer: {record['final_answer']}  ({record['generated_tokens']} tokens "
        f"generated, largest context {record['largest_context']})\n"
    )


def run(argv: list[str]) -> int:
    """Parse the flags, load the model, answer, print."""

    infer, model, gen, proto, vllm, pos = parse(
        "motif infer",
        (InferArgs, ModelArgs, GenerationArgs, ProtocolArgs, VllmArgs),
        argv,
        description="Answer questions over --rounds rounds; each round sees only the last summary "
        "(--carry-over tail: one thought in bounded chunks; none: one pass).",
        positional={"question": {"nargs": "?", "help": "The question to answer."}},
    )
    questions = read_questions(pos.question, infer.file)
    carry = proto.strategy()
    carry.check_budgets(gen.max_new_tokens, gen.later_max_new_tokens)  # before any model loads
    quiet_libraries()

    unit = carry.unit
    with Progress("motif infer", proto.rounds, unit) as progress:
        progress.note("loading the model")
        engine = build_engine(load_backend(model, vllm, gen, proto), gen, proto)
        print_notes(proto.unused_in_run(gen))  # after the checks: an error stays one line
        progress.note(f"answering {plural(len(questions), 'question')}")
        engine.on_round = lambda index, rounds: progress.advance(status=f"{unit} {index} done")
        trajectories = engine.run(questions)
    for traj in trajectories:
        record = trajectory_json(traj)
        if carry.round_end != "budget":  # rounds the model ended: say so in the record
            record["round_end"] = carry.round_end
        if infer.json:
            print(json.dumps(record, ensure_ascii=False), flush=True)
        else:
            print_text(record)
    return 0
