"""The held-out check of a cold start: greedy rollouts of unseen items, format and work.

``motif sft --eval-size N`` (and ``--eval-base``) roll out ``N`` held-out items
(:func:`motif.training.demos.held_out_problems`) over the configured protocol and report the
format, the accuracy, and the work checked by :mod:`motif.tasks`: the accuracy of a single
step and the rate of states handed over right.
"""

from __future__ import annotations

import time
from typing import Any

from motif import models
from motif.answer_format import format_ok, paper_strict_ok
from motif.backends.base import SamplingParams
from motif.config import OVERFLOW_MODES
from motif.engine import RolloutEngine
from motif.grading import grade_response
from motif.handover import handover_rates, watch_trajectory
from motif.tasks import check_trajectory
from motif.training.demos import held_out_problems
from motif.training.sft_config import SftConfig


def evaluate_adapter(config: SftConfig, adapter: str | None) -> dict[str, Any]:
    """Greedy multi-round rollouts of held-out items with ``adapter`` (None: the base model).

    The items are disjoint from the demonstrations (:func:`demos.held_out_problems`).
    """
    from motif.backends.hf import TransformersBackend  # imports torch: only a real check needs it

    sft, args = config.sft, config.model
    problems = held_out_problems(
        sft.task, sft.eval_size, sft.data_seed, sft.task_config, train_size=sft.num_examples
    )
    model, tokenizer = models.load_model(
        args.model, adapter, args.dtype, args.device, args.trust_remote_code
    )
    backend = TransformersBackend(
        model,
        tokenizer,
        max_batch_size=args.max_batch_size,
        decode=args.decode,
        decode_dtype=args.decode_dtype,
        overflow=OVERFLOW_MODES[args.context_overflow],
    )
    return format_report(backend, problems, config.protocol.protocol(), sft.eval_max_new_tokens)


def format_report(
    backend: Any, problems: list, protocol: Any, max_new_tokens: int
) -> dict[str, Any]:
    """Format, accuracy and the checked work of greedy rollouts of ``problems`` (task items).

    ``format_rate`` counts responses in the tag format, the last one also boxing its answer;
    ``summary`` has one response per round, ``tail`` and ``none`` one per item (a tail
    thought's chunks joined). ``trajectory_format_rate`` counts items whose every response is
    in format. The work (:func:`motif.tasks.check_trajectory`): ``step_accuracy`` (right steps
    / written steps, every round or chunk), ``state_right_rate`` (states handed over that
    are right; ``summary`` only) and its ``state_right_by_round``.
    """
    engine = RolloutEngine(backend, protocol, SamplingParams(max_new_tokens=max_new_tokens))
    start = time.perf_counter()
    trajectories = engine.run([p.question for p in problems])
    seconds = time.perf_counter() - start
    return score_trajectories(trajectories, problems, protocol, seconds)


def _responses(trajectory: Any, protocol: Any) -> list[tuple[str, bool]]:
    """(text, is final) of each response the format is judged on."""
    if not protocol.carry.hands_state:  # one pass, or one thought in chunks: judged whole
        return [(trajectory.final_text, True)] if trajectory.rounds else []
    return [(r.text, r.round == protocol.rounds) for r in trajectory.rounds]


def score_trajectories(
    trajectories: list, problems: list, protocol: Any, seconds: float
) -> dict[str, Any]:
    """The held-out report of greedy ``trajectories`` (one per problem, same order).

    Format (tag format of every round; the paper's strict regex), accuracy (math-verify via
    :func:`motif.grading.grade_response`) and, for task items, the work checked by
    :mod:`motif.tasks` (single-step accuracy, states handed over right per round), and when
    the strategy hands a state on, ``handover``: the hand-over watch (:func:`handover_report`).
    ``seconds``: the generation wall-clock, reported as is.
    """
    responses = [_responses(t, protocol) for t in trajectories]
    ok = [[format_ok(text, final=final) for text, final in r] for r in responses]
    texts = [text for r in responses for text, _ in r]
    correct = [  # a trajectory cut by a context overflow has no final round: not correct
        not t.cut and grade_response(t.final_text, p.answer) is True
        for t, p in zip(trajectories, problems, strict=True)
    ]
    whole = [all(o) and not t.cut for o, t in zip(ok, trajectories, strict=True)]
    width = protocol.rounds if protocol.carry.hands_state else 1
    per_round = [sum(o[i] for o in ok if len(o) > i) / len(ok) for i in range(width)]
    return {
        "items": len(problems),
        "responses": len(texts),
        "format_rate": sum(map(sum, ok)) / max(1, len(texts)),
        "trajectory_format_rate": sum(whole) / len(ok),
        "format_rate_by_round": per_round,
        "paper_strict_rate": sum(map(paper_strict_ok, texts)) / max(1, len(texts)),
        "accuracy": sum(correct) / len(correct),
        **work_report(trajectories, problems, width - 1 if width > 1 else 0),
        "truncated": sum(r.truncated for t in trajectories for r in t.rounds),
        "context_overflow_cut": sum(t.cut for t in trajectories),
        "generation_seconds": round(seconds, 1),
        "sample": trajectories[0].to_dict() if trajectories else None,
        **handover_report(trajectories, protocol),
    }


def handover_report(trajectories: list, protocol: Any) -> dict[str, Any]:
    """``{"handover": ...}``, the hand-over watch of the trajectories
    (:func:`motif.handover.handover_rates` per round that hands over), when the protocol's
    strategy hands a state on; ``{}`` when it hands none (``tail``, ``none``)."""
    if not protocol.carry.hands_state:
        return {}
    watched = [watch_trajectory(t, protocol.carry) or [] for t in trajectories]
    return {"handover": handover_rates(watched, protocol.rounds)}


def work_report(trajectories: list, items: list, handed_rounds: int) -> dict[str, Any]:
    """Steps right / written over every round or chunk, and the states handed over right.

    ``state_right_by_round`` has one rate per round that hands a state over (the first
    ``handed_rounds``; 0 for ``tail`` and ``none``), None where no trajectory handed one.
    """
    checks = [check_trajectory(i, t) for t, i in zip(trajectories, items, strict=True)]
    right = sum(c.steps_right for cs in checks for c in cs)
    written = sum(c.steps for cs in checks for c in cs)
    flat = [c.state_right for cs in checks for c in cs if c.state_right is not None]
    by_round = []
    for r in range(handed_rounds):
        handed = [cs[r].state_right for cs in checks if len(cs) > r]
        judged = [s for s in handed if s is not None]
        by_round.append(sum(judged) / len(judged) if judged else None)
    return {
        "step_accuracy": right / written if written else None,
        "steps_right": right,
        "steps_written": written,
        "state_right_rate": sum(flat) / len(flat) if flat else None,
        "state_right_by_round": by_round,
    }
