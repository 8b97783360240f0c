"""Running an evaluation: load the problems, resume the output directory, roll out the
pending problems batch by batch through the rollout engine, grade, summarise.

The library half of ``motif eval``; :func:`run_eval` does everything the command does.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from motif.answer_format import final_answer_boxes, final_answer_text
from motif.backends.vllm_options import VllmArgs, plan_backend
from motif.config import GenerationArgs, ModelArgs, ProtocolArgs
from motif.data import Problem
from motif.engine import Trajectory
from motif.errors import ConfigError
from motif.eval.args import EvalArgs
from motif.eval.identity import package_versions, run_identity, run_label
from motif.eval.metrics import compute_metrics
from motif.eval.store import ResultStore
from motif.grading import is_correct
from motif.models import check_adapter_dir, check_model
from motif.outdir import check_output_dir
from motif.progress import Progress
from motif.runs.layout import (
    CELLS_DIR,
    EVAL_CONFIG_FILE,
    GRID_FILE,
    ROUND_BUDGET_KEYS,
    SAMPLES_FILE,
)
from motif.runtime import build_engine, check_protocol_fits, load_backend, protocol_generation
from motif.tasks import check_trajectory, item_for, skips_steps

__all__ = ["EvalArgs", "evaluate", "run_eval", "sample_record"]

logger = logging.getLogger(__name__)

Grader = Callable[[str | None, str], "bool | None"]


def eval_generation_defaults(gen: GenerationArgs) -> GenerationArgs:
    """Later rounds default to twice round 1's budget (the paper: 1024, then 2048)."""
    if gen.later_max_new_tokens is None:
        gen = replace(gen, later_max_new_tokens=2 * gen.max_new_tokens)
    return gen


def check_sampling(args: EvalArgs, gen: GenerationArgs) -> None:
    """K > 1 greedy samples would all be the same: refuse."""
    if args.samples > 1 and gen.temperature == 0:
        raise ConfigError(
            f"--samples {args.samples} needs --temperature > 0 (greedy samples are identical)"
        )


# --------------------------------------------------------------------------- rollouts


def sample_record(problem: Problem, sample: int, trajectory: Trajectory, grader: Grader) -> dict:
    """One ``samples.jsonl`` row: every round's text, the answer read after it, grades, budget.

    Built on :meth:`motif.engine.Trajectory.to_dict` (with its budget accounting), to which it
    adds the problem, the grades and the task's checks; keys in the order rows always had.

    The answer after round ``r`` is read from ``trajectory.answer_text(r)`` (the round's
    response; for ``tail``, the thought written so far). Budget accounting per round:
    ``prompt_tokens``, ``completion_tokens`` (new), ``context_tokens`` (their sum),
    ``carried_tokens`` (tail), ``truncated``; per row: ``generated_tokens`` (all rounds),
    ``largest_context`` (the largest round) and ``cut_round``.

    When the problem's task has checkers (:func:`motif.tasks.item_for`: reasoning-gym
    ``chain_sum``, ``basic_arithmetic``, ``letter_counting``), each round also gets
    ``steps_right`` / ``steps`` (steps of work written in the round's own text, right /
    written) and ``state_right`` (the state it handed over is right; None when it handed
    none: the last round, ``tail`` chunks, ``none``); see :func:`motif.tasks.check_trajectory`;
    and the row gets ``skipped_steps`` (it boxed an answer with fewer steps written than the
    item needs: :func:`motif.tasks.skips_steps`, the diagnostic of ``--heldout-every``).
    """
    data = trajectory.to_dict(budget=True)
    rounds = []
    for rec in data["rounds"]:
        answer, correct = _grade_text(trajectory.answer_text(rec["round"]), problem.gold, grader)
        head = {"round": rec["round"], "text": rec["text"], "answer": answer, "correct": correct}
        rounds.append({**head, **{k: rec[k] for k in ROUND_BUDGET_KEYS}})
    skipped = _add_checks(rounds, problem, trajectory)
    cut = data["cut_round"]
    final = rounds[-1] if rounds and cut is None else {"answer": None, "correct": None}
    checked = {} if skipped is None else {"skipped_steps": skipped}
    return {
        "id": problem.id,
        "sample": sample,
        "gold": problem.gold,
        "answer": final["answer"],
        "correct": final["correct"],  # None (ungradable) when a round did not fit the context
        "stopped_early": data["stopped_early"],
        "cut_round": cut,
        "carry_over": data["carry_over"],
        **({"round_end": data["round_end"]} if "round_end" in data else {}),
        "generated_tokens": data["generated_tokens"],
        "largest_context": data["largest_context"],
        "question": problem.question,
        **checked,
        "rounds": rounds,
    }


