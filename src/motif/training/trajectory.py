"""``--credit trajectory``: every round of a sampled trajectory trained with its final outcome.

Delethink ("The Markovian Thinker", arXiv 2510.06557) trains every chunk of a tail-carried
thought with the whole trace's outcome reward; InftyThink+ (arXiv 2602.06960) and MemAgent
(arXiv 2507.02259) apply one trajectory reward to every round. Here:

1. Round 1 of ``m`` trajectories per question is sampled as TRL's rows (motif's
   ``rollout_func`` through the :class:`motif.training.policy.TrainingPolicy`); the reward
   (:class:`TrajectoryBatch.score`) rolls each one out *once* to its end with the same live
   policy and rewards it by its final accuracy (plus TRL's format rewards).
2. TRL computes each row's advantage within its group of ``m`` — one row per trajectory, so
   the advantage is the trajectory's, normalised *before* expansion (ports that normalised
   after it lost rows or hung: Relax PR 270; SkyRL PR 1507 gave earlier rounds 0).
3. :meth:`TrajectoryBatch.expand` then turns each trajectory into one row per round (``tail``:
   per chunk, its prompt holding the carried head and tail tokens), each carrying the
   trajectory's advantage, and weights every token so that the loss is normalised per
   trajectory: ``trace`` (Delethink's ``seq-mean-token-norm-trace-length``: a trajectory's
   tokens weigh ``1 / its total tokens``, so its rows weigh 1 in all and a 5-round trajectory
   no more than a 1-round one) or ``token`` (InftyThink+: a plain average over the tokens of
   all rounds). The weights ride in TRL's per-token ``advantages`` (shape ``(B, T)``, which
   ``GRPOTrainer._compute_loss`` accepts) and its ``num_items_in_batch`` (the sum of weights),
   under a loss that divides by it (``dapo``, ``cispo``, ``vespo``).

How it sits on TRL 1.16 without forking ``GRPOTrainer`` (:func:`trajectory_trainer_class`):
one override of the private ``_generate_and_score_completions`` (behind
:func:`check_trajectory_trl`) expands the batch TRL made and scored. No row is dropped: the
expanded batch is padded to a multiple of ``steps_per_generation`` with masked copies.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from motif.engine import Trajectory
from motif.errors import ConfigError
from motif.protocol import Protocol
from motif.training.trl_hooks import require_hooks

LOSS_NORMS = ("trace", "token")
"""``--trajectory-loss-norm``: per trajectory (Delethink) or per token (InftyThink+)."""
WEIGHTED_LOSSES = ("dapo", "cispo", "vespo")
"""TRL loss types that divide the summed per-token loss by ``num_items_in_batch``."""
VLLM_KEYS = ("importance_sampling_ratio", "sampling_per_token_logps")
"""TRL's per-token keys of a ``--use-vllm`` batch: vLLM's sampling log-probs of round 1 and the
importance-sampling ratio TRL computed from them (``vllm_importance_sampling_correction``)."""
EXPANDED_KEYS = frozenset(
    {"prompt_ids", "prompt_mask", "completion_ids", "completion_mask", "advantages"}
    | {"num_items_in_batch", "old_per_token_logps", *VLLM_KEYS}
)
"""The keys of TRL's batch the expansion rebuilds; any other is refused (not expandable)."""


@dataclass
class Row:
    """One training row of an expanded trajectory.

    ``prompt_ids`` and ``completion_ids`` are token ids; ``advantage`` is the trajectory's;
    ``weight`` multiplies every token's loss (``trace``: 1 / the trajectory's total completion
    tokens; ``token``: 1); ``masked``: the row's tokens are left out of the loss (TRL masked
    round 1, e.g. ``mask_truncated_completions``). ``trajectory`` and ``round`` are 0- and
    1-based indices.
    """

    prompt_ids: list[int]
    completion_ids: list[int]
    advantage: float
    weight: float
    trajectory: int
    round: int
    masked: bool = False

    @property
    def units(self) -> float:
        """The row's share of the loss's normaliser: ``weight`` times its counted tokens."""
        return 0.0 if self.masked else self.weight * len(self.completion_ids)


