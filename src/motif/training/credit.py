"""``--credit all``: GRPO credit for every round of MOTIF, each by its own future accuracy.

Every round of MOTIF is a fresh chat, so a round-``r`` *state* (the question and the summary
carried into round ``r``) is just another prompt. With ``--credit all`` some GRPO groups of a
step are not fresh questions but round-``r`` states drawn from the latest rollouts: TRL writes
``m`` replies to the state and computes their advantages within the group as usual; the reward
(:class:`motif.training.reward.FutureAccuracyReward`) scores each reply by the accuracy of ``k``
continuations from the state it hands over (rounds ``r+1..n``), the last round by its own
accuracy. The continuations every step rolls out anyway reach later states for free; they
refill a bounded buffer per round (:class:`StateBuffer`).

How it sits on TRL 1.16's ``GRPOTrainer`` without forking it (:func:`credit_trainer_class`):
the public ``training_step`` hook rewrites the raw rows of a generation batch before TRL reads
them (whole groups of ``m`` rows, so TRL's ``RepeatSampler`` grouping, its vLLM prompt
de-duplication and its per-group advantages hold), and an override of the private
``_calculate_rewards`` (behind :func:`check_trl`) reads the summed rewards for the per-round
metrics. The schedule is the same on every process, so all ranks make the same generate calls.
"""

from __future__ import annotations

import math
import random
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from motif.answer_format import parse_answer, parse_reasoning
from motif.engine import RoundRecord, Trajectory
from motif.prompts import fold_system
from motif.protocol import Protocol
from motif.training.trl_hooks import require_hooks

ROUND_KEY = "credit_round"
"""Row column (and reward keyword) holding the round a row's reply answers (1 = a question)."""
HISTORY_KEY = "credit_history"
"""Row column holding the rounds that reached a state (None for a question)."""


@dataclass
class State:
    """A round-``r`` state: a question, its gold and the rounds ``1..r-1`` that reached it.

    The last of ``history`` is the round whose summary is carried into round ``r``.
    """

    question: str
    gold: Any
    history: list[RoundRecord] = field(default_factory=list)

    @property
    def round(self) -> int:
        """The round a reply to this state answers (``len(history) + 1``)."""
        return len(self.history) + 1

    def row(self, protocol: Protocol) -> dict[str, Any]:
        """The training row: round ``r``'s chat, question, gold, round and history columns."""
        summary = self.history[-1].summary
        return {
            "prompt": protocol.messages(self.question, self.round, summary),
            "question": self.question,
            "answer": self.gold,
            ROUND_KEY: self.round,
            HISTORY_KEY: list(self.history),
        }


def harvest(
    groups: Sequence[Sequence[Trajectory]], golds: Sequence[Any], given: Sequence[int], rounds: int
) -> list[State]:
    """The states of rounds ``given[i]+1..rounds`` that trajectory groups reached, once each.

    ``groups[i]`` are the ``k`` continuations of one reply of round ``given[i]`` (their first
    ``given[i]`` rounds shared, so the next round's state is taken once). A state needs the
    rounds before it; a trajectory cut at round ``c`` (its prompt did not fit) yields no state
    of round ``c`` or later. Returns the states in trajectory order.
    """
    states = []
    for group, gold, start in zip(groups, golds, given, strict=True):
        seen: set[tuple[int, ...]] = set()
        for traj in group:
            for r in range(max(start, 1) + 1, rounds + 1):
                # a state only where its round ran: a trajectory that ended before round r
                # (a model-ended conclusion) reaches no round-r state
                if len(traj.rounds) < r or (traj.cut_round is not None and r >= traj.cut_round):
                    continue
                prefix = traj.rounds[: r - 1]
                key = tuple(id(x) for x in prefix)
                if key not in seen:
                    seen.add(key)
                    states.append(State(traj.question, gold, list(prefix)))
    return states


class StateBuffer:
    """The newest ``size`` states of every round ``2..rounds`` (older ones drop out)."""

    def __init__(self, size: int, rounds: int) -> None:
        self.size = size
        self.rounds = rounds
        self._states: dict[int, deque[State]] = {
            r: deque(maxlen=size) for r in range(2, rounds + 1)
        }

    def add(self, states: Iterable[State]) -> None:
        """Keep ``states`` (newest last); a state of round 1 or past the last is an error."""
        for state in states:
            if state.round not in self._states:
                raise ValueError(f"a state of round {state.round} in a {self.rounds}-round buffer")
            self._states[state.round].append(state)

    def count(self, round_index: int) -> int:
        """States held for ``round_index``."""
        return len(self._states.get(round_index, ()))

    def draw(self, round_index: int, rng: random.Random) -> State | None:
        """A state of ``round_index`` drawn uniformly, or None when there is none yet."""
        held = self._states.get(round_index)
        return rng.choice(held) if held else None


