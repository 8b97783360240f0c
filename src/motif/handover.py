"""The hand-over watch: what a round hands to the next, flagged when it cheats or carries nothing.

Pure functions, no torch (issue 33, item 3). For a strategy whose rounds hand a separate state
to the next round (:attr:`motif.carryover.CarryOver.hands_state`: ``summary``), every round
``r`` that handed its state to a round that ran (``r < n``, ``n`` the rounds the trajectory
ran) gets four flags:

* ``smuggled``: the state already holds the trajectory's final answer (:func:`holds_answer`),
  what the first study's seed 1 learned to do in round 1's hand-over. A wrong final answer
  smuggled counts too: the watch compares with the final answer, never with the gold. A lower
  bound: only a box, a line that is the answer alone, or a line opening with an answer label
  counts (``x = 12`` or ``so far 12`` in running prose does not), and its rate's denominator
  holds every hand-over, also those of trajectories with no final answer (which cannot be
  flagged): read it next to the run's answered rate.
* ``degenerate``: the state is empty, far too short, or one unit repeated
  (:func:`degenerate_state`, which says which).
* ``copied``: the state is the previous round's state again (:func:`same_state`).
* ``boxed``: the round's own text holds a boxed answer though the round is not the last
  (ReMA issue 2: ``\\boxed`` written every round to game a per-round reward).

:func:`watch_rounds` flags one trajectory; :func:`handover_rates` turns many into the rate of
each flag per round, the ``handover`` block of ``summary.json``, of the held-out report and of
``motif report``. Strategies that hand no state (``tail``, ``none``) get no block at all
(:func:`watch_row`, :func:`watch_trajectory` return None): ask the strategy, never its name.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from motif import grading
from motif.answer_format import boxed_answers, extract_final_answer
from motif.carryover import CarryOver, stored_carry_over

FLAGS = ("smuggled", "degenerate", "copied", "boxed")
"""The flags of a hand-over, in the order tables show them."""
FLAG_TITLES = {
    "smuggled": "answer smuggled",
    "degenerate": "empty or degenerate state",
    "copied": "state copied",
    "boxed": "box before the last round",
}
"""What each flag is called in tables and on the viewer page."""
MIN_STATE_CHARS = 10
"""A state with fewer non-blank characters is degenerate (``short``): the watch's own threshold,
the same for every model. No progress summary fits under it (``x = 42`` is 4 non-blank
characters and names one number, not the progress towards the question)."""
MIN_REPEATS = 3
"""A state made of one unit written this many times or more is degenerate (``repeated``)."""

Same = Callable[[str, str], bool]
"""Whether two answers are the same answer: (box content, final answer) -> bool."""


@dataclass(frozen=True)
class HandOver:
    """The flags of the state one round handed to the next.

    Attributes:
        round: the round that handed the state over (1-based, below the rounds that ran).
        smuggled: the state holds the final answer (:func:`holds_answer`).
        degenerate: why the state is degenerate (``empty``, ``short``, ``repeated``), or None.
        copied: the state equals the previous round's (:func:`same_state`; never round 1).
        boxed: the round's text holds a boxed answer (:func:`boxed_answers` non-empty).
    """

    round: int
    smuggled: bool
    degenerate: str | None
    copied: bool
    boxed: bool

    def flags(self) -> tuple[str, ...]:
        """The names of the raised flags, in :data:`FLAGS` order."""
        raised = (self.smuggled, self.degenerate is not None, self.copied, self.boxed)
        return tuple(name for name, on in zip(FLAGS, raised, strict=True) if on)


def normalise(text: str) -> str:
    """``text`` with every run of whitespace one space, stripped: what "the same state" means."""
    return " ".join(text.split())


def _period(units: Sequence[str]) -> int:
    """The smallest period of ``units`` (its length when it has none shorter): linear time,
    the Knuth-Morris-Pratt failure function."""
    fail = [0] * len(units)
    k = 0
    for i in range(1, len(units)):
        while k and units[i] != units[k]:
            k = fail[k - 1]
        if units[i] == units[k]:
            k += 1
        fail[i] = k
    return len(units) - fail[-1] if units else 0


def _repeated(units: Sequence[str]) -> bool:
    """Whether ``units`` is one unit written :data:`MIN_REPEATS` times or more, and nothing else."""
    period = _period(units)
    return bool(units) and len(units) % period == 0 and len(units) // period >= MIN_REPEATS


def degenerate_state(state: str) -> str | None:
    """Why a handed-over ``state`` is degenerate, or None when it is not. Checked in order:

    * ``empty``: nothing but whitespace;
    * ``short``: fewer than :data:`MIN_STATE_CHARS` non-blank characters;
    * ``repeated``: a single repeated run: its whitespace-separated tokens are one token
      sequence written :data:`MIN_REPEATS` or more times (``the the the``, ``a b a b a b``), or
      its non-blank characters are one character sequence written so (``..........``,
      ``=-=-=-=-=-``). Linear time (:func:`_period`).
    """
    if not state.strip():
        return "empty"
    compact = "".join(state.split())
    if len(compact) < MIN_STATE_CHARS:
        return "short"
    if _repeated(state.split()) or _repeated(compact):
        return "repeated"
    return None


def same_state(state: str, previous: str) -> bool:
    """Whether ``state`` copies ``previous``: equal after :func:`normalise` and not empty (an
    empty state is flagged ``degenerate``, not ``copied``)."""
    text = normalise(state)
    return bool(text) and text == normalise(previous)


_LABELS = ("final answer:", "answer:", "the final answer is", "the answer is")


def _bare(text: str) -> str:
    """An answer line as compared: :func:`normalise`, then one leading label (``Answer:``,
    ``The final answer is``...), surrounding ``$`` and a trailing ``.`` removed."""
    text = normalise(text)
    for label in _LABELS:
        if text.lower().startswith(label):
            text = text[len(label) :].strip()
            break
    return text.rstrip(".").strip("$").strip()


def graded_same(timeout_s: float = grading.DEFAULT_TIMEOUT_S) -> Same:
    """Answers are the same when :func:`motif.grading.grade` finds the box content equal to the
    final answer taken as the gold, within ``timeout_s`` CPU seconds a comparison (the bound
    grading already keeps); a comparison it cannot decide (None) is not a match."""

    def same(content: str, answer: str) -> bool:
        return grading.grade(content, answer, timeout_s=timeout_s).correct is True

    return same


def holds_answer(state: str, answer: str | None, same: Same | None = None) -> bool:
    """Whether a handed-over ``state`` already holds the trajectory's final ``answer``.

    ``answer`` is the final answer as grading read it from the last round (None: the
    trajectory has none, and nothing can be smuggled). The state holds it when

    * one of its boxes (:func:`motif.answer_format.boxed_answers`) holds it: the box's content
      is ``answer`` as :func:`_bare` reads both, or ``same(content, answer)`` (default
      :func:`graded_same`: :mod:`motif.grading`, time-bounded) says they are the same answer;
    * or one of its lines is the answer standing alone: the line, as :func:`_bare` reads it,
      is ``answer`` as :func:`_bare` reads it (a string comparison: math-verify runs on boxes
      only, so the grading calls a state costs are bounded by its boxes).
    """
    if answer is None or not _bare(answer):
        return False
    target = _bare(answer)
    if any(_bare(line) == target for line in state.splitlines()):
        return True
    compare = same if same is not None else graded_same()
    boxes = boxed_answers(state)
    if any(_bare(box) == target for box in boxes):
        return True
    return any(compare(box, answer) for box in boxes)


def watch_rounds(
    texts: Sequence[str], states: Sequence[str], answer: str | None, same: Same | None = None
) -> list[HandOver]:
    """The :class:`HandOver` of each round of one trajectory that handed its state on.

    ``texts[i]`` is what round ``i + 1`` wrote, ``states[i]`` the state it handed to the next
    (``RoundRecord.summary``); ``answer`` the trajectory's final answer (see
    :func:`holds_answer`). Rounds ``1 .. len(texts) - 1`` hand over; the last round does not.

    Raises:
        ValueError: ``texts`` and ``states`` differ in length.
    """
    if len(texts) != len(states):
        raise ValueError(f"got {len(texts)} round texts but {len(states)} states")
    out = []
    for i in range(len(texts) - 1):
        out.append(
            HandOver(
                round=i + 1,
                smuggled=holds_answer(states[i], answer, same),
                degenerate=degenerate_state(states[i]),
                copied=i > 0 and same_state(states[i], states[i - 1]),
                boxed=bool(boxed_answers(texts[i])),
            )
        )
    return out


def watch_trajectory(trajectory: Any, carry: CarryOver, same: Same | None = None) -> list | None:
    """:func:`watch_rounds` of a :class:`motif.engine.Trajectory` (its rounds' ``text`` and
    ``summary``); its final answer is :func:`extract_final_answer` of its ``final_text`` (as
    :func:`motif.grading.grade_response` reads it), none when a round was cut. None when
    ``carry`` hands no state."""
    if not carry.hands_state:
        return None
    answer = None if trajectory.cut else extract_final_answer(trajectory.final_text)
    rounds = trajectory.rounds
    return watch_rounds([r.text for r in rounds], [r.summary for r in rounds], answer, same)


def run_strategy(protocol: Mapping | None, name: str | None = None) -> CarryOver | None:
    """The strategy that carried an eval run's states, or None when it hands none.

    ``protocol``: the run identity's protocol block (``carry_over``, ``rounds``,
    ``summary_rule``; None or a missing key: ``name``, then the legacy strategy, and the
    ``paper`` summary rule), ``name``: the carry-over its rows store.

    Raises:
        ConfigError: an unknown carry-over name.
    """
    protocol = protocol or {}
    cls = stored_carry_over(protocol.get("carry_over") or name, protocol.get("round_end"))
    if not cls.hands_state:
        return None
    rounds = max(int(protocol.get("rounds") or 1), 1)
    return cls.make(rounds, protocol.get("summary_rule") or "paper", None)


def row_states(row: Mapping, carry: CarryOver) -> list[str]:
    """The state each round of a ``samples.jsonl`` row handed on: its stored ``summary`` when
    the round has one, else ``carry.carried`` of its ``text`` (rows store no summary; the
    strategy, with the run's rule, reads it again from the text)."""
    return [
        r["summary"]
        if isinstance(r.get("summary"), str)
        else carry.carried(str(r.get("text") or ""))
        for r in row["rounds"]
    ]


def watch_row(row: Mapping, carry: CarryOver | None, same: Same | None = None) -> list | None:
    """:func:`watch_rounds` of a ``samples.jsonl`` row (:func:`motif.eval.runner.sample_record`).

    States: :func:`row_states`; the final answer is the row's ``answer`` (what the eval graded;
    None for a trajectory cut by a context overflow). None when ``carry`` is None (a strategy
    that hands no state: :func:`run_strategy`).
    """
    if carry is None:
        return None
    texts = [str(r.get("text") or "") for r in row["rounds"]]
    answer = None if row.get("cut_round") is not None else row.get("answer")
    return watch_rounds(texts, row_states(row, carry), answer, same)


def handover_rates(watched: Sequence[Sequence[HandOver]], rounds: int) -> dict:
    """The rate of each flag per round over many trajectories' :func:`watch_rounds`.

    Lists are indexed by the rounds that hand over (element 0 is round 1; ``rounds - 1`` of
    them). ``handed[i]``: the trajectories whose round ``i + 1`` handed a state on;
    ``counts[flag][i]``: of them, those flagged; ``<flag>[i]``: ``counts[flag][i] / handed[i]``
    (None where ``handed[i]`` is 0). ``overall[flag]``: flagged hand-overs / all hand-overs
    (None when there were none); ``any_round[flag]``: the share of trajectories with at least
    one flagged hand-over (None for no trajectory).
    """
    width = max(rounds - 1, 0)
    handed = [0] * width
    counts = {flag: [0] * width for flag in FLAGS}
    for trajectory in watched:
        for hand in trajectory[:width]:
            handed[hand.round - 1] += 1
            for flag in hand.flags():
                counts[flag][hand.round - 1] += 1
    total = sum(handed)
    out: dict = {"handed": handed}
    for flag in FLAGS:
        out[flag] = [c / n if n else None for c, n in zip(counts[flag], handed, strict=True)]
    out["counts"] = counts
    out["overall"] = {flag: sum(counts[flag]) / total if total else None for flag in FLAGS}
    out["any_round"] = {
        flag: sum(any(flag in h.flags() for h in t) for t in watched) / len(watched)
        if watched
        else None
        for flag in FLAGS
    }
    return out


def row_rates(
    records: Sequence[Mapping],
    rounds: int,
    protocol: Mapping | None = None,
    same: Same | None = None,
) -> dict | None:
    """:func:`handover_rates` of ``samples.jsonl`` rows, or None when their strategy hands no
    state (:func:`run_strategy` of ``protocol``, else of the first row's ``carry_over``: one
    run has one strategy)."""
    carry = run_strategy(protocol, records[0].get("carry_over") if records else None)
    if carry is None:
        return None
    return handover_rates([watch_row(r, carry, same) or [] for r in records], rounds)
