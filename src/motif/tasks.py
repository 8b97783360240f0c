"""Long-horizon tasks: items whose work is a row of small steps, and checkers for that work.

Pure Python, no torch. Each *kind* is a reasoning-gym 0.1.25 generator (offline) with a *knob*
that scales the work of an item linearly, a reader that turns a generated entry into an item,
and, per item, the writer of the demonstrated work (:mod:`motif.training.demos`) and two
checkers that the per-round analysis uses (``motif eval``, the ``motif sft`` held-out check):

* a **step checker** (:meth:`check_steps`): how many of the steps written in a reply are right;
* a **state checker** (:meth:`check_state`): whether the state a round hands over (its
  ``<answer>``) is right, i.e. a true partial result together with the work still to do.

Kinds (:data:`TASK_KINDS`):

========================  =========================  ===============================================
kind                      knob (``task_config``)     one unit of work, written as a step
========================  =========================  ===============================================
``chain_sum``             ``min_terms/max_terms``    one term: ``44 + 75 = 119.``
``basic_arithmetic``      ``min_terms/max_terms``    as chain_sum (only its flat ``+``/``-`` chains)
``letter_counting``       ``min_words/max_words``    one word: ``Gutenberg has 1 b, 0 + 1 = 1.``
========================  =========================  ===============================================

States, as a round's ``<answer>`` writes them (``Remaining: nothing`` once the work is done)::

    Partial result after round 1: 44. Remaining: + 75 - 32
    Count after round 1: 3. Remaining: work you must

A state is right when its remaining work is what is really left after some number of units
(a suffix of the item's terms or words, in order) and its value is the true result of the
units before it: any consistent state counts, not only the one a demonstration would write.
A step is right when its own arithmetic is (and, for letters, its count of the letter in its
word); whether the right terms were used shows in the states and the final answer. A step
counts only once a character follows its result, so a step cut at the end of a text (a
``tail`` chunk's boundary, a truncated reply) is not judged.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from motif.answer_format import extract_final_answer
from motif.carryover import carry_over_class, stored_carry_over
from motif.errors import ConfigError

_TOKEN = re.compile(r"\d+(?:\.\d+)?|\S")
_CHAIN_STEP = re.compile(
    r"(?<![\d.])(?<![+\-])(?<![+\-]\s)(-?\d+)\s*([+-])\s*(-?\d+)\s*=\s*(-?\d+)(?=[^\d.]|\.(?!\d))"
)
_LETTER_STEP = re.compile(r"(?<!\w)(\w+) has (\d+) (\w), (\d+) \+ (\d+) = (\d+)(?=[^\d.]|\.(?!\d))")
_PARTIAL = re.compile(r"Partial result[^:\n]*:\s*(-?\d+)")
_COUNT = re.compile(r"Count[^:\n]*:\s*(\d+)")
_REMAINING = re.compile(r"Remaining:[ \t]*([^\n]*)")
NOTHING = "nothing"
"""What a state writes after ``Remaining:`` once no work is left."""


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
        if i >= len(tokens) or not tokens[i].isdecimal():  # not '²', which int() refuses
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


def _remaining_text(state: str) -> str | None:
    """What a state writes after ``Remaining:`` (trailing period dropped), or None."""
    match = _REMAINING.search(state)
    return match.group(1).strip().rstrip(".").strip() if match else None


@dataclass(frozen=True)
class ChainProblem:
    """One chain of additions and subtractions; a unit of work is one term.

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

    @property
    def units(self) -> int:
        """Units of work: the terms (the first one is where the work starts)."""
        return len(self.operands)

    def _pair(self, index: int) -> str:
        return f"{self.ops[index - 1]} {self.operands[index]}"

    def work(self, chunk: range, carried: int | None, checkpoint: int = 0) -> tuple[str, int]:
        """One line of steps over the terms in ``chunk`` and the partial result after them.

        ``carried`` is the partial result handed over (None: the work starts here, with term 0).
        ``checkpoint > 0`` writes ``Next: <the next checkpoint terms>.`` before every
        ``checkpoint``-th step, so a reader of the last steps alone finds its place.
        """
        parts = [] if carried is None else [f"Continue from the partial result {carried}."]
        value = carried
        for index in chunk:
            if index == 0:
                value = self.operands[0]
                parts.append(f"Start with {value}.")
                continue
            if checkpoint and (index - 1) % checkpoint == 0:
                upcoming = range(index, min(index + checkpoint, self.units))
                parts.append(f"Next: {' '.join(self._pair(i) for i in upcoming)}.")
            new = value + self.terms[index]
            parts.append(f"{value} {self._pair(index)} = {new}.")
            value = new
        if carried is not None and not chunk:
            parts.append("No terms are left to add.")
        return " ".join(parts), value

    def state(self, round_index: int, value: int, done: int) -> str:
        """The state after round ``round_index``, ``done`` terms in, partial result ``value``."""
        rest = " ".join(self._pair(i) for i in range(done, self.units)) or NOTHING
        return f"Partial result after round {round_index}: {value}. Remaining: {rest}"

    def check_steps(self, text: str) -> tuple[int, int]:
        """(right, written) over the ``a + b = c`` / ``a - b = c`` steps of ``text``."""
        right = written = 0
        for a, op, b, c in _CHAIN_STEP.findall(text):
            written += 1
            right += int(a) + (int(b) if op == "+" else -int(b)) == int(c)
        return right, written

    def check_state(self, text: str) -> bool:
        """Whether ``text`` states a true partial result and exactly the terms left after it."""
        partial, rest = _PARTIAL.search(text), _remaining_text(text)
        if partial is None or rest is None:
            return False
        if rest == NOTHING:
            pairs: tuple = ()
        else:
            parsed = parse_chain(f"0 {rest}")
            if parsed is None:
                return False
            pairs = tuple(zip(parsed[0], parsed[1][1:], strict=True))
        done = self.units - len(pairs)
        if done < 1:
            return False
        expected = tuple(zip(self.ops[done - 1 :], self.operands[done:], strict=True))
        return pairs == expected and int(partial.group(1)) == sum(self.terms[:done])