def group_round(slot: int, first_share: Fraction, rounds: int) -> int:
    """The round the GRPO group in running ``slot`` (0, 1, ...) trains.

    A ``first_share`` of the slots, evenly spread and slot 0 among them, are round 1 (fresh
    questions); the others cycle through rounds ``2..rounds``. Pure: every process computes
    the same schedule.
    """
    firsts_before = math.ceil(slot * first_share)
    if math.ceil((slot + 1) * first_share) > firsts_before or rounds == 1:
        return 1
    return 2 + (slot - firsts_before) % (rounds - 1)


class Credit:
    """The state buffer and the group schedule of a ``--credit all`` run.

    Args:
        protocol: the run's protocol (``summary`` carry-over, ``rounds >= 2``).
        num_generations: ``m``, rows per GRPO group.
        first_share: share of groups that answer fresh questions.
        buffer_size: states kept per round.
        seed: the run's seed (state draws are seeded by it, the generation and the process).
        fold_system: the policy's chat template refuses the system role, so the states'
            prompts (rendered by TRL) carry the system prompt in the first user turn.
    """

    def __init__(
        self,
        protocol: Protocol,
        num_generations: int,
        first_share: float,
        buffer_size: int,
        seed: int = 0,
        fold_system: bool = False,
    ) -> None:
        self.protocol = protocol
        self.m = num_generations
        self.share = Fraction(first_share).limit_denominator(1000)
        self.buffer = StateBuffer(buffer_size, protocol.rounds)
        self.seed = seed
        # The policy's chat template refuses the system role: TRL renders these prompts
        # itself, so the system prompt is folded into the user turn here.
        self.fold_system = fold_system

    @classmethod
    def from_args(
        cls, motif: Any, num_generations: int, seed: int, fold_system: bool = False
    ) -> Credit:
        """From :class:`motif.training.config.MotifArgs` (``credit: all``)."""
        share = motif.first_share()
        return cls(motif.protocol(), num_generations, share, motif.credit_buffer, seed, fold_system)

    def mix(self, rows: Sequence[dict], generation: int, rank: int = 0) -> list[dict]:
        """The generation batch with scheduled groups answering round-``r`` states.

        ``rows`` holds whole groups of ``m`` identical rows (TRL's order). Group ``g`` takes
        schedule slot ``generation * groups + g``; a slot of round ``r >= 2`` draws a state
        of that round from the buffer (a question's group when none is held yet). Every row
        gains the :data:`ROUND_KEY` and :data:`HISTORY_KEY` columns.

        Raises:
            ValueError: ``len(rows)`` is not a multiple of ``m``.
        """
        if len(rows) % self.m:
            raise ValueError(f"{len(rows)} rows do not make groups of m={self.m}")
        groups = len(rows) // self.m
        rng = random.Random(f"{self.seed}:{generation}:{rank}")
        mixed: list[dict] = []
        for g in range(groups):
            base = rows[g * self.m]
            r = group_round(generation * groups + g, self.share, self.protocol.rounds)
            state = self.buffer.draw(r, rng) if r > 1 else None
            row = {**base, ROUND_KEY: 1, HISTORY_KEY: None}
            if state is not None:
                row.update(state.row(self.protocol))
                if self.fold_system:
                    row["prompt"] = fold_system(row["prompt"])
            mixed.extend(dict(row) for _ in range(self.m))
        return mixed

    def score(self, reward: Any, questions: list, golds: list, texts: list, kwargs: dict) -> list:
        """The reward's hook (:class:`motif.training.reward.FutureAccuracyReward`): each
        reply by the accuracy of ``k`` continuations from the state it hands over."""
        return reward._all_rounds(self, questions, golds, texts, kwargs)

    def reply(
        self,
        history: Sequence[RoundRecord],
        question: str,
        text: str,
        tokens: int,
        prompt_tokens: int = 0,
        truncated: bool = False,
    ) -> Trajectory:
        """A partial trajectory: ``history`` then ``text`` as the reply of the next round.

        ``tokens``: the reply's new tokens; ``prompt_tokens``: its prompt's (chat template
        included; 0 when unknown); ``truncated``: it stopped at its budget, not at an EOS.
        """
        index = len(history) + 1
        summary = history[-1].summary if history else None
        prompt = self.protocol.messages(question, index, summary)[-1]["content"]
        record = RoundRecord(
            round=index,
            prompt=prompt,
            text=text,
            reasoning=parse_reasoning(text),
            answer=parse_answer(text),
            summary=self.protocol.summary(text),
            prompt_tokens=prompt_tokens,
            completion_tokens=tokens,
            truncated=truncated,
        )
        return Trajectory(question, [*history, record], carry_over=self.protocol.carry_over)


def share_states(states: list[State], size: int, accelerator: Any) -> list[State]:
    """Every process's newest states of each round (at most ``size / processes`` each).

    A collective under several processes (``accelerate.utils.gather_object``): every process
    must call it, which every reward call does; the buffers then stay identical.
    """
    world = max(1, getattr(accelerator, "num_processes", 1))
    cap = max(1, math.ceil(size / world))
    kept: list[State] = []
    for r in sorted({s.round for s in states}):
        kept.extend([s for s in states if s.round == r][-cap:])
    if world == 1:
        return kept
    from accelerate.utils import gather_object

    return list(gather_object(kept))


