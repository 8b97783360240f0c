"""``motif train``: MOTIF or vanilla GRPO on TRL's ``GRPOTrainer`` (not a fork), with LoRA.

TRL generates round 1. For ``motif`` the future-accuracy reward rolls out the continuations with
the live policy; for ``grpo`` the reward grades the single round. Both add the format rewards.
"""

from __future__ import annotations

import logging
from typing import Any

from motif.protocol import Protocol
from motif.training.config import TrainConfig

logger = logging.getLogger(__name__)


def build_dataset(config: TrainConfig) -> Any:
    """The training rows: a conversational round-1 ``prompt`` plus ``question`` and ``answer``.

    Fails before any model loads when a row lacks a question or gold (unless skipped).
    """
    from datasets import Dataset

    from motif.data import load_problems

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
    protocol = Protocol(rounds=config.motif.rounds, summary_rule=config.motif.summary_rule)
    rows = [
        {"prompt": protocol.messages(p.question, 1), "question": p.question, "answer": p.gold}
        for p in problems
    ]
    return Dataset.from_list(rows)


def build_rewards(config: TrainConfig) -> list[Any]:
    """The reward functions of the method, each a TRL batch function (weights 1, summed)."""
    from motif.rewards import accuracy_reward, format_rewards
    from motif.training.reward import FutureAccuracyReward

    motif = config.motif
    if config.run.method == "motif":
        first: Any = FutureAccuracyReward(motif)
    else:
        weight = 2.0 if motif.scoring == "paper" else motif.accuracy_weight
        first = accuracy_reward(mode=motif.scoring, weight=weight)
    shaping = (
        [] if motif.format_rewards == "none" else format_rewards(motif.format_rewards == "paper")
    )
    return [first, *shaping]


def load_policy(config: TrainConfig, use_cuda: bool) -> tuple[Any, Any, Any]:
    """(model, tokenizer, peft_config): a fresh LoRA, or the ``--init-adapter`` made trainable."""
    from motif.models import apply_adapter, load_model

    dtype = config.run.dtype
    if dtype == "auto":
        dtype = "float32"  # master weights stay fp32; bf16 autocast comes from GRPOConfig.bf16
    model, tokenizer = load_model(
        config.run.model, None, dtype, "cpu", config.run.trust_remote_code
    )
    model.train()
    if config.run.init_adapter is None:
        return model, tokenizer, config.lora.peft_config()
    policy = apply_adapter(
        model, config.run.init_adapter, config.run.model or "default", trainable=True
    )
    return policy, tokenizer, None


def build_trainer(config: TrainConfig, dataset: Any = None) -> Any:
    """A ready ``GRPOTrainer`` with the method's rewards bound and the run's callbacks."""
    import torch
    from trl import GRPOConfig, GRPOTrainer

    from motif.training.rundir import metrics_callback, time_method

    use_cuda = torch.cuda.is_available()
    args = GRPOConfig(**config.optim.to_grpo_kwargs(config.run.output_dir, use_cuda))
    model, tokenizer, peft_config = load_policy(config, use_cuda)
    rewards = build_rewards(config)
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=rewards,
        args=args,
        train_dataset=dataset if dataset is not None else build_dataset(config),
        processing_class=tokenizer,
        peft_config=peft_config,
    )
    for reward in rewards:
        if hasattr(reward, "bind"):
            reward.bind(trainer)
    callback = metrics_callback(config.run.output_dir)
    trainer.callback_handler.callbacks.insert(0, callback)  # before TensorBoard: see its doc
    time_method(trainer, "_generate_single_turn", callback.timings, "round1_generation_seconds")
    time_method(trainer, "_calculate_rewards", callback.timings, "reward_seconds")
    return trainer


def train(config: TrainConfig) -> str:
    """Run training end to end; returns the run directory (final adapter at its root)."""
    from motif.training.rundir import prepare_run_dir

    dataset = build_dataset(config)  # data errors surface before the model loads
    resume_from = prepare_run_dir(
        config.run.output_dir, config.to_dict(), config.run.resume, config.run.overwrite
    )
    trainer = build_trainer(config, dataset)
    trainer.train(resume_from_checkpoint=resume_from)
    trainer.save_model(config.run.output_dir)
    return config.run.output_dir


def plan(config: TrainConfig) -> str:
    """A human-readable summary of what a run would do (``--dry-run``)."""
    o, m = config.optim, config.motif
    completions = o.prompts_per_device * o.num_generations
    lines = [
        f"method: {config.run.method}  model: {config.run.model or 'offline default SmolLM2-135M-Instruct'}",
        f"data: {config.data.dataset}  output: {config.run.output_dir}",
        f"steps: {o.max_steps}, checkpoint every {o.save_steps}; lr {o.learning_rate} "
        f"({o.lr_scheduler_type}, warm-up {o.warmup_ratio}), beta {o.beta}, loss {o.loss_type}",
        f"per step and device: {o.prompts_per_device} question(s) x {o.num_generations} round-1 "
        f"completions of <= {o.max_completion_length} tokens (T={o.temperature})",
    ]
    if config.run.method == "motif":
        lines.append(
            f"MOTIF: n={m.rounds} rounds, k={m.k} continuations per completion "
            f"({completions * m.k} trajectories x {m.rounds - 1} rounds per step), T={m.continuation_temperature}, "
            f"top_p={m.continuation_top_p}, <= {m.continuation_max_new_tokens} tokens/round"
        )
    lines.append(f"rewards: {', '.join(_reward_names(config))}")
    adapter = (
        config.run.init_adapter or f"new LoRA r={config.lora.lora_r} alpha={config.lora.lora_alpha}"
    )
    lines.append(f"adapter: {adapter}; vLLM: {o.use_vllm and o.vllm_mode}")
    return "\n".join(lines)


def _reward_names(config: TrainConfig) -> list[str]:
    m = config.motif
    first = "future_accuracy" if config.run.method == "motif" else "accuracy"
    first += f" ({m.scoring} scoring)"
    fmt = (
        [] if m.format_rewards == "none" else [f"xmlcount/soft/strict format ({m.format_rewards})"]
    )
    return [first, *fmt]