def _add_checks(rounds: list[dict], problem: Problem, trajectory: Any) -> bool | None:
    """Add the task's step and state checks to each round row; return whether the trajectory
    skips steps (:func:`motif.tasks.skips_steps`). Nothing, and None, for other tasks."""
    item = item_for(problem.question, problem.gold, problem.meta)
    if item is None:
        return None
    for row, check in zip(rounds, check_trajectory(item, trajectory), strict=True):
        row["steps_right"], row["steps"] = check.steps_right, check.steps
        row["state_right"] = check.state_right
    return skips_steps(item, trajectory)


def _grade_text(text: str, gold: str, grader: Grader) -> tuple[str | None, bool | None]:
    """(the final answer read from ``text``, its grade); several boxes are graded together."""
    boxes = final_answer_boxes(text, fallback="response")
    answer = boxes[-1] if boxes else None
    # Several boxes: the grader gets the text holding them (multi-value golds, issue 13).
    graded = final_answer_text(text, "response") if len(boxes) > 1 else answer
    return answer, grader(graded, gold)


def evaluate(
    engine: Any,
    problems: Sequence[Problem],
    store: ResultStore,
    *,
    batch_size: int = 16,
    grader: Grader | None = None,
) -> dict:
    """Roll out every unfinished problem, ``batch_size`` problems per ``engine.run`` call.

    Each batch's rows are appended (fsynced) before the next batch starts. With a sampling
    seed, batch ``b`` is seeded with ``seed + index of its first problem``, so an interrupted
    and resumed run samples exactly what an uninterrupted one would. Returns timing stats.
    """
    grader = grader or _default_grader()
    positions = {p.id: i for i, p in enumerate(problems)}
    pending = [p for p in problems if not store.finished(p.id)]
    base = (engine.first_round, engine.later_rounds)
    started, done = time.perf_counter(), 0
    with Progress("motif eval", len(pending), "problem") as progress:
        for start in range(0, len(pending), batch_size):
            batch = pending[start : start + batch_size]
            _seed_batch(engine, base, positions[batch[0].id])
            engine.on_round = _round_status(progress, start, len(batch))
            trajectories = engine.run([p.question for p in batch], num_samples=store.samples)
            rows = [
                sample_record(problem, s, trajectories[i * store.samples + s], grader)
                for i, problem in enumerate(batch)
                for s in range(store.samples)
            ]
            store.append(rows)
            _log_cuts(rows)
            done += len(batch)
            progress.advance(len(batch), status=_rate(done, time.perf_counter() - started))
    engine.first_round, engine.later_rounds, engine.on_round = *base, None
    seconds = time.perf_counter() - started
    return {"generated_problems": done, "generation_seconds": round(seconds, 3)}


def _round_status(progress: Any, start: int, size: int) -> Any:
    """The engine's round callback: ``problems 17-32: round 2/3 done`` in the progress status."""

    def on_round(index: int, rounds: int) -> None:
        progress.note(f"problems {start + 1}-{start + size}: round {index}/{rounds} done")

    return on_round


def _log_cuts(rows: list[dict]) -> None:
    for row in rows:
        if row.get("cut_round") is not None:
            logger.warning(
                "problem %s (sample %d): round %d's prompt plus its token budget exceeds the "
                "model's context; trajectory recorded as cut (ungraded), the run goes on",
                row["id"],
                row["sample"],
                row["cut_round"],
            )


def _seed_batch(engine: Any, base: tuple, position: int) -> None:
    first, later = base
    if first.seed is not None:
        engine.first_round = replace(first, seed=first.seed + position)
        engine.later_rounds = replace(later, seed=later.seed + position)


def _rate(done: int, seconds: float) -> str:
    return f"{done / seconds * 60:.1f} problems/min" if seconds > 0 else ""