def expand_rows(
    rounds: Sequence[Sequence[tuple[list[int], list[int]]]],
    advantages: Sequence[float],
    norm: str = "trace",
    masked: Sequence[bool] | None = None,
) -> list[Row]:
    """One :class:`Row` per round of every trajectory, each with its trajectory's advantage.

    ``rounds[i]``: trajectory ``i``'s ``(prompt_ids, completion_ids)`` per round, round 1 first;
    ``advantages[i]``: its advantage (computed within its group before this expansion);
    ``masked[i]``: its round-1 row is out of the loss (TRL zeroed its mask).
    Rows come trajectory by trajectory, ``len`` = the sum of rounds.

    Raises:
        ValueError: ``norm`` not in :data:`LOSS_NORMS`, a trajectory with no round, or
            ``rounds`` and ``advantages`` of different lengths.
    """
    if norm not in LOSS_NORMS:
        raise ValueError(f"norm must be one of {LOSS_NORMS}; got {norm!r}")
    if len(rounds) != len(advantages):
        raise ValueError(f"{len(rounds)} trajectories but {len(advantages)} advantages")
    cut = list(masked) if masked is not None else [False] * len(rounds)
    rows = []
    for i, (parts, advantage) in enumerate(zip(rounds, advantages, strict=True)):
        if not parts:
            raise ValueError(f"trajectory {i} has no round")
        tokens = sum(len(c) for _, c in parts)
        weight = 1.0 / max(tokens, 1) if norm == "trace" else 1.0
        for r, (prompt, completion) in enumerate(parts, start=1):
            out = cut[i] and r == 1
            rows.append(Row(list(prompt), list(completion), advantage, weight, i, r, out))
    return rows


