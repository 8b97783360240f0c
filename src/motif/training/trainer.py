"""``motif train``: MOTIF or vanilla GRPO on TRL's ``GRPOTrainer`` (not a fork), with LoRA.

Round 1 is sampled by motif's decode path through TRL's ``rollout_func`` hook
(:mod:`motif.training.round1`; ``--round1-generation trl``: TRL's ``model.generate``). For
``motif`` the future-accuracy reward rolls out the continuations with the live policy; for
``grpo`` the reward grades the single round. Both add the format rewards. Every rollout goes
through the trainer's one :class:`motif.training.policy.TrainingPolicy`. ``--credit all`` and
``--credit trajectory`` train later rounds too (:mod:`motif.training.credit_schemes`).
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from motif import (
    identity as weights_identity,  # called through the module: tests replace its functions
)
from motif import (
    models,  # called through the module: tests replace its functions
)
from motif.backends.template import folds_system
from motif.backends.vllm_options import require_training_vllm
from motif.compat import library_deprecations
from motif.config import GenerationArgs, ModelArgs
from motif.data import load_problems
from motif.errors import ConfigError, MotifError
from motif.models import apply_adapter, check_adapter_dir, check_model, load_tokenizer
from motif.outdir import OutputDir, check_output_dir
from motif.prompts import fold_system
from motif.rewards import accuracy_reward, format_rewards
from motif.runtime import check_protocol_fits, model_context
from motif.textio import plural
from motif.training.config import TrainConfig, grpo_config, resolve_bf16
from motif.training.console import train_with_console, use_console
from motif.training.demos import HELD_OUT_SEED_OFFSET
from motif.training.policy import TrainingPolicy
from motif.training.reward import FutureAccuracyReward
from motif.training.round1 import rollout_func
from motif.training.rundir import (
    BATCH_KEY,
    CONFIG_FILE,
    metrics_callback,
    resume_hint,
    resume_point,
    run_identity,
    start_run,
    time_method,
)

logger = logging.getLogger(__name__)


def build_dataset(config: TrainConfig) -> Any:
    """The training rows: a conversational round-1 ``prompt`` plus ``question`` and ``answer``.

    The prompt is the run's protocol's round 1 (``Protocol.messages``): the n-round MOTIF
    prompt for ``summary``, the single-round prompt for ``tail`` (chunk 1) and for ``grpo``.
    Fails before any model loads when a row lacks a question or gold (unless skipped).
    """
    from datasets import Dataset

    data = config.data
    task_config = dict(data.task_config or {})
    if data.dataset.startswith("reasoning_gym:"):
        task_config.setdefault("size", data.dataset_size or 1000)
    problems = load_problems(
        data.dataset,
        data_dir=data.data_dir,
        question_field=data.question_field,
        answer_field=data.answer_field,
        limit=data.dataset_size,
        skip_bad_rows=data.skip_bad_rows,
        task_config=task_config or None,
        seed=data.dataset_seed,
    )
    protocol = config.motif.protocol()  # tail: round 1 is chunk 1, the single-round prompt
    fold = policy_folds_system(config)
    rows = [
        {"prompt": protocol.messages(p.question, 1), "question": p.question, "answer": p.gold}
        for p in problems
    ]
    for row in rows if fold else []:
        row["prompt"] = fold_system(row["prompt"])
    return Dataset.from_list(rows)


def policy_folds_system(config: TrainConfig) -> bool:
    """Whether the policy's chat template refuses the system role, so that the prompts TRL
    renders itself (its own generation, ``--credit all`` states) carry the system prompt in
    the first user turn, as motif's own rendering does (:func:`motif.backends.template.
    folds_system`; the tokenizer only, no weights)."""

    return folds_system(load_tokenizer(config.run.model, config.run.trust_remote_code))


def build_rewards(config: TrainConfig, policy: TrainingPolicy, credit: Any = None) -> list[Any]:
    """The reward functions of the method, each a TRL batch function (weights 1, summed).

    ``policy`` rolls out the future-accuracy reward's continuations (``--method motif``);
    ``credit``: the credit scheme's state (:func:`make_credit`), whose ``score`` the reward
    calls.
    """

    motif = config.motif
    if config.run.method == "motif":
        first: Any = FutureAccuracyReward(motif, credit=credit, policy=policy)
    else:
        first = accuracy_reward(mode=motif.scoring, weight=motif.accuracy_reward_weight())
    shaping = (
        [] if motif.format_rewards == "none" else format_rewards(motif.format_rewards == "paper")
    )
    return [first, *shaping]


def make_credit(config: TrainConfig, tokenizer: Any) -> Any:
    """The credit scheme's state, made once (None for ``first``): ``--credit all``'s state
    buffer and schedule (folding the system prompt into the states' user turns when the
    policy's ``tokenizer``'s chat template refuses the system role), ``--credit
    trajectory``'s batch of sampled rounds (:meth:`CreditScheme.make_state`)."""
    return config.motif.credit_scheme().make_state(config, tokenizer)


def load_policy(config: TrainConfig, use_cuda: bool) -> tuple[Any, Any, Any]:
    """(model, tokenizer, peft_config): a fresh LoRA, or the ``--init-adapter`` made trainable;
    under ``--use-peft false`` the whole model (the ``--init-adapter`` merged into its weights)
    and no ``peft_config``."""

    dtype = config.run.dtype
    if dtype == "auto":
        dtype = "float32"  # master weights stay fp32; bf16 autocast comes from GRPOConfig.bf16
    model, tokenizer = models.load_model(
        config.run.model, None, dtype, "cpu", config.run.trust_remote_code
    )
    model.train()
    if not config.lora.use_peft:
        return _full_model(model, config), tokenizer, None
    if config.run.init_adapter is None:
        return model, tokenizer, config.lora.peft_config()
    policy = apply_adapter(
        model, config.run.init_adapter, config.run.model or "default", trainable=True
    )
    return policy, tokenizer, None


def _full_model(model: Any, config: TrainConfig) -> Any:
    """``model`` with every weight trainable, the ``--init-adapter`` (if any) merged in."""
    if config.run.init_adapter is not None:
        name = config.run.model or "default"
        model = apply_adapter(model, config.run.init_adapter, name).merge_and_unload()
    for weight in model.parameters():
        weight.requires_grad_(True)
    return model.train()


@dataclass
class Checked:
    """The outcome of :func:`check_config`: everything a run needs that loads no model."""

    grpo_args: Any
    dataset: Any
    output: OutputDir
    identity: dict
    resume_from: Path | None
    bf16: tuple[bool, str]
    model: str
    heldout: list = field(default_factory=list)  # --heldout-every: the held-out task items


def check_config(config: TrainConfig) -> Checked:
    """Check everything that can be checked before a model loads; deletes and writes nothing.

    The TRL/transformers option values are checked by building ``GRPOConfig`` (and the
    reporting callbacks) as the run does; the model and adapter paths, the data set, the
    output directory and, with ``--resume``, the run's identity. ``--dry-run`` runs exactly
    this, so it fails with the same messages as a real run.
    """
    import torch

    use_cuda = torch.cuda.is_available()
    args = grpo_config(config.optim, config.run.output_dir, use_cuda)
    if config.optim.use_vllm:
        require_training_vllm(config.optim.vllm_mode)
    output = check_output_dir(
        config.run.output_dir,
        kind="train",
        overwrite=config.run.overwrite,
        resume=config.run.resume,
        legacy_files=(CONFIG_FILE,),
        resume_hint=resume_hint(config.run.output_dir),
    )
    config.lora.peft_config()  # validates the LoRA settings
    dataset = build_dataset(config)
    model = check_model(config.run.model)
    if config.run.init_adapter is not None:
        check_init_adapter(config.run.init_adapter)
    if config.motif.strategy().continues_turn:
        check_tail_fits(config)
    check_round1_fits(config, dataset["prompt"])
    config.motif.credit_scheme().check_trl()
    bf16 = resolve_bf16(config.optim.bf16, use_cuda)
    settings = {**config.to_dict(), "bf16": bf16[0]}  # what runs, not how it was spelled
    identity = run_identity(
        settings, config.run.model, config.run.init_adapter, _data_fingerprint(dataset)
    )
    resume_from = resume_point(output.path, identity) if config.run.resume else None
    heldout = check_watch(config, dataset)
    return Checked(args, dataset, output, identity, resume_from, bf16, model, heldout)


def check_init_adapter(adapter: str, recipes: Path = Path("recipes")) -> None:
    """``--init-adapter`` must be a PEFT adapter; a missing one is usually a cold start not made
    yet, so the error says how to make it: the recipe under ``recipes`` whose ``output_dir``
    is that folder, when there is one (the repository's ``recipes/`` from its root).

    Raises:
        MotifError: one line naming the folder and the command that writes it.
    """

    if Path(adapter).exists():
        check_adapter_dir(adapter)
        return
    maker = _recipe_writing(adapter, recipes)
    how = f"`motif sft --config {maker}`" if maker else f"`motif sft --output-dir {adapter} ...`"
    raise MotifError(
        f"--init-adapter {adapter} does not exist yet: it is the cold start this run starts "
        f"from; make it first with {how}, or pass --init-adapter none to start a new LoRA"
    )


def _recipe_writing(adapter: str, recipes: Path) -> str | None:
    """The ``motif sft`` recipe in ``recipes`` (searched recursively) that writes ``adapter``."""
    import yaml

    target = Path(adapter).resolve()
    for path in sorted(recipes.rglob("*.yaml")) if recipes.is_dir() else []:
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError):
            continue
        if not isinstance(data, dict) or "method" in data:  # a `motif train` recipe
            continue
        out = data.get("output_dir", data.get("output-dir"))
        if isinstance(out, str) and Path(out).resolve() == target:
            return path.as_posix()
    return None


def check_watch(config: TrainConfig, dataset: Any) -> list:
    """``--heldout-every``: the held-out items (none when off), drawn now so a dry run checks them.

    Raises:
        ConfigError: fewer items than processes (each process rolls out a share), or a task
            config the task rejects.
        MotifError: too few usable held-out items.
    """
    import os

    watch = config.watch
    if watch.heldout_every == 0:
        return []
    processes = int(os.environ.get("WORLD_SIZE", "1"))
    if watch.heldout_size < processes:
        raise ConfigError(
            f"--heldout-size {watch.heldout_size} is below the {processes} processes, and each "
            f"rolls out a share of the held-out items: use --heldout-size {processes} or more"
        )
    from motif.training.watch import (
        heldout_items,  # torch and peft: loaded only when a held-out check runs
    )

    return heldout_items(config, dataset["question"])


def check_tail_fits(config: TrainConfig) -> None:
    """``--carry-over tail``: C below the model's context, a template that continues a turn.

    The checks of ``motif infer``/``eval`` (:func:`motif.runtime.check_protocol_fits`), from
    the model's config and tokenizer only; no weights load.

    Raises:
        ConfigError: naming the option and the fix.
    """

    check_protocol_fits(
        ModelArgs(model=config.run.model, trust_remote_code=config.run.trust_remote_code),
        GenerationArgs(max_new_tokens=config.motif.tail_chunk),
        config.motif,
    )


def check_round1_fits(config: TrainConfig, prompts: list) -> None:
    """Every round-1 prompt with ``--max-completion-length`` new tokens fits the model's context.

    Checked before training, from the tokenizer and the model's config (no weights load), so
    that every process refuses the run at once instead of one failing mid-run.

    Raises:
        ConfigError: naming the first row that does not fit, its length and the fix.
    """
    from motif.backends.hf import render_ids  # torch: loaded only when a model runs

    model = ModelArgs(model=config.run.model, trust_remote_code=config.run.trust_remote_code)
    limit, budget = model_context(model), config.optim.max_completion_length
    if limit is None:
        return
    tokenizer = load_tokenizer(model.model, model.trust_remote_code)
    lengths = [len(ids) for ids in render_ids(tokenizer, prompts)]
    row = next((i for i, n in enumerate(lengths) if n + budget > limit), None)
    if row is None:
        return
    room = limit - max(lengths)
    option = config.motif.round1_budget(budget)[1] or "--max-completion-length"
    fix = f"lower {option} to {room} or " if room > 0 else ""
    raise ConfigError(
        f"row {row}: its round-1 prompt ({lengths[row]} tokens) plus {option} {budget} "
        f"exceeds the model's context of {limit} tokens; {fix}drop the longest questions"
    )


def _data_fingerprint(dataset: Any) -> str:
    import hashlib
    import json

    digest = hashlib.sha256()
    for row in dataset:
        digest.update(json.dumps([row["question"], row["answer"]], ensure_ascii=False).encode())
    return digest.hexdigest()


def build_trainer(
    config: TrainConfig, dataset: Any = None, args: Any = None, heldout: list | None = None
) -> Any:
    """A ready ``GRPOTrainer`` with the method's rewards bound and the run's callbacks.

    One :class:`motif.training.policy.TrainingPolicy` is made here and bound to the trainer:
    round 1 (motif's ``rollout_func``), the reward's continuations and the held-out check all
    roll out through it, and each generation batch keeps one backend open
    (:meth:`TrainingPolicy.hold_steps`). The credit scheme's state is made here once,
    handed to the reward and set on the trainer. ``heldout``: the held-out items of
    ``--heldout-every`` (:func:`check_watch`; drawn here when None and the check is on).
    """
    import torch

    use_cuda = torch.cuda.is_available()
    args = args or grpo_config(config.optim, config.run.output_dir, use_cuda)
    dataset = dataset if dataset is not None else build_dataset(config)
    model, tokenizer, peft_config = load_policy(config, use_cuda)
    policy = TrainingPolicy.from_args(config.motif)
    credit = make_credit(config, tokenizer)
    rewards = build_rewards(config, policy, credit)
    round1 = rollout_func(config, args, policy)
    if config.optim.use_vllm and config.optim.vllm_mode == "colocate":
        from motif.training.vllm_cpu import cpu_engine_env  # vLLM runs only

        cpu_engine_env(model)
    with library_deprecations(), warnings.catch_warnings():
        # peft reads a deprecated transformers property; TRL calls rollout_func experimental
        warnings.filterwarnings("ignore", message="You are using 'rollout_func'")
        trainer = config.motif.credit_scheme().trainer_class()(
            model=model,
            reward_funcs=rewards,
            args=args,
            train_dataset=dataset,
            processing_class=tokenizer,
            peft_config=peft_config,
            rollout_func=round1,
        )
    policy.bind(trainer)
    policy.hold_steps(trainer)
    if getattr(trainer, "use_vllm", False):
        from motif.training.vllm_cpu import reload_on_cpu  # vLLM runs only

        reload_on_cpu(trainer)
    if credit is not None:
        trainer.credit = credit
    callback = metrics_callback(config.run.output_dir)
    trainer.callback_handler.callbacks.insert(0, callback)  # before TensorBoard: see its doc
    generation = "rollout_func" if round1 is not None else "_generate_single_turn"
    time_method(trainer, generation, callback.timings, "round1_generation_seconds")
    time_method(trainer, "_calculate_rewards", callback.timings, "reward_seconds")
    time_method(trainer, "_generate_and_score_completions", callback.timings, BATCH_KEY)
    if config.watch.heldout_every:
        from motif.training.watch import (
            HeldOutWatch,  # torch and peft: loaded only when a held-out check runs
        )

        items = heldout if heldout is not None else check_watch(config, dataset)
        # last: after the metrics callback has timed the step; logs through its per-step dict
        trainer.add_callback(HeldOutWatch(policy, config, items, callback.timings))

    use_console(trainer, "motif train")
    return trainer


def _decode_plan(trainer: Any) -> dict | None:
    """The machine-dependent choices of the continuations' decode path (issue 21), or None
    when TRL's vLLM engine generates them (:func:`motif.backends.kernels.decode_plan`)."""
    if getattr(trainer, "use_vllm", False):
        return None
    from motif.backends.kernels import decode_plan  # torch: loaded only when a model runs

    return decode_plan(next(trainer.model.parameters()).device)


def train(config: TrainConfig, checked: Checked | None = None) -> str:
    """Run training end to end; returns the run directory (final adapter at its root).

    Order: check everything (:func:`check_config`), load the model and build the trainer,
    and only then delete an old run (``--overwrite``), write the run's files and, on
    ``--resume``, drop what was logged after the checkpoint resumed from.
    """
    checked = checked or check_config(config)
    trainer = build_trainer(config, checked.dataset, checked.grpo_args, checked.heldout)
    # read again once loaded: a hub model downloaded, or the default model converted from its
    # GGUF, by this load is fingerprinted as a resume will find it
    checked.identity["model_weights"] = weights_identity.model_fingerprint(config.run.model)
    out = checked.output.claim()
    resume_from = checked.resume_from
    decode = _decode_plan(trainer)
    start_run(
        out,
        config.to_dict(),
        checked.identity,
        checked.bf16,
        resume_from,
        continuation_decode=decode,
    )

    with library_deprecations():  # TRL's generation helper reads a deprecated property
        train_with_console(
            trainer, resume_from_checkpoint=str(resume_from) if resume_from else None
        )
    trainer.save_model(config.run.output_dir)
    return config.run.output_dir


def plan(config: TrainConfig, checked: Checked | None = None) -> str:
    """A human-readable summary of what a run would do (``--dry-run`` and before a run)."""
    o = config.optim
    completions = o.prompts_per_device * o.num_generations
    model = checked.model if checked else config.run.model or "offline default"
    output = checked.output.describe() if checked else config.run.output_dir
    lines = [
        f"method: {config.run.method}  model: {model}",
        f"data: {config.data.dataset}  output: {output}",
        f"steps: {o.max_steps}, checkpoint every {o.save_steps}; lr {o.learning_rate} "
        f"({o.lr_scheduler_type}, warm-up {o.warmup_ratio}), beta {o.beta}, loss {o.loss_type}",
        f"per step and device: {plural(o.prompts_per_device, 'question')} x "
        f"{o.num_generations} round-1 completions of <= {o.max_completion_length} tokens "
        f"(T={o.temperature})"
        + (f", trained in {o.micro_batches} micro-batches" if o.micro_batches > 1 else ""),
    ]
    if config.run.method == "motif":
        lines.append(_continuation_line(config, completions))
    credit = config.motif.credit_scheme().plan_line(config)
    if credit is not None:
        lines.append(credit)
    lines.extend(f"note: {note}" for note in config.notes)
    lines.append(f"rewards: {', '.join(_reward_names(config))}")
    if config.watch.heldout_every:
        lines.append(_watch_line(config))
    adapter = (
        config.run.init_adapter or f"new LoRA r={config.lora.lora_r} alpha={config.lora.lora_alpha}"
    )
    if not config.lora.use_peft:
        merged = f", {config.run.init_adapter} merged in" if config.run.init_adapter else ""
        adapter = f"none, full fine-tuning (every weight{merged}; the run folder holds a model)"
    lines.append(f"adapter: {adapter}; vLLM: {o.use_vllm and o.vllm_mode}")
    if checked:
        on, why = checked.bf16
        lines.append(f"precision: bf16 mixed precision {'on' if on else 'off'} ({why})")
        if checked.resume_from:
            lines.append(f"resume: from {checked.resume_from.name}")
    return "\n".join(lines)


def _continuation_line(config: TrainConfig, completions: int) -> str:
    """The plan's line on the reward's continuations (``summary`` rounds or ``tail`` chunks)."""
    m = config.motif
    sampling = f"T={m.continuation_temperature}, top_p={m.continuation_top_p}"
    window = m.window()
    if window is None:
        ends = m.carry_class().round_end == "model"
        rounds = (
            f"up to phi={m.rounds} rounds the model ends itself" if ends else f"n={m.rounds} rounds"
        )
        upto = "up to " if ends else ""
        efficiency = ", reward x 1 - ((n-1)/phi)^2 (InftyThink+)" if m.efficiency_reward else ""
        k = m.credit_scheme().continuations or m.k
        return (
            f"MOTIF: {rounds}, k={k} continuation{'s' if k > 1 else ''} per completion "
            f"({completions * k} trajectories x {upto}{plural(m.rounds - 1, 'round')} per step), "
            f"{sampling}, <= {m.continuation_max_new_tokens} tokens/round{efficiency}"
        )
    return (
        f"MOTIF, carry-over tail (Delethink): round 1 = chunk 1 of C={window.chunk} tokens; "
        f"k={m.k} continuations of each cut completion write chunks 2..{window.max_chunks} of "
        f"<= {window.later_new_tokens} tokens from its first h={window.head} + last "
        f"m={window.keep_tail} tokens ({completions * m.k} trajectories per step, "
        f"<= {window.total_budget} tokens per thought), {sampling}"
    )


def _watch_line(config: TrainConfig) -> str:
    """The plan's line on the held-out check (``--heldout-every``)."""
    w, d = config.watch, config.data

    return (
        f"held-out check: every {w.heldout_every} steps and after the last, {w.heldout_size} "
        f"unseen {d.dataset} items (seed {d.dataset_seed + HELD_OUT_SEED_OFFSET}), greedy, "
        "logged as heldout/* (accuracy, format, step accuracy, states right, skipped steps)"
    )


def _reward_names(config: TrainConfig) -> list[str]:
    m = config.motif
    first = "future_accuracy" if config.run.method == "motif" else "accuracy"
    first += f" ({m.scoring} scoring)"
    if m.efficiency_reward:
        first += f" x efficiency 1 - ((n-1)/{m.rounds})^2"
    fmt = (
        [] if m.format_rewards == "none" else [f"xmlcount/soft/strict format ({m.format_rewards})"]
    )
    return [first, *fmt]