@dataclass(frozen=True)
class LetterProblem:
    """How often a letter appears in a span of words; a unit of work is one word.

    Attributes:
        question, answer: the task's own texts.
        letter: the letter counted (lower case).
        words: the span, in order.
    """

    question: str
    answer: str
    letter: str
    words: tuple[str, ...]

    def count(self, word: str) -> int:
        """How often :attr:`letter` appears in ``word`` (case-insensitive)."""
        return word.lower().count(self.letter)

    @property
    def total(self) -> int:
        """The count over the whole span, computed here."""
        return sum(self.count(w) for w in self.words)

    @property
    def units(self) -> int:
        """Units of work: the words."""
        return len(self.words)

    def work(self, chunk: range, carried: int | None, checkpoint: int = 0) -> tuple[str, int]:
        """One line of steps over the words in ``chunk`` and the count after them.

        As :meth:`ChainProblem.work`; the first round starts from ``Start with 0.``.
        """
        value = 0 if carried is None else carried
        lead = "Start with 0." if carried is None else f"Continue from the count {carried}."
        parts = [lead]
        for index in chunk:
            if checkpoint and index % checkpoint == 0:
                upcoming = self.words[index : index + checkpoint]
                parts.append(f"Next: {' '.join(upcoming)}.")
            k = self.count(self.words[index])
            parts.append(f"{self.words[index]} has {k} {self.letter}, {value} + {k} = {value + k}.")
            value += k
        if carried is not None and not chunk:
            parts.append("No words are left to count.")
        return " ".join(parts), value

    def state(self, round_index: int, value: int, done: int) -> str:
        """The state after round ``round_index``, ``done`` words in, count ``value``."""
        rest = " ".join(self.words[done:]) or NOTHING
        return f"Count after round {round_index}: {value}. Remaining: {rest}"

    def check_steps(self, text: str) -> tuple[int, int]:
        """(right, written) over the ``WORD has K L, a + K = c`` steps of ``text``."""
        right = written = 0
        for word, k, letter, a, b, c in _LETTER_STEP.findall(text):
            written += 1
            counted = letter.lower() == self.letter and self.count(word) == int(k)
            right += counted and int(b) == int(k) and int(a) + int(b) == int(c)
        return right, written

    def check_state(self, text: str) -> bool:
        """Whether ``text`` states a true count and exactly the words left after it."""
        count, rest = _COUNT.search(text), _remaining_text(text)
        if count is None or rest is None:
            return False
        left = () if rest == NOTHING else tuple(rest.split())
        done = self.units - len(left)
        if done < 0 or left != self.words[done:]:
            return False
        return int(count.group(1)) == sum(self.count(w) for w in self.words[:done])


