"""The multi-round rollout engine: one batched generate call per round, for every live trajectory.

It knows nothing about TRL or training. Training uses :meth:`RolloutEngine.continue_from` to roll
out ``k`` continuations of given round-1 responses; inference and evaluation use
:meth:`RolloutEngine.run`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

from motif.backends.base import GenerationBackend, GenerationOutput, SamplingParams
from motif.protocol import Protocol, extract_final_answer, parse_answer, parse_reasoning

logger = logging.getLogger(__name__)


@dataclass
class RoundRecord:
    """What one round of one trajectory produced.

    ``summary`` is what the protocol carries into the next round; ``answer`` is the strictly
    parsed ``<answer>`` content (None when the tags are missing).
    """

    round: int
    prompt: str
    text: str
    reasoning: str | None
    answer: str | None
    summary: str
    prompt_tokens: int
    completion_tokens: int
    truncated: bool


@dataclass
class Trajectory:
    """One question answered over one or more rounds.

    ``cut_round`` is the round whose prompt plus token budget did not fit the model's context
    (a backend in ``overflow="skip"`` mode): nothing was generated from it on, so ``rounds``
    ends before it and the trajectory has no answer of the protocol's last round.
    """

    question: str
    rounds: list[RoundRecord] = field(default_factory=list)
    stopped_early: bool = False
    cut_round: int | None = None

    @property
    def cut(self) -> bool:
        """Whether a round did not fit the context (see ``cut_round``)."""
        return self.cut_round is not None

    @property
    def final_text(self) -> str:
        """The last round's whole response."""
        return self.rounds[-1].text if self.rounds else ""

    @property
    def completion_tokens(self) -> int:
        """Tokens generated over all rounds."""
        return sum(r.completion_tokens for r in self.rounds)

    def to_dict(self) -> dict:
        """A JSON-ready view."""
        return {
            "question": self.question,
            "stopped_early": self.stopped_early,
            "cut_round": self.cut_round,
            "rounds": [asdict(r) for r in self.rounds],
        }


def _record(protocol: Protocol, index: int, prompt: str, out: GenerationOutput) -> RoundRecord:
    return RoundRecord(
        round=index,
        prompt=prompt,
        text=out.text,
        reasoning=parse_reasoning(out.text),
        answer=parse_answer(out.text),
        summary=protocol.summary(out.text),
        prompt_tokens=out.prompt_tokens,
        completion_tokens=out.completion_tokens,
        truncated=out.truncated,
    )


