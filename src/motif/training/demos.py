"""Multi-round demonstrations for the format cold start (``motif sft``).

The demonstrations are written by this module from the task's own data, never by a model.
Supported tasks are reasoning-gym chains of additions and subtractions: ``chain_sum`` (every
item) and ``basic_arithmetic`` (only its items without ``*``, ``/`` or parentheses; set its
``operators: ["+", "-"]`` and ``allow_parentheses: false`` to keep them all).

For ``n`` rounds the terms of the chain are split into ``n`` contiguous chunks (earlier chunks
take the extra terms; with fewer terms than rounds the last chunks are empty). Round ``i``
adds its chunk to the partial result carried from round ``i - 1``; its ``<answer>`` states the
partial result and the terms still to add; the last round boxes the total. ``n = 1`` is the
vanilla single-round format (all terms, boxed total).

Response format (one line of reasoning, one line of answer, a final newline)::

    <reasoning>\\nSTEPS\\n</reasoning>\\n<answer>\\nPROGRESS\\n</answer>\\n

It matches the reference's strict format regex
``^<reasoning>\\n.*?\\n</reasoning>\\n<answer>\\n.*?\\n</answer>\\n$`` (compiled without
DOTALL, so the one-line contents are what make it match) and earns the full xmlcount reward.

Each round is one SFT row in TRL's conversational prompt-completion form; its prompt is
exactly what :class:`motif.engine.RolloutEngine` would send: ``Protocol.messages(question,
i, Protocol.summary(previous response))``.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from motif.carryover import check_carry_over
from motif.errors import ConfigError, MotifError
from motif.protocol import Protocol, SummaryRule, parse_answer, parse_boxed

logger = logging.getLogger(__name__)

SUPPORTED_TASKS = ("chain_sum", "basic_arithmetic")
HELD_OUT_SEED_OFFSET = 1_000_003
"""Held-out items are generated with ``seed + HELD_OUT_SEED_OFFSET`` (reasoning-gym seeds
item ``j`` of a set with ``seed + j``, so nearby seeds would share items)."""
POOL_FACTOR = 20
"""At most ``POOL_FACTOR * size`` task items are drawn to find ``size`` usable ones."""

_TOKEN = re.compile(r"\d+(?:\.\d+)?|\S")
_FORMAT = re.compile(r"<reasoning>\n.+?\n</reasoning>\n<answer>\n.+?\n</answer>\n?", re.DOTALL)
_PAPER_STRICT = re.compile(r"^<reasoning>\n.*?\n</reasoning>\n<answer>\n.*?\n</answer>\n$")


@dataclass(frozen=True)
class ChainProblem:
    """One chain of additions and subtractions.

    Attributes:
        question: the task's question text, unchanged.
        answer: the task's own answer string.
        ops: the operator written before each later operand (``"+"`` or ``"-"``).
        operands: the operands as written (``4 - -7`` has operands ``(4, -7)``); see
            :attr:`terms` for their signed contributions.
    """

    question: str
    answer: str
    ops: tuple[str, ...]
    operands: tuple[int, ...]

    @property
    def terms(self) -> tuple[int, ...]:
        """Signed contributions of the operands to the total."""
        first, rest = self.operands[0], self.operands[1:]
        return (first, *(v if op == "+" else -v for op, v in zip(self.ops, rest, strict=True)))

    @property
    def total(self) -> int:
        """The chain's value, computed here."""
        return sum(self.terms)


def parse_chain(expression: str) -> tuple[tuple[str, ...], tuple[int, ...]] | None:
    """(operators, operands) of a flat ``+``/``-`` chain of integers; None for anything else.

    Unary signs are folded into the operand (``2 - -1`` gives ``("-",), (2, -1)``).
    """
    tokens = _TOKEN.findall(expression)
    ops: list[str] = []
    operands: list[int] = []
    i = 0
    while i < len(tokens):
        sign = 1
        while i < len(tokens) and tokens[i] in ("+", "-"):
            sign = -sign if tokens[i] == "-" else sign
            i += 1
        if i >= len(tokens) or not tokens[i].isdigit():
            return None
        operands.append(sign * int(tokens[i]))
        i += 1
        if i < len(tokens):
            if tokens[i] not in ("+", "-"):
                return None
            ops.append(tokens[i])
            i += 1
            if i >= len(tokens):
                return None
    return (tuple(ops), tuple(operands)) if operands else None