TaskItem = ChainProblem | LetterProblem


def chain_from_entry(entry: dict) -> ChainProblem | None:
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


def letters_from_entry(entry: dict) -> LetterProblem | None:
    """A :class:`LetterProblem` from a reasoning-gym ``letter_counting`` entry, or None."""
    metadata = entry.get("metadata") or {}
    span, letter = metadata.get("span"), metadata.get("target_letter")
    if not isinstance(span, (list, tuple)) or not isinstance(letter, str) or len(letter) != 1:
        return None
    words = tuple(str(w) for w in span)
    if not words or not all(w.isalnum() for w in words):
        return None
    problem = LetterProblem(str(entry["question"]), str(entry["answer"]).strip(), letter, words)
    return problem if problem.answer == str(problem.total) else None


@dataclass(frozen=True)
class TaskKind:
    """A task family: its reasoning-gym name, its knob and how its entries are read.

    Attributes:
        name: the reasoning-gym task name.
        knob: what the knob counts (``terms``), the units of work of an item.
        low, high: the ``task_config`` keys of the knob's range (``min_terms``, ``max_terms``).
        limits: the values the knob may take (inclusive).
        defaults: reasoning-gym's own defaults of ``low`` and ``high``.
        read: entry -> item, or None for an entry this kind cannot use.
    """

    name: str
    knob: str
    low: str
    high: str
    limits: tuple[int, int]
    defaults: tuple[int, int]
    read: Callable[[dict], TaskItem | None]

    def knob_range(self, config: dict | None) -> tuple[int, int]:
        """(smallest, largest) units of an item under ``config`` (reasoning-gym defaults apply)."""
        config = config or {}
        return config.get(self.low, self.defaults[0]), config.get(self.high, self.defaults[1])


MAX_UNITS = 1000
"""The largest knob value accepted: about 10 tokens of work per unit, so ~10k tokens."""
TASK_KINDS: dict[str, TaskKind] = {
    kind.name: kind
    for kind in (
        TaskKind(
            "chain_sum", "terms", "min_terms", "max_terms", (1, MAX_UNITS), (2, 6), chain_from_entry
        ),
        TaskKind(
            "basic_arithmetic",
            "terms",
            "min_terms",
            "max_terms",
            (1, MAX_UNITS),
            (2, 6),
            chain_from_entry,
        ),
        TaskKind(
            "letter_counting",
            "words",
            "min_words",
            "max_words",
            (1, MAX_UNITS),
            (5, 15),
            letters_from_entry,
        ),
    )
}
"""The kinds with demonstrations and checkers, by reasoning-gym name."""


def task_kind(name: str) -> TaskKind | None:
    """The :class:`TaskKind` of a reasoning-gym task name, or None."""
    return TASK_KINDS.get(name)


def check_task_config(task: str, config: dict | None, option: str = "--task-config") -> None:
    """Raise a one-line :class:`ConfigError` when ``task``'s knob is out of range.

    Tasks without a kind (any other reasoning-gym task) are left to reasoning-gym.
    """
    kind = task_kind(task)
    if kind is None:
        return
    low, high = kind.knob_range(config)
    first, last = kind.limits
    for key, value in ((kind.low, low), (kind.high, high)):
        if isinstance(value, bool) or not isinstance(value, int) or not first <= value <= last:
            raise ConfigError(
                f"{option} {key} must be a whole number from {first} to {last} (the {kind.knob} "
                f"of one {task} item, which scales its work linearly); got {value!r}"
            )
    if low > high:
        raise ConfigError(
            f"{option} {kind.low} ({low}) must not exceed {kind.high} ({high}); set both, "
            f'e.g. {{"{kind.low}": {high}, "{kind.high}": {high}}}'
        )


def item_from_entry(task: str, entry: dict) -> TaskItem | None:
    """The item of a reasoning-gym entry of ``task``, or None (no kind, or unusable entry)."""
    kind = task_kind(task)
    return kind.read(entry) if kind is not None else None


def item_for(question: str, answer: str, meta: dict | None) -> TaskItem | None:
    """The item behind a loaded problem (:class:`motif.data.Problem` fields), or None.

    The kind comes from ``meta["source_dataset"]`` (reasoning-gym writes it into every entry's
    metadata, which :func:`motif.data.load_problems` keeps), so rows of other sources get None.
    """
    meta = meta or {}
    source = meta.get("source_dataset")
    if not isinstance(source, str):
        return None
    return item_from_entry(source, {"question": question, "answer": answer, "metadata": meta})