def _default_grader() -> Grader:
    return is_correct


# --------------------------------------------------------------------------- whole runs


def run_eval(
    args: EvalArgs,
    model: ModelArgs,
    gen: GenerationArgs,
    proto: ProtocolArgs,
    *,
    backend_loader: Callable[[ModelArgs], Any] | None = None,
    grader: Grader | None = None,
    vllm: Any = None,
) -> dict:
    """Evaluate (resuming ``args.resolved_output_dir``), write and return ``summary.json``.

    ``backend_loader`` builds the generation backend (default :func:`motif.runtime.load_backend`);
    it is only called when some problem is unfinished, so a finished run loads no model.
    """
    if not args.benchmark:
        raise ConfigError("pass --benchmark NAME|PATH (e.g. math500, or a .jsonl file)")
    gen = eval_generation_defaults(gen)
    check_sampling(args, gen)
    vllm = vllm if vllm is not None else VllmArgs()
    # model-free checks
    plan_backend(model, vllm, protocol_generation(gen, proto), engine=False, protocol=proto)
    if backend_loader is None:  # a custom loader owns its model
        _check_model_paths(model)
        check_protocol_fits(model, gen, proto)  # config and tokenizer only, before any write
    full = args.load_problems()
    problems = full[: args.limit] if args.limit else full
    identity = run_identity(args, model, gen, proto, full)
    out_dir = args.resolved_output_dir(proto.rounds, proto.carry_class())
    check_eval_dir(out_dir)
    store = ResultStore(out_dir, identity, args.samples)
    stats = {"generated_problems": 0, "generation_seconds": 0.0}
    if any(not store.finished(p.id) for p in problems):
        if backend_loader is None:  # the protocol's checks ran above: not again
            backend = load_backend(model, vllm, protocol_generation(gen, proto))
        else:
            backend = backend_loader(model)
        if identity["model_weights"] is None:  # a hub model downloaded by this load
            identity = run_identity(args, model, gen, proto, full)
            store.recheck(identity)
        engine = build_engine(backend, gen, proto)
        stats = evaluate(engine, problems, store, batch_size=args.batch_size, grader=grader)
        plan = getattr(backend, "machine_plan", None)
        stats["machine"] = plan() if callable(plan) else None
    else:
        logger.info("all %d problems already evaluated in %s", len(problems), out_dir)
    summary = build_summary(args, identity, store, problems, stats, proto.rounds, out_dir)
    store.write_summary(summary)
    return summary


def _check_model_paths(model: ModelArgs) -> None:
    """A missing model or adapter is named as such, before the run identity is compared."""
    check_model(model.model)
    if model.adapter:
        check_adapter_dir(model.adapter)


def check_eval_dir(out_dir: Path) -> None:
    """The output directory must be new, empty, or an earlier eval run (checked, not written)."""
    legacy = (EVAL_CONFIG_FILE, SAMPLES_FILE)
    check_output_dir(out_dir, kind="eval", resume=True, legacy_files=legacy)
    if (out_dir / GRID_FILE).exists() or (out_dir / CELLS_DIR).is_dir():
        raise ConfigError(
            f"--output-dir {out_dir} holds an equal-budget grid (motif eval --grid), not a single "
            f"eval run; pass another --output-dir, or re-run the grid command to resume it"
        )


def build_summary(
    args: EvalArgs,
    identity: dict,
    store: ResultStore,
    problems: Sequence[Problem],
    stats: dict,
    rounds: int,
    out_dir: Path,
) -> dict:
    """The ``summary.json`` content (metrics over the problems selected by ``--limit``)."""
    groups = store.groups(p.id for p in problems)
    seconds = stats["generation_seconds"]
    rate = stats["generated_problems"] / seconds * 60 if seconds else None
    return {
        "benchmark": identity["data"]["benchmark"],
        "source": args.benchmark,
        "label": run_label(identity),
        "output_dir": str(out_dir),
        "metrics": compute_metrics(groups, args.samples, rounds, identity["protocol"]),
        "config": identity,
        "run": {
            "limit": args.limit,
            "batch_size": args.batch_size,
            **stats,
            "problems_per_minute": round(rate, 3) if rate else None,
            "updated": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        },
        "versions": package_versions(),
    }