def problem_from_entry(entry: dict) -> ChainProblem | None:
    """A :class:`ChainProblem` from a reasoning-gym entry, or None when it is not usable.

    The expression comes from ``metadata["expression"]`` when present, else from the
    question (text before ``=``, after the last ``:``). The computed total must equal the
    entry's own answer.
    """
    metadata = entry.get("metadata") or {}
    expression = metadata.get("expression")
    if not isinstance(expression, str):
        expression = str(entry.get("question", "")).split("=")[0].split(":")[-1]
    parsed = parse_chain(expression)
    if parsed is None:
        return None
    problem = ChainProblem(str(entry["question"]), str(entry["answer"]).strip(), *parsed)
    try:
        gold = int(problem.answer)
    except ValueError:
        return None
    return problem if gold == problem.total else None


def _check_task(task: str, task_config: dict | None) -> dict:
    if task not in SUPPORTED_TASKS:
        raise ConfigError(
            f"--task {task!r} has no demonstration writer; use one of {', '.join(SUPPORTED_TASKS)}"
        )
    config = dict(task_config or {})
    for key in ("size", "seed"):
        if key in config:
            raise ConfigError(
                f"task_config must not set {key!r}; use --num-examples and --data-seed instead"
            )
    return config


def load_chain_problems(
    task: str,
    size: int,
    seed: int,
    task_config: dict | None = None,
    exclude: set[str] | frozenset[str] = frozenset(),
) -> list[ChainProblem]:
    """The first ``size`` usable items of a reasoning-gym task, in order.

    Items that are not a flat ``+``/``-`` chain, whose answer disagrees with the computed
    total, or whose question is in ``exclude`` are skipped (and counted in the log).

    Raises:
        ConfigError: unknown task or a task config the task rejects.
        MotifError: fewer than ``size`` usable items among ``POOL_FACTOR * size`` drawn.
    """
    import reasoning_gym

    config = _check_task(task, task_config)
    if size < 1:
        raise ConfigError(f"the number of problems must be >= 1; got {size}")
    try:
        dataset = reasoning_gym.create_dataset(task, seed=seed, size=size * POOL_FACTOR, **config)
    except (TypeError, ValueError, AssertionError) as exc:
        raise ConfigError(
            f"reasoning-gym task {task!r} rejects task_config {config}: {exc}"
        ) from exc
    problems: list[ChainProblem] = []
    skipped = 0
    for entry in dataset:
        problem = problem_from_entry(entry)
        if problem is None or problem.question in exclude:
            skipped += 1
            continue
        problems.append(problem)
        if len(problems) == size:
            break
    if skipped:
        logger.info("%s: skipped %d unusable or excluded items", task, skipped)
    if len(problems) < size:
        raise MotifError(
            f"only {len(problems)} of {size} {task} items are flat +/- chains; for "
            "basic_arithmetic set task_config operators: ['+', '-'] and allow_parentheses: false"
        )
    return problems


def held_out_problems(
    task: str, size: int, seed: int, task_config: dict | None = None, train_size: int = 0
) -> list[ChainProblem]:
    """``size`` items for evaluation, disjoint from the first ``train_size`` demonstrations.

    Generated with ``seed + HELD_OUT_SEED_OFFSET``; any question that also appears among the
    ``train_size`` demonstration problems of ``seed`` is skipped.
    """
    exclude: frozenset[str] = frozenset()
    if train_size > 0:
        exclude = frozenset(
            p.question for p in load_chain_problems(task, train_size, seed, task_config)
        )
    return load_chain_problems(task, size, seed + HELD_OUT_SEED_OFFSET, task_config, exclude)


def split_chunks(count: int, rounds: int) -> list[range]:
    """Split ``count`` term indices into ``rounds`` contiguous chunks, larger chunks first."""
    base, extra = divmod(count, rounds)
    chunks, start = [], 0
    for i in range(rounds):
        end = start + base + (1 if i < extra else 0)
        chunks.append(range(start, end))
        start = end
    return chunks


def _written(op: str, value: int) -> str:
    return f"{op} {value}"