@dataclass(frozen=True)
class RoundCheck:
    """The checked work of one round (or ``tail`` chunk).

    Attributes:
        steps_right: steps written in the round's own text whose work is right.
        steps: steps written in it.
        state_right: whether the state it handed over is right; None when it handed none
            (the last round, ``tail`` and ``none``).
    """

    steps_right: int
    steps: int
    state_right: bool | None


def check_rounds(
    item: TaskItem, texts: Sequence[str], states: Sequence[str | None]
) -> list[RoundCheck]:
    """Check each round: its steps over ``texts[i]``, and ``states[i]`` (None: none handed)."""
    checks = []
    for text, state in zip(texts, states, strict=True):
        right, written = item.check_steps(text)
        checks.append(
            RoundCheck(right, written, None if state is None else item.check_state(state))
        )
    return checks


def check_trajectory(item: TaskItem, trajectory: object) -> list[RoundCheck]:
    """:func:`check_rounds` over a :class:`motif.engine.Trajectory` (read duck-typed).

    Steps are counted over each round's own text (a ``tail`` chunk's own tokens). The state a
    round hands over is its ``summary`` under a carry-over that hands state (``summary``,
    :attr:`motif.carryover.CarryOver.hands_state`), for every round but
    the last one that ran (a round before a context-overflow cut did hand its state over);
    ``tail`` and ``none`` hand no separate state (None).
    """
    rounds = list(trajectory.rounds)  # type: ignore[attr-defined]
    stored = (getattr(trajectory, "carry_over", None), getattr(trajectory, "round_end", None))
    handed = stored_carry_over(*stored).hands_state
    cut = getattr(trajectory, "cut_round", None) is not None
    states = [
        r.summary if handed and (i < len(rounds) - 1 or cut) else None for i, r in enumerate(rounds)
    ]
    return check_rounds(item, [r.text for r in rounds], states)


def steps_needed(item: TaskItem) -> int:
    """The steps a complete solution of ``item`` writes, as its own step checker counts them.

    Counted on the item's worked solution (``item.work`` over all its units, in one round) by
    ``item.check_steps``: a chain of ``n`` terms needs ``n - 1`` (its first term is where the
    work starts, ``Start with 44.``, not a step), a letter count over ``n`` words needs ``n``.
    """
    text, _ = item.work(range(item.units), None)
    return item.check_steps(text)[1]


def skips_steps(item: TaskItem, trajectory: object) -> bool:
    """Whether ``trajectory`` boxes a final answer having written fewer steps than ``item`` needs.

    :func:`skips_steps_in` of its rounds' texts (read duck-typed from a
    :class:`motif.engine.Trajectory`).
    """
    texts = [r.text for r in trajectory.rounds]  # type: ignore[attr-defined]
    return skips_steps_in(item, texts, trajectory.carry_over)  # type: ignore[attr-defined]


def skips_steps_in(item: TaskItem, texts: Sequence[str], carry_over: str) -> bool:
    """Whether rounds (or ``tail`` chunks) with these ``texts`` box a final answer having
    written fewer steps than ``item`` needs (the same for a stored ``motif eval`` row: its
    rounds' ``text`` and its ``carry_over``).

    *Written steps*: the steps ``item.check_steps`` finds, right or wrong (``44 + 75 = 119.``),
    in each round's own response, or for ``tail`` in the whole thought (its chunks joined, so a
    step split by a chunk boundary still counts once). *Boxes a final answer*: the text its answer
    is graded from (the last round's; for ``tail`` the joined thought) holds one in its final
    ``<answer>`` block (:func:`motif.answer_format.extract_final_answer`, as the rewards and the
    held-out check read it). Fewer written steps than
    :func:`steps_needed` with a boxed answer is the shortcut of stopping after a step or two and
    boxing a guess. Rounds that box nothing do not skip (they ran out of budget, or broke
    format), and a step written twice counts twice: this is a lower bound on skipping.
    """

    carry = carry_over_class(carry_over)
    written = sum(item.check_steps(t)[1] for t in carry.read_texts(texts))
    boxed = extract_final_answer(carry.answer_text(texts)) is not None
    return boxed and written < steps_needed(item)