class IdRecorder:
    """A generation backend that remembers the token ids of what it generated.

    Wraps ``backend`` (every other attribute is the wrapped one's); :meth:`ids` gives the
    token ids of a reply by its prompt's last user turn and its text (a summary round's
    :class:`motif.engine.RoundRecord` ``prompt`` and ``text``), so each later round trains on
    the ids the policy sampled, never on re-tokenised text.
    """

    def __init__(self, backend: Any) -> None:
        self.inner = backend
        self._ids: dict[tuple[str, str], list[list[int]]] = defaultdict(list)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def generate(self, chats: Sequence[Any], params: Any, num_samples: int = 1, prefixes=None):
        """:meth:`motif.backends.base.GenerationBackend.generate`, recording each reply."""
        outputs = self.inner.generate(chats, params, num_samples, prefixes=prefixes)
        for i, out in enumerate(outputs):
            content = chats[i // num_samples][-1]["content"]
            self._ids[(content, out.text)].append(list(out.token_ids))
        return outputs

    def ids(self, prompt: str, text: str) -> list[int]:
        """The ids of a reply to the turn ``prompt`` that reads ``text``.

        Raises:
            KeyError: no such reply was generated through this recorder.
        """
        held = self._ids.get((prompt, text))
        if not held:
            raise KeyError(f"no recorded reply {text[:40]!r} to this prompt")
        return held.pop(0)  # each reply's own ids, in the order they were generated


def later_rounds(traj: Trajectory, protocol: Protocol, recorder: IdRecorder) -> list[tuple]:
    """``(prompt_ids, completion_ids)`` of rounds ``2..`` of ``traj``, as the policy saw them.

    ``summary``: round ``r``'s chat rendered by the backend, and the ids it sampled.
    ``tail``: chunk ``r``'s prompt is round 1's chat continued with the carried thought ids
    (:meth:`motif.carryover.CarryOver.prefix`), its completion that chunk's slice of
    ``traj.thought_ids``.
    """
    out = []
    if protocol.continues_turn:
        first = protocol.messages(traj.question, 1)
        start = traj.rounds[0].completion_tokens
        for record in traj.rounds[1:]:
            prefix = protocol.carry.prefix(traj.thought_ids[:start]) or []
            prompt = recorder.continue_prompts([first], recorder.render([first]), [prefix])[0]
            end = start + record.completion_tokens
            out.append((list(prompt), list(traj.thought_ids[start:end])))
            start = end
        return out
    for before, record in zip(traj.rounds, traj.rounds[1:], strict=False):
        chat = protocol.messages(traj.question, record.round, before.summary)
        prompt = recorder.render([chat])[0]
        out.append((list(prompt), recorder.ids(record.prompt, record.text)))
    return out


class TrajectoryBatch:
    """The state of a ``--credit trajectory`` run: the latest batch's sampled later rounds.

    Args:
        protocol: the run's protocol (``summary`` or ``tail``, two or more rounds).
        num_generations: ``m``, trajectories per question (one GRPO group).
        norm: ``trace`` or ``token`` (:data:`LOSS_NORMS`).

    The reward (:meth:`score`) rolls out the batch and keeps each row's later rounds;
    the trainer (:meth:`expand`) takes them once TRL has computed the advantages.
    """

    def __init__(self, protocol: Protocol, num_generations: int, norm: str = "trace") -> None:
        if norm not in LOSS_NORMS:
            raise ValueError(f"norm must be one of {LOSS_NORMS}; got {norm!r}")
        self.protocol = protocol
        self.m = num_generations
        self.norm = norm
        self.pending: list[list[tuple]] | None = None  # per row: rounds 2.. (prompt, completion)

    def score(self, reward: Any, questions: list, golds: list, texts: list, kwargs: dict) -> list:
        """Each row's trajectory rolled out once to its end by the live policy, rewarded by
        its final accuracy (None: cut, unscorable). The hook of
        :class:`motif.training.reward.FutureAccuracyReward`; logs as it does."""
        import time

        n = len(texts)
        ids, truncated, prompt_tokens = reward._first_round(kwargs, n)
        start = time.perf_counter()
        with reward.policy.engine(self.protocol, reward.params) as engine:
            recorder = IdRecorder(engine.backend)
            engine.backend = recorder
            groups = engine.continue_from(
                questions,
                texts,
                1,
                first_token_ids=ids,
                first_truncated=truncated,
                first_prompt_tokens=prompt_tokens,
            )
            self.pending = [later_rounds(g[0], self.protocol, recorder) for g in groups]
        seconds = time.perf_counter() - start
        rewards = reward._scores(groups, golds)
        tokens = sum(r.completion_tokens for g in groups for t in g for r in t.rounds[1:])
        reward._log(kwargs.get("log_metric"), rewards, groups, tokens, seconds, golds)
        return rewards

    def take(self, rows: int) -> list[list[tuple]]:
        """The later rounds of the ``rows`` rows last scored (then forgotten).

        Raises:
            RuntimeError: nothing scored, or another number of rows.
        """
        pending, self.pending = self.pending, None
        if pending is None or len(pending) != rows:
            got = "none" if pending is None else len(pending)
            raise RuntimeError(f"trajectory credit: {rows} rows to expand, {got} rolled out")
        return pending

    def expand(self, trainer: Any, batch: dict) -> dict:
        """TRL's scored batch with every trajectory expanded into one row per round.

        Each row's per-token advantage is its trajectory's times its weight; the batch's
        ``num_items_in_batch`` becomes the sum of weights over every process's rows. Padded
        to a multiple of ``steps_per_generation`` with masked copies, so TRL's split keeps
        every row. Logs ``trajectory/rows``, ``trajectory/rounds`` (mean) and
        ``trajectory/tokens``.

        Raises:
            RuntimeError: TRL's batch holds a key the expansion cannot rebuild.
        """
        import torch

        extra = sorted(set(k for k, v in batch.items() if v is not None) - EXPANDED_KEYS)
        if extra:
            raise RuntimeError(f"trajectory credit cannot expand TRL's batch keys {extra}")
        rows = self.rows(batch)
        padded = _padded(rows, trainer.args.steps_per_generation)
        out = _tensors(trainer, padded)
        units = torch.tensor(sum(r.units for r in rows), device=out["advantages"].device)
        out["num_items_in_batch"] = trainer.accelerator.gather(units).sum()
        if batch.get("old_per_token_logps") is not None:
            out["old_per_token_logps"] = _logps(trainer, out)
        out.update(_vllm_tensors(batch, padded, out))
        metrics = trainer._metrics["train"]
        metrics["trajectory/rows"].append(float(len(rows)))
        metrics["trajectory/rounds"].append(len(rows) / max(1, len(batch["advantages"])))
        metrics["trajectory/tokens"].append(float(sum(len(r.completion_ids) for r in rows)))
        return out

    def rows(self, batch: dict) -> list[Row]:
        """The expanded rows of TRL's batch (its round 1, then the pending later rounds); a
        round-1 row whose mask TRL zeroed stays out of the loss."""
        n = len(batch["advantages"])
        later = self.take(n)
        rounds, masked = [], []
        for i in range(n):
            prompt = batch["prompt_ids"][i][batch["prompt_mask"][i].bool()].tolist()
            count = int(batch["completion_mask"][i].sum())
            masked.append(count == 0)
            rounds.append([(prompt, batch["completion_ids"][i][:count].tolist()), *later[i]])
        return expand_rows(rounds, batch["advantages"].tolist(), self.norm, masked)


def _padded(rows: list[Row], multiple: int) -> list[Row]:
    """``rows`` with masked copies of the last appended up to a multiple of ``multiple`` (TRL
    splits a batch into ``steps_per_generation`` equal parts)."""
    extra = (-len(rows)) % multiple
    return [*rows, *[Row(**{**vars(rows[-1]), "masked": True}) for _ in range(extra)]]


def _tensors(trainer: Any, padded: list[Row]) -> dict:
    """Padded tensors of the rows ``padded`` (TRL's layout: prompts left-, completions
    right-padded)."""
    import torch
    from trl.trainer.utils import pad  # TRL: loaded only when a run trains

    device = trainer.accelerator.device
    pad_id = trainer.processing_class.pad_token_id
    if pad_id is None:
        pad_id = trainer.processing_class.eos_token_id

    def stack(values: list, side: str, value: float | int, dtype: Any) -> Any:
        made = [torch.tensor(v, dtype=dtype) for v in values]
        return pad(made, padding_value=value, padding_side=side).to(device)

    prompts = [r.prompt_ids for r in padded]
    completions = [r.completion_ids or [pad_id] for r in padded]
    masks = [
        [0 if r.masked or not r.completion_ids else 1] * len(c)
        for r, c in zip(padded, completions, strict=True)
    ]
    weights = [
        [r.advantage * r.weight * m for m in mask] for r, mask in zip(padded, masks, strict=True)
    ]
    return {
        "prompt_ids": stack(prompts, "left", pad_id, torch.long),
        "prompt_mask": stack([[1] * len(p) for p in prompts], "left", 0, torch.long),
        "completion_ids": stack(completions, "right", pad_id, torch.long),
        "completion_mask": stack(masks, "right", 0, torch.long),
        "advantages": stack(weights, "right", 0.0, torch.float32),
    }


def _vllm_tensors(batch: dict, padded: list[Row], out: dict) -> dict:
    """TRL's ``--use-vllm`` keys (:data:`VLLM_KEYS`) for the expanded rows.

    A round-1 row keeps its own values. A later round's tokens get an importance-sampling
    ratio of 1 (no correction: vLLM's sampling log-probs of later rounds are not kept, and
    TRL gives a token without one a ratio of exactly 1) and, as sampling log-probs, the
    policy's own (``old_per_token_logps``, TRL's fallback for its off-policy mask).
    Shapes: ``(rows, T)``, or ``(rows, 1)`` for a sequence-level ratio.
    """
    import torch

    made = {}
    for key in VLLM_KEYS:
        given = batch.get(key)
        if given is None:
            continue
        width = 1 if given.size(1) == 1 else out["completion_ids"].size(1)
        fill = 1.0 if key == "importance_sampling_ratio" else 0.0
        values = []
        for i, row in enumerate(padded):
            if row.round == 1:
                own = given[row.trajectory, :width]
                values.append(torch.nn.functional.pad(own, (0, width - len(own)), value=fill))
            elif key == "sampling_per_token_logps" and "old_per_token_logps" in out:
                values.append(out["old_per_token_logps"][i])
            else:
                values.append(torch.full((width,), fill, dtype=given.dtype, device=given.device))
        made[key] = torch.stack(values)
    return made


def _logps(trainer: Any, out: dict) -> Any:
    """Per-token log-probabilities of the expanded batch under the policy now (TRL's
    ``old_per_token_logps``, needed when a batch serves several optimiser steps)."""
    import torch

    ids = torch.cat([out["prompt_ids"], out["completion_ids"]], dim=1)
    mask = torch.cat([out["prompt_mask"], out["completion_mask"]], dim=1)
    with torch.no_grad():
        logps, _, _ = trainer._get_per_token_logps_and_entropies(
            trainer.model,
            ids,
            mask,
            out["completion_ids"].size(1),
            batch_size=trainer.args.per_device_train_batch_size,
        )
    return logps


def check_trajectory_trl() -> None:
    """``--credit trajectory`` needs the TRL hooks it was built on (checked before a load).

    Raises:
        ConfigError: the TRL release is outside :data:`motif.training.trl_hooks.TESTED_TRL`,
            or its ``GRPOTrainer._generate_and_score_completions(inputs)`` or
            ``_get_per_token_logps_and_entropies(model, input_ids, attention_mask,
            logits_to_keep, batch_size, ...)`` is missing or different.
    """
    require_hooks(
        "--credit trajectory expands TRL's scored batch",
        {
            "_generate_and_score_completions": ["inputs"],
            "_get_per_token_logps_and_entropies": [
                "model",
                "input_ids",
                "attention_mask",
                "logits_to_keep",
                "batch_size",
            ],
        },
    )


def trajectory_trainer_class() -> type:
    """``GRPOTrainer`` expanding each scored batch (set ``trainer.credit`` before training).

    ``_generate_and_score_completions`` (private, :func:`check_trajectory_trl`): TRL's own,
    then :meth:`TrajectoryBatch.expand` while training (evaluation batches stay as TRL made
    them).
    """
    check_trajectory_trl()
    from trl import GRPOTrainer

    class TrajectoryGRPOTrainer(GRPOTrainer):
        credit: TrajectoryBatch | None = None

        def _generate_and_score_completions(self, inputs: Any) -> Any:
            if self.credit is None:
                raise RuntimeError("TrajectoryGRPOTrainer.credit is not set")
            batch = super()._generate_and_score_completions(inputs)
            if not self.model.training:
                return batch
            return self.credit.expand(self, batch)

    return TrajectoryGRPOTrainer


def check_options(beta: float) -> None:
    """Refuse what the expansion cannot carry: a KL term (its reference log-probabilities are
    per round-1 row).

    Raises:
        ConfigError: one line naming the option and the fix.
    """
    if beta != 0:
        raise ConfigError(
            f"--credit trajectory trains rounds whose reference log-probabilities TRL does not "
            f"compute; --beta {beta} is not supported: use --beta 0 (the paper's)"
        )