def round_metrics(
    totals: Sequence[float], rounds: Sequence[int], lengths: Sequence[int], m: int
) -> dict[str, float]:
    """Per-round statistics of one generation batch (every process's rows, TRL's order).

    ``totals`` are the summed rewards per reply (NaN: unscorable, left out as TRL does),
    ``rounds`` the round of each reply, ``lengths`` its tokens. For each round ``r`` present:
    ``round{r}/reward`` (mean), ``round{r}/groups``, ``round{r}/frac_reward_zero_std`` (groups
    whose rewards do not vary: no GRPO signal), ``round{r}/reply_tokens`` (sum).
    """
    if not len(totals) == len(rounds) == len(lengths) or len(totals) % m:
        raise ValueError("totals, rounds and lengths must have one entry per reply, whole groups")
    out: dict[str, float] = {}
    for r in sorted(set(rounds)):
        groups = [
            [x for x in totals[g : g + m] if not math.isnan(x)]
            for g in range(0, len(totals), m)
            if rounds[g] == r
        ]
        values = [x for grp in groups for x in grp]
        flat = [len(grp) < 2 or max(grp) - min(grp) < 1e-8 for grp in groups]
        out[f"round{r}/reward"] = sum(values) / len(values) if values else math.nan
        out[f"round{r}/groups"] = float(len(groups))
        out[f"round{r}/frac_reward_zero_std"] = sum(flat) / len(groups)
        out[f"round{r}/reply_tokens"] = float(
            sum(n for n, x in zip(lengths, rounds, strict=True) if x == r)
        )
    return out


def check_trl() -> None:
    """``--credit all`` needs TRL's GRPOTrainer hook it was built on (checked before a load).

    Raises:
        ConfigError: the TRL release is outside :data:`motif.training.trl_hooks.TESTED_TRL`,
            or its ``GRPOTrainer._calculate_rewards(inputs, prompts, completions,
            completion_ids_list)`` is missing or different.
    """
    require_hooks(
        "--credit all reads per-round rewards",
        {"_calculate_rewards": ["inputs", "prompts", "completions", "completion_ids_list"]},
    )


def credit_trainer_class() -> type:
    """``GRPOTrainer`` with the two ``--credit all`` hooks (set ``trainer.credit`` before training).

    ``training_step`` (public): TRL generates from the raw batch of every
    ``steps_per_generation * num_iterations``-th call (counted from the process's start, as
    TRL's own counter); those batches are mixed (:meth:`Credit.mix`), the schedule slot
    counted from the global step so a resumed run continues it. ``_calculate_rewards``
    (private, :func:`check_trl`): logs :func:`round_metrics` after TRL's own computation.
    """
    check_trl()
    from trl import GRPOTrainer

    class CreditGRPOTrainer(GRPOTrainer):
        credit: Credit | None = None
        _credit_calls: int = 0
        _credit_offset: int | None = None

        def training_step(self, model: Any, inputs: Any, num_items_in_batch: Any = None) -> Any:
            if self.credit is None:
                raise RuntimeError("CreditGRPOTrainer.credit is not set")
            every = self.args.steps_per_generation * self.args.num_iterations
            if self._credit_offset is None:
                self._credit_offset = self.state.global_step * self.args.gradient_accumulation_steps
            if self._credit_calls % every == 0:
                generation = (self._credit_offset + self._credit_calls) // every
                inputs = self.credit.mix(inputs, generation, self.accelerator.process_index)
            self._credit_calls += 1
            return super().training_step(model, inputs, num_items_in_batch)

        def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
            rewards = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
            if self.credit is not None and self.model.training:
                self._log_rounds(inputs, rewards, completion_ids_list)
            return rewards

        def _log_rounds(self, inputs: list, rewards: Any, completion_ids: list) -> None:
            import torch
            from accelerate.utils import gather_object

            rounds = [row.get(ROUND_KEY) or 1 for row in inputs]
            lengths = [len(ids) for ids in completion_ids]
            if self.accelerator.num_processes > 1:
                rounds, lengths = gather_object(rounds), gather_object(lengths)
            weights = self.reward_weights.to(rewards.device)
            totals = (rewards * weights.unsqueeze(0)).nansum(dim=1)
            totals[torch.isnan(rewards).all(dim=1)] = torch.nan  # unscorable, as TRL has it
            metrics = round_metrics(totals.tolist(), rounds, lengths, self.credit.m)
            for r in range(2, self.credit.protocol.rounds + 1):
                metrics[f"round{r}/states"] = float(self.credit.buffer.count(r))
            for name, value in metrics.items():
                self._log_metric(name, value)

    return CreditGRPOTrainer
