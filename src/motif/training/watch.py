"""The held-out check during training (``motif train --heldout-every N``): watch for shortcuts.

Every ``N`` optimiser steps, and once after the last, :class:`HeldOutWatch` rolls out
``--heldout-size`` held-out items of the training task greedily with the *current* policy, over
the run's own protocol (rounds or ``tail`` chunks, carry-over, per-round budgets), and adds to
that step's metrics row (``metrics.jsonl`` and TensorBoard):

* ``heldout/accuracy``: items whose final answer is right;
* ``heldout/format_rate``: responses in the tag format (the last one boxing its answer);
* ``heldout/step_accuracy``: right steps / written steps over every round (left out when no
  step was written);
* ``heldout/state_right``: states handed over that are right (``summary`` only; left out when
  none was handed over);
* ``heldout/skipped_steps``: items whose trajectory skips steps
  (:func:`motif.tasks.skips_steps`);
* ``heldout/seconds``: wall time of the check's rollouts (gathering included).

Format, accuracy and the checked work are scored by the cold start's held-out check
(:mod:`motif.training.heldout`), the work by :mod:`motif.tasks`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from transformers import TrainerCallback

from motif.backends.base import SamplingParams
from motif.data import REASONING_GYM_PREFIX
from motif.handover import FLAGS
from motif.runs.layout import HELDOUT_PREFIX
from motif.tasks import skips_steps
from motif.training.demos import HELD_OUT_SEED_OFFSET, load_items
from motif.training.heldout import score_trajectories
from motif.training.policy import TrainingPolicy

if TYPE_CHECKING:
    from motif.tasks import TaskItem
    from motif.training.config import TrainConfig

logger = logging.getLogger(__name__)

PREFIX = HELDOUT_PREFIX
METRICS = (
    "accuracy",
    "format_rate",
    "step_accuracy",
    "state_right",
    "skipped_steps",
    "seconds",
    *(f"handover_{flag}" for flag in FLAGS),
)
"""The names logged under :data:`PREFIX`, in order."""


def heldout_items(config: TrainConfig, training_questions: Iterable[str]) -> list[TaskItem]:
    """``--heldout-size`` items of the run's reasoning-gym task, none of them a training question.

    Drawn as the cold start's held-out items are (:func:`motif.training.demos.load_items` with
    seed ``--dataset-seed + HELD_OUT_SEED_OFFSET`` and the run's ``--task-config``, its ``size``
    left out); the questions excluded are the run's own training rows.

    Raises:
        ConfigError: a task config the task rejects.
        MotifError: too few usable items (e.g. ``basic_arithmetic`` with ``*`` or ``/``).
    """

    data = config.data
    task = data.dataset[len(REASONING_GYM_PREFIX) :]
    task_config = {k: v for k, v in (data.task_config or {}).items() if k != "size"}
    return load_items(
        task,
        config.watch.heldout_size,
        data.dataset_seed + HELD_OUT_SEED_OFFSET,
        task_config,
        exclude=frozenset(training_questions),
    )


def watch_metrics(
    trajectories: Sequence[Any], items: Sequence[TaskItem], protocol: Any, seconds: float
) -> dict[str, float]:
    """The logged numbers of one check (``heldout/<name>``, :data:`METRICS`); rates in [0, 1].

    A rate with nothing to count (no step written, no state handed over) is left out rather
    than logged as None (TensorBoard drops None with a warning).
    """

    report = score_trajectories(list(trajectories), list(items), protocol, seconds)
    skipped = [skips_steps(i, t) for i, t in zip(items, trajectories, strict=True)]
    values = {
        "accuracy": report["accuracy"],
        "format_rate": report["format_rate"],
        "step_accuracy": report["step_accuracy"],
        "state_right": report["state_right_rate"],
        "skipped_steps": sum(skipped) / len(skipped),
        "seconds": seconds,
    }
    if "handover" in report:  # a strategy that hands state on: the watch's overall rates
        values.update({f"handover_{f}": report["handover"]["overall"][f] for f in FLAGS})
    return {PREFIX + k: float(v) for k, v in values.items() if v is not None}


class HeldOutWatch(TrainerCallback):
    """Run the held-out check at the end of every ``--heldout-every``-th step and the last one.

    The numbers go into ``sink``, the metrics callback's per-step dict
    (:func:`motif.training.rundir.metrics_callback`), which it merges into the step's log row
    before the JSONL and TensorBoard see it; the step is made to log (``control.should_log``),
    whatever ``--logging-steps`` says. The callback runs after the metrics callback's
    ``on_step_end``, so the check's time is not counted in ``step_seconds``.

    Generation: greedy, the policy in eval mode under ``torch.no_grad`` (LoRA active) and back
    in train mode after, through the run's :class:`motif.training.policy.TrainingPolicy`, as
    round 1 and the reward's continuations (ZeRO-3 parameters gathered; with vLLM the
    trainer's engine, whose weights are first synced to this step as TRL would at the next).
    Round 1 has ``--max-completion-length`` tokens, later rounds
    ``--continuation-max-new-tokens`` (``tail``: the window's chunk budgets).

    Several processes: each rolls out its share of the items (item ``i`` on process
    ``i % processes``, so ``--heldout-size`` must be at least the number of processes), all at
    the same step; the trajectories are gathered to every process (one ``gather_object``, a
    collective), scored there alike, and process 0 writes them (as the metrics callback does).
    """

    def __init__(
        self, policy: TrainingPolicy, config: TrainConfig, items: Sequence[TaskItem], sink: dict
    ):
        self.policy = policy
        self.items = list(items)
        self.sink = sink
        self.every = config.watch.heldout_every
        self.protocol = config.motif.protocol()
        self.first = SamplingParams(max_new_tokens=config.optim.max_completion_length)
        self.later = SamplingParams(max_new_tokens=config.motif.continuation_max_new_tokens)

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step % self.every and state.global_step < state.max_steps:
            return control
        self.sink.update(self.check())
        control.should_log = True
        return control

    def check(self) -> dict[str, float]:
        """One held-out check with the current policy: the numbers to log."""
        start = time.perf_counter()
        trajectories = self.rollout()
        seconds = time.perf_counter() - start
        return watch_metrics(trajectories, self.items, self.protocol, seconds)

    def rollout(self) -> list[Any]:
        """Every item's greedy trajectory, in item order (this process's share generated here)."""
        from accelerate.utils import gather_object

        from motif.backends.hf import eval_mode  # torch: loaded only when a model runs

        trainer = self.policy.trainer
        accelerator = trainer.accelerator
        mine = list(range(accelerator.process_index, len(self.items), accelerator.num_processes))
        self.policy.sync_weights()
        with (
            eval_mode(trainer.model),
            self.policy.engine(self.protocol, self.first, self.later) as engine,
        ):
            done = engine.run([self.items[i].question for i in mine])
        pairs = gather_object(list(zip(mine, done, strict=True)))
        return [trajectory for _, trajectory in sorted(pairs, key=lambda pair: pair[0])]