class RolloutEngine:
    """Runs a :class:`Protocol` over many trajectories at once.

    Args:
        backend: where the text comes from.
        protocol: rounds and summary rule.
        first_round: sampling for round 1.
        later_rounds: sampling for rounds 2..n (defaults to ``first_round``).
        early_stop: stop a trajectory before the last round once a round's ``<answer>``
            holds a ``\\boxed{}`` answer (off by default: the paper always runs every round).
    """

    def __init__(
        self,
        backend: GenerationBackend,
        protocol: Protocol,
        first_round: SamplingParams,
        later_rounds: SamplingParams | None = None,
        early_stop: bool = False,
    ) -> None:
        self.backend = backend
        self.protocol = protocol
        self.first_round = first_round
        self.later_rounds = later_rounds or first_round
        self.early_stop = early_stop

    def run(self, questions: Sequence[str], num_samples: int = 1) -> list[Trajectory]:
        """Answer every question over all rounds; ``num_samples`` trajectories per question.

        Returns the trajectories question by question (the samples of ``questions[0]`` first).
        """
        _check_questions(questions)
        trajectories = [Trajectory(q) for q in questions for _ in range(num_samples)]
        chats = self.protocol.batch_messages(questions, 1, [None] * len(questions))
        outputs = self.backend.generate(chats, self.first_round, num_samples)
        for i, (traj, out) in enumerate(zip(trajectories, outputs, strict=True)):
            prompt = chats[i // num_samples][-1]["content"]
            _add_round(traj, _record(self.protocol, 1, prompt, out), out)
        self._continue(trajectories, start_round=2)
        return trajectories

    def continue_from(
        self, questions: Sequence[str], first_responses: Sequence[str], k: int
    ) -> list[list[Trajectory]]:
        """Roll out ``k`` continuations (rounds 2..n) of each given round-1 response.

        Round 2's prompt is the same for the ``k`` continuations of one response, so it is sent
        once with ``num_samples=k`` (a backend may share its prefill). Returns, for each
        response, its ``k`` trajectories, each starting with the given round 1.
        """
        _check_questions(questions)
        if len(questions) != len(first_responses):
            raise ValueError(
                f"got {len(questions)} questions but {len(first_responses)} round-1 responses"
            )
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        firsts = [self._given_round(q, r) for q, r in zip(questions, first_responses, strict=True)]
        groups = [
            [Trajectory(q, [first]) for _ in range(k)]
            for q, first in zip(questions, firsts, strict=True)
        ]
        if self.protocol.rounds == 1:
            return groups
        live = [g for g in groups if not self._done(g[0])]
        outputs = self._generate_round([g[0] for g in live], 2, num_samples=k)
        for i, group in enumerate(live):
            for traj, pair in zip(group, outputs[i * k : (i + 1) * k], strict=True):
                _add_round(traj, *pair)
        for group in groups:
            if len(group[0].rounds) == 1 and not group[0].cut:
                for traj in group:
                    traj.stopped_early = True
        self._continue([t for g in groups for t in g], start_round=3)
        return groups

    def _given_round(self, question: str, text: str) -> RoundRecord:
        out = GenerationOutput(text=text, prompt_tokens=0, completion_tokens=0, truncated=False)
        return _record(self.protocol, 1, question, out)

    def _done(self, traj: Trajectory) -> bool:
        if traj.cut or len(traj.rounds) >= self.protocol.rounds:
            return True
        last = traj.rounds[-1]
        return self.early_stop and extract_final_answer(last.text) is not None

    def _generate_round(
        self, live: list[Trajectory], index: int, num_samples: int = 1
    ) -> list[tuple[RoundRecord, GenerationOutput]]:
        """One batched generate call for round ``index`` of every live trajectory."""
        if not live:
            return []
        summaries = [t.rounds[-1].summary for t in live]
        chats = self.protocol.batch_messages([t.question for t in live], index, summaries)
        outputs = self.backend.generate(chats, self.later_rounds, num_samples)
        prompts = [c[-1]["content"] for c in chats for _ in range(num_samples)]
        return [
            (_record(self.protocol, index, p, o), o) for p, o in zip(prompts, outputs, strict=True)
        ]

    def _continue(self, trajectories: list[Trajectory], start_round: int) -> None:
        for index in range(start_round, self.protocol.rounds + 1):
            live = []
            for traj in trajectories:
                if len(traj.rounds) == index - 1 and not self._done(traj):
                    live.append(traj)
                elif len(traj.rounds) == index - 1 and not traj.cut:
                    traj.stopped_early = True
            for traj, pair in zip(live, self._generate_round(live, index), strict=True):
                _add_round(traj, *pair)
        logger.debug("rolled out %d trajectories", len(trajectories))


def _add_round(traj: Trajectory, record: RoundRecord, out: GenerationOutput) -> None:
    """Append a generated round, or mark the trajectory cut at a round that did not fit."""
    if getattr(out, "context_overflow", False):
        traj.cut_round = record.round
        logger.debug("round %d did not fit the context: trajectory cut", record.round)
        return
    traj.rounds.append(record)


def _check_questions(questions: Sequence[str]) -> None:
    for i, q in enumerate(questions):
        if not isinstance(q, str) or not q.strip():
            raise ValueError(f"question {i} is empty; every question needs text")
