"""The multi-round rollout engine: one batched generate call per round, for every live trajectory.

It knows nothing about TRL or training. Training uses :meth:`RolloutEngine.continue_from` to roll
out ``k`` continuations of given round-1 responses; inference and evaluation use
:meth:`RolloutEngine.run`.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from motif.answer_format import parse_answer, parse_reasoning
from motif.backends.base import (
    ContextOverflow,
    GenerationBackend,
    GenerationOutput,
    SamplingParams,
    piece_texts,
)
from motif.carryover import carry_over_class
from motif.protocol import Protocol

logger = logging.getLogger(__name__)


@dataclass
class RoundRecord:
    """What one round (or ``tail`` chunk) of one trajectory produced.

    ``text`` is what this round wrote: its reply, decoded from its token ids as one sequence;
    for ``tail``, this chunk's part of the thought: the whole thought is decoded from all its
    token ids and cut at the chunk ends, a character whose bytes span a chunk end belonging
    to the chunk that completes it, so the chunks' texts join into the thought exactly
    (:func:`motif.backends.base.piece_texts`; an earlier chunk's ``text`` loses such a
    character's U+FFFD once the next chunk completes it). ``summary`` is what the protocol
    carries into the next round (``""`` for ``tail`` and ``none``); ``reasoning`` and
    ``answer`` are read from the text the answer is read from (this round's text; for
    ``tail``, the whole thought so far). Budget accounting, in tokens: ``prompt_tokens``
    (chat template, question and carried state), of which ``carried_tokens`` carry the state
    (``summary``: the tokens the previous round's summary takes in this prompt; ``tail``: the
    thought tokens carried into this chunk; 0 in round 1 and for ``none``),
    ``completion_tokens`` (new tokens), and their sum ``context_tokens``, the most this round
    attended over.
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
    carried_tokens: int = 0

    @property
    def context_tokens(self) -> int:
        """Prompt plus new tokens: the largest context this round used."""
        return self.prompt_tokens + self.completion_tokens


@dataclass
class Trajectory:
    """One question answered over one or more rounds (``tail``: chunks of one thought).

    ``cut_round`` is the round whose prompt plus token budget did not fit the model's context
    (a backend in ``overflow="skip"`` mode): nothing was generated from it on, so ``rounds``
    ends before it and the trajectory has no answer of the protocol's last round.
    ``thought_ids`` (``tail`` only, not serialised) are the token ids of the whole thought.
    """

    question: str
    rounds: list[RoundRecord] = field(default_factory=list)
    stopped_early: bool = False
    cut_round: int | None = None
    carry_over: str = "summary"
    round_end: str = "budget"
    thought_ids: list[int] = field(default_factory=list, repr=False)

    @property
    def cut(self) -> bool:
        """Whether a round did not fit the context (see ``cut_round``)."""
        return self.cut_round is not None

    def answer_text(self, round_index: int) -> str:
        """The text the answer after round ``round_index`` (1-based) is read from.

        That round's response; for ``tail``, the thought written up to it: its chunks' texts
        joined, which is the thought decoded from its whole id sequence, cut after the last
        character that chunk completed (see :class:`RoundRecord`).
        """
        texts = [r.text for r in self.rounds[:round_index]]
        return carry_over_class(self.carry_over, round_end=self.round_end).answer_text(texts)

    @property
    def final_text(self) -> str:
        """The text the final answer is read from (:meth:`answer_text` of the last round)."""
        return self.answer_text(len(self.rounds)) if self.rounds else ""

    @property
    def completion_tokens(self) -> int:
        """Tokens generated over all rounds."""
        return sum(r.completion_tokens for r in self.rounds)

    @property
    def largest_context(self) -> int:
        """The most tokens (prompt + new) any round attended over; 0 before any round."""
        return max((r.context_tokens for r in self.rounds), default=0)

    def to_dict(self, *, budget: bool = False) -> dict:
        """The one JSON view of a trajectory (``thought_ids`` left out): ``question``,
        ``carry_over`` (and ``round_end`` when the model ends its rounds), ``stopped_early``,
        ``cut_round`` and ``rounds`` (each
        :class:`RoundRecord`'s fields, in their order).

        ``budget`` adds the token accounting: each round's ``context_tokens`` and the
        trajectory's ``generated_tokens`` (:attr:`completion_tokens`) and ``largest_context``.
        ``motif infer --json`` (:func:`motif.cli.infer.trajectory_json`) and the rows of
        ``samples.jsonl`` (:func:`motif.eval.runner.sample_record`) pick their keys from it.
        """
        data = {
            "question": self.question,
            "carry_over": self.carry_over,
            **({"round_end": self.round_end} if self.round_end != "budget" else {}),
            "stopped_early": self.stopped_early,
            "cut_round": self.cut_round,
            "rounds": [asdict(r) for r in self.rounds],
        }
        if budget:
            for row, record in zip(data["rounds"], self.rounds, strict=True):
                row["context_tokens"] = record.context_tokens
            data["generated_tokens"] = self.completion_tokens
            data["largest_context"] = self.largest_context
        return data


def _record(
    protocol: Protocol, index: int, prompt: str, out: GenerationOutput, text: str, read: str
) -> RoundRecord:
    """Round ``index``'s record: ``text`` is what it wrote, ``read`` the text its reasoning
    and answer are read from (``tail``: the thought so far; otherwise ``text``)."""
    return RoundRecord(
        round=index,
        prompt=prompt,
        text=text,
        reasoning=parse_reasoning(read),
        answer=parse_answer(read),
        summary=protocol.summary(text),
        prompt_tokens=out.prompt_tokens,
        completion_tokens=out.completion_tokens,
        truncated=out.truncated,
        carried_tokens=out.carried_tokens,
    )


def _one_policy(method: Callable) -> Callable:
    """Run an engine method inside ``backend.frozen_weights()``: every round of one rollout is
    generated by the same weights, so the backend may reuse work derived from them."""

    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        frozen = getattr(self.backend, "frozen_weights", contextlib.nullcontext)
        with frozen():
            return method(self, *args, **kwargs)

    return wrapper


class RolloutEngine:
    """Runs a :class:`Protocol` over many trajectories at once, one batched call per round.

    Args:
        backend: where the text comes from.
        protocol: rounds and carry-over (``summary``, ``tail`` or ``none``).
        first_round: sampling for round 1.
        later_rounds: sampling for rounds 2..n (defaults to ``first_round``).
        early_stop: stop a trajectory before the last round once a round's ``<answer>``
            holds a ``\\boxed{}`` answer (off by default: the paper always runs every round).
            A ``tail`` thought always stops at its end-of-sequence instead.

    With ``tail``, round ``r``'s token budget is the window's (``C`` for the first chunk,
    ``C - h - m`` after), whatever ``max_new_tokens`` the sampling says; later chunks continue
    the assistant turn from the carried token ids (``backend.generate(..., prefixes=...)``).
    """

    def __init__(
        self,
        backend: GenerationBackend,
        protocol: Protocol,
        first_round: SamplingParams,
        later_rounds: SamplingParams | None = None,
        early_stop: bool = False,
        on_round: Callable[[int, int], None] | None = None,
    ) -> None:
        self.backend = backend
        self.protocol = protocol
        self.first_round = first_round
        self.later_rounds = later_rounds or first_round
        self.early_stop = early_stop
        self.on_round = on_round  # called with (round, rounds) after each round: progress

    def _trajectory(self, question: str) -> Trajectory:
        """A new trajectory of ``question`` under this engine's protocol (no round yet)."""
        return Trajectory(
            question, carry_over=self.protocol.carry_over, round_end=self.protocol.round_end
        )

    @_one_policy
    def run(self, questions: Sequence[str], num_samples: int = 1) -> list[Trajectory]:
        """Answer every question over all rounds; ``num_samples`` trajectories per question.

        Returns the trajectories question by question (the samples of ``questions[0]`` first).
        """
        _check_questions(questions)
        seeds = [self._trajectory(q) for q in questions]
        outputs = self._generate(seeds, 1, num_samples)
        trajectories = []
        for i, out in enumerate(outputs):
            traj = self._trajectory(questions[i // num_samples])
            self._add(traj, 1, out)
            trajectories.append(traj)
        self._round_done(1)
        self._continue(trajectories, start_round=2)
        return trajectories

    def _round_done(self, index: int) -> None:
        if self.on_round is not None:
            self.on_round(index, self.protocol.rounds)

    @_one_policy
    def continue_from(
        self,
        questions: Sequence[str],
        first_responses: Sequence[str],
        k: int,
        first_token_ids: Sequence[Sequence[int]] | None = None,
        first_truncated: Sequence[bool] | None = None,
        first_prompt_tokens: Sequence[int] | None = None,
    ) -> list[list[Trajectory]]:
        """Roll out ``k`` continuations (rounds 2..n) of each given round-1 response.

        Round 2's prompt is the same for the ``k`` continuations of one response, so it is sent
        once with ``num_samples=k`` (a backend may share its prefill). Returns, for each
        response, its ``k`` trajectories, each starting with the given round 1.

        The stored round 1 is what the caller knows of its generation: ``first_token_ids``
        (its new tokens are their count; 0 without them), ``first_truncated`` (it stopped at
        its budget rather than at end-of-sequence; default False, and True under ``tail``)
        and ``first_prompt_tokens`` (its prompt's length, chat template included; default 0).
        ``tail`` continues each response's thought, so it needs ``first_token_ids`` and
        ``first_truncated`` (a finished thought is not continued).

        Raises:
            ValueError: lengths differ, ``k < 1``, or ``tail`` without ``first_token_ids``.
        """
        _check_questions(questions)
        n = len(questions)
        if len(first_responses) != n:
            raise ValueError(f"got {n} questions but {len(first_responses)} round-1 responses")
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        firsts = self._given_firsts(
            questions, first_responses, first_token_ids, first_truncated, first_prompt_tokens
        )
        groups = [[_copy(first) for _ in range(k)] for first in firsts]
        if self.protocol.rounds == 1:
            return groups
        live = [g for g in groups if not self._done(g[0])]
        outputs = self._generate([g[0] for g in live], 2, num_samples=k)
        for i, group in enumerate(live):
            for traj, out in zip(group, outputs[i * k : (i + 1) * k], strict=True):
                self._add(traj, 2, out)
        for group in groups:
            if len(group[0].rounds) == 1 and not group[0].cut:
                for traj in group:
                    traj.stopped_early = True
        self._continue([t for g in groups for t in g], start_round=3)
        return groups

    @_one_policy
    def continue_partials(self, partials: Sequence[Trajectory], k: int) -> list[list[Trajectory]]:
        """Roll out ``k`` continuations of each partial trajectory, from its next round to the last.

        A partial holds rounds ``1..r`` (any ``r`` per partial, e.g. a trained round-``r``
        reply after the rounds that reached its state); it is not changed. The first new round
        of the ``k`` copies of one partial shares one prompt, so it is sent once with
        ``num_samples=k`` (one call per distinct next round); later rounds are one batched call
        each. A partial that is done (its last round, or cut) gets ``k`` unchanged copies.
        :meth:`continue_from` is the case ``r = 1``. ``summary`` and ``none`` carry-over only.

        Raises:
            ValueError: ``k < 1``, an empty partial, or ``carry_over='tail'``.
        """
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        if self.protocol.continues_turn:
            raise ValueError("continue_partials does not continue tail thoughts; use continue_from")
        if any(not p.rounds for p in partials):
            raise ValueError("a partial trajectory needs at least one round")
        groups = [[_copy(p) for _ in range(k)] for p in partials]
        given = [len(p.rounds) for p in partials]
        for index in range(2, self.protocol.rounds + 1):
            fresh = [
                g
                for g, r in zip(groups, given, strict=True)
                if r == index - 1 and not self._done(g[0])
            ]
            outputs = self._generate([g[0] for g in fresh], index, num_samples=k)
            for i, group in enumerate(fresh):
                for traj, out in zip(group, outputs[i * k : (i + 1) * k], strict=True):
                    self._add(traj, index, out)
            ongoing = [
                t
                for g, r in zip(groups, given, strict=True)
                if r < index - 1
                for t in g
                if len(t.rounds) == index - 1 and not self._done(t)
            ]
            for traj, out in zip(ongoing, self._generate(ongoing, index), strict=True):
                self._add(traj, index, out)
        for traj in (t for g in groups for t in g):
            traj.stopped_early = len(traj.rounds) < self.protocol.rounds and not traj.cut
        return groups

    def _given_firsts(
        self,
        questions: Sequence[str],
        texts: Sequence[str],
        token_ids: Sequence[Sequence[int]] | None,
        truncated: Sequence[bool] | None,
        prompt_tokens: Sequence[int] | None = None,
    ) -> list[Trajectory]:
        """Round 1 of each response as a one-round trajectory (see :meth:`continue_from`)."""
        tail = self.protocol.continues_turn
        if tail and (token_ids is None or len(token_ids) != len(texts)):
            raise ValueError("carry_over='tail' continues a thought: pass first_token_ids")
        for name, given in (("first_truncated", truncated), ("first_prompt_tokens", prompt_tokens)):
            if given is not None and len(given) != len(texts):
                raise ValueError(f"got {len(given)} {name} for {len(texts)} round-1 responses")
        firsts = []
        for i, (question, text) in enumerate(zip(questions, texts, strict=True)):
            ids = list(token_ids[i]) if token_ids is not None else []
            cut = bool(truncated[i]) if truncated is not None else tail
            prompt = int(prompt_tokens[i]) if prompt_tokens is not None else 0
            out = GenerationOutput(text, prompt, len(ids), cut, token_ids=ids)
            traj = self._trajectory(question)
            self._add(traj, 1, out)
            firsts.append(traj)
        return firsts

    def _done(self, traj: Trajectory) -> bool:
        if traj.cut or len(traj.rounds) >= self.protocol.rounds:
            return True
        last = traj.rounds[-1]
        return self.protocol.carry.finished(last.text, last.truncated, self.early_stop)

    def _params(self, index: int) -> SamplingParams:
        """Round ``index``'s sampling; its budget is the carry-over's
        (:meth:`motif.carryover.CarryOver.max_new_tokens`)."""
        params = self.first_round if index == 1 else self.later_rounds
        first, later = self.first_round.max_new_tokens, self.later_rounds.max_new_tokens
        budget = self.protocol.carry.max_new_tokens(index, first, later)
        return params if budget == params.max_new_tokens else replace(params, max_new_tokens=budget)

    def _generate(
        self, trajectories: list[Trajectory], index: int, num_samples: int = 1
    ) -> list[GenerationOutput]:
        """One batched generate call for round ``index`` of every given trajectory."""
        if not trajectories:
            return []
        summaries = [t.rounds[-1].summary if t.rounds else None for t in trajectories]
        chats = self.protocol.batch_messages([t.question for t in trajectories], index, summaries)
        params = self._params(index)
        prefixes = None
        if index > 1 and self.protocol.continues_turn:
            prefixes = [self.protocol.carry.prefix(t.thought_ids) for t in trajectories]
        try:
            return self.backend.generate(chats, params, num_samples, prefixes=prefixes)
        except ContextOverflow as exc:
            raise exc.named(f"in round {index}", self._budget_name(index)) from exc

    def _budget_name(self, index: int) -> str:
        """The option that sets round ``index``'s token budget, for a context-overflow error."""
        return self.protocol.carry.budget_option(index)

    def _add(self, traj: Trajectory, index: int, out: GenerationOutput) -> None:
        """Append round ``index``'s output to ``traj``, or mark it cut there."""
        if getattr(out, "context_overflow", False):
            traj.cut_round = index
            logger.debug("round %d did not fit the context: trajectory cut", index)
            return
        tail = self.protocol.continues_turn
        if tail and out.completion_tokens and not out.token_ids:
            raise ValueError(
                f"{type(self.backend).__name__} returned no token ids; carry_over="
                f"{self.protocol.carry_over!r} continues a turn from them"
            )
        summary = traj.rounds[-1].summary if traj.rounds else None
        prompt = self.protocol.messages(traj.question, index, summary)[-1]["content"]
        if not tail:
            traj.rounds.append(_record(self.protocol, index, prompt, out, out.text, out.text))
            return
        carried = len(self.protocol.carry.prefix(traj.thought_ids) or []) if index > 1 else 0
        traj.thought_ids.extend(out.token_ids)
        text = self._chunk_texts(traj) if traj.rounds else out.text
        record = _record(self.protocol, index, prompt, out, text, traj.final_text + text)
        record.carried_tokens = carried
        traj.rounds.append(record)

    def _chunk_texts(self, traj: Trajectory) -> str:
        """The new chunk's text, with the thought (``traj.thought_ids``, the new chunk's ids
        included) decoded whole and cut at the chunk ends; earlier chunks whose text changed
        (a character split over the last chunk end is now complete) get new records."""
        ends, total = [], 0
        for record in traj.rounds:
            total += record.completion_tokens
            ends.append(total)
        ends.append(len(traj.thought_ids))
        texts = piece_texts(self.backend.detokenize, traj.thought_ids, ends)
        for i, text in enumerate(texts[:-1]):
            if traj.rounds[i].text != text:  # records may be shared with copies: replaced
                traj.rounds[i] = replace(traj.rounds[i], text=text)
        return texts[-1]

    def _continue(self, trajectories: list[Trajectory], start_round: int) -> None:
        for index in range(start_round, self.protocol.rounds + 1):
            live = []
            for traj in trajectories:
                if len(traj.rounds) == index - 1 and not self._done(traj):
                    live.append(traj)
                elif len(traj.rounds) == index - 1 and not traj.cut:
                    traj.stopped_early = True
            if not live:  # every trajectory ended (EOS, early stop, a cut): no later round runs
                break
            for traj, out in zip(live, self._generate(live, index), strict=True):
                self._add(traj, index, out)
            self._round_done(index)
        logger.debug("rolled out %d trajectories", len(trajectories))


def _copy(traj: Trajectory) -> Trajectory:
    """An independent copy of a one-round trajectory (the k continuations of one response)."""
    return Trajectory(
        traj.question,
        list(traj.rounds),
        traj.stopped_early,
        traj.cut_round,
        traj.carry_over,
        traj.round_end,
        list(traj.thought_ids),
    )


def _check_questions(questions: Sequence[str]) -> None:
    for i, q in enumerate(questions):
        if not isinstance(q, str) or not q.strip():
            raise ValueError(f"question {i} is empty; every question needs text")