def _steps(problem: ChainProblem, chunk: range, carried: int | None) -> tuple[str, int]:
    """One line of arithmetic over ``chunk`` and the partial result after it."""
    parts: list[str] = []
    value = carried
    for index in chunk:
        if index == 0:
            value = problem.operands[0]
            parts.append(f"Start with {value}.")
            continue
        op, operand = problem.ops[index - 1], problem.operands[index]
        new = value + problem.terms[index]
        parts.append(f"{value} {_written(op, operand)} = {new}.")
        value = new
    if carried is not None:
        lead = f"Continue from the partial result {carried}."
        parts.insert(0, lead if chunk else f"{lead} No terms are left to add.")
    return " ".join(parts), value


def _remaining(problem: ChainProblem, after: int) -> str:
    pairs = zip(problem.ops[after:], problem.operands[after + 1 :], strict=True)
    rest = [_written(op, v) for op, v in pairs]
    return " ".join(rest) if rest else "nothing"


def _response(reasoning: str, answer: str) -> str:
    return f"<reasoning>\n{reasoning}\n</reasoning>\n<answer>\n{answer}\n</answer>\n"


def demonstration_responses(problem: ChainProblem, rounds: int) -> list[str]:
    """The ``rounds`` responses of one demonstration (the last one boxes the total)."""
    if rounds < 1:
        raise ConfigError(f"--rounds must be >= 1; got {rounds}")
    chunks = split_chunks(len(problem.operands), rounds)
    responses, carried = [], None
    for i, chunk in enumerate(chunks, start=1):
        reasoning, carried = _steps(problem, chunk, carried)
        if i == rounds:
            if carried != problem.total:
                raise AssertionError(f"partial sums give {carried}, expected {problem.total}")
            answer = f"\\boxed{{{problem.answer}}}"
        else:
            answer = (
                f"Partial result after round {i}: {carried}. "
                f"Remaining: {_remaining(problem, chunk.stop - 1)}"
            )
        responses.append(_response(reasoning, answer))
    return responses


def demonstration_rows(problem: ChainProblem, protocol: Protocol) -> list[dict]:
    """One prompt-completion row per round, each prompt built as the engine builds it.

    ``summary``: ``protocol.rounds`` rows. ``tail`` and ``none``: one row, the whole chain in
    one response to the single-round prompt (a tail thought this short ends in chunk 1).
    """
    rounds = protocol.rounds if protocol.carry_over == "summary" else 1
    rows, summary = [], None
    for i, response in enumerate(demonstration_responses(problem, rounds), start=1):
        prompt = protocol.messages(problem.question, i, summary)
        rows.append({"prompt": prompt, "completion": [{"role": "assistant", "content": response}]})
        summary = protocol.summary(response)
    return rows


def build_demonstrations(
    task: str,
    rounds: int,
    size: int,
    seed: int,
    task_config: dict | None = None,
    summary_rule: SummaryRule = "paper",
    carry_over: str = "summary",
) -> list[dict]:
    """SFT rows for ``size`` task items over ``rounds`` rounds (``size * rounds`` rows).

    Rows are ordered item by item, round by round: row ``j * rounds + i`` is round ``i + 1``
    of item ``j``. Each row is ``{"prompt": [system, user], "completion": [assistant]}``.
    ``carry_over`` ``tail`` or ``none``: one single-round row per item whatever ``rounds``
    (chunk 1 of a tail thought is prompted like a one-pass answer; :func:`demonstration_rows`).

    Raises:
        ConfigError: an unknown ``carry_over``.
    """
    check_carry_over(carry_over)
    protocol = Protocol(
        rounds=rounds if carry_over == "summary" else 1,
        summary_rule=summary_rule,
        carry_over="summary" if carry_over == "summary" else "none",
    )
    rows: list[dict] = []
    for problem in load_chain_problems(task, size, seed, task_config):
        rows.extend(demonstration_rows(problem, protocol))
    return rows


def format_ok(text: str, final: bool = False) -> bool:
    """Whether a response follows the tag format (multi-line contents allowed).

    ``final=True`` also requires a ``\\boxed{}`` inside the ``<answer>``.
    """
    if not _FORMAT.fullmatch(text):
        return False
    if not final:
        return True
    answer = parse_answer(text)
    return answer is not None and parse_boxed(answer) is not None


def paper_strict_ok(text: str) -> bool:
    """The reference's strict format check (no DOTALL: one-line contents, final newline)."""
    return _PAPER_STRICT.match(text) is not None
