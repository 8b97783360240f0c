"""Credit schemes: which rows GRPO trains and how each is rewarded (``motif train --credit``).

Each scheme is one :class:`CreditScheme` subclass that owns what differs between them: its
option checks, the state made once per run (handed to the reward, whose hook is the state's
``score``, and set on the trainer), the trainer class, the plan's line and which options the
saved config keeps. The config (:mod:`motif.training.config`) and the trainer
(:mod:`motif.training.trainer`) ask the scheme; a new scheme is one class here plus its name in
:data:`CREDIT_SCHEMES`.

* ``first`` (:class:`First`): MOTIF (arXiv 2507.02851). Round-1 replies only, each rewarded by
  the mean accuracy of ``k`` continuations; TRL's own ``GRPOTrainer``; no state.
* ``all`` (:class:`AllRounds`): later-round states as extra GRPO groups, each reply rewarded by
  its own future accuracy (:mod:`motif.training.credit`).
* ``trajectory`` (:class:`TrajectoryCredit`): every round (or ``tail`` chunk) of one sampled
  trajectory is a row carrying the trajectory's advantage; Delethink (arXiv 2510.06557),
  InftyThink+ (arXiv 2602.06960), MemAgent (arXiv 2507.02259)
  (:mod:`motif.training.trajectory`).
"""

from __future__ import annotations

from typing import Any, ClassVar

from motif.backends.template import folds_system
from motif.errors import ConfigError
from motif.training.credit import Credit, check_trl, credit_trainer_class
from motif.training.trajectory import (
    WEIGHTED_LOSSES,
    TrajectoryBatch,
    check_options,
    check_trajectory_trl,
    trajectory_trainer_class,
)


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)


def _more_rounds(carry: Any) -> str:
    """The fix that gives a one-round carry-over more rounds."""
    if not carry.later_rounds:
        return "--carry-over summary or tail"
    return f"{carry.rounds_option} 2 or more"


class CreditScheme:
    """A credit scheme of ``motif train``; subclasses set the attributes and override.

    Class attributes:
        name: the ``--credit`` spelling, saved in the run's config (unless ``legacy``).
        own_options: ``MotifArgs`` fields only this scheme reads (saved only under it).
        continuations: how many continuations of each reply the reward rolls out (None:
            ``--k``).
        legacy: runs from before ``--credit`` existed are this scheme's: ``credit`` is left
            out of their saved config and identity, so they still resume.
    """

    name: ClassVar[str]
    own_options: ClassVar[tuple[str, ...]] = ()
    legacy: ClassVar[bool] = False
    continuations: ClassVar[int | None] = None

    @classmethod
    def check(cls, config: Any) -> None:
        """Refuse a ``TrainConfig`` this scheme cannot train (:class:`ConfigError`, one line
        naming the option and the fix). Loads nothing."""

    @classmethod
    def adjust(cls, config: Any) -> list[str]:
        """Settings this scheme derives from others (after :meth:`check`); the plan's notes."""
        return []

    @classmethod
    def check_trl(cls) -> None:
        """Refuse a TRL release whose private hooks this scheme does not fit (before a load)."""

    @classmethod
    def make_state(cls, config: Any, tokenizer: Any) -> Any:
        """The run's state, made once: handed to the reward and set on the trainer (None:
        none). ``tokenizer``: the policy's (its chat template decides system folding)."""
        return None

    @classmethod
    def trainer_class(cls) -> type:
        """The ``GRPOTrainer`` (sub)class that trains this scheme."""
        from trl import GRPOTrainer  # heavy: loaded only when a run builds its trainer

        return GRPOTrainer

    @classmethod
    def plan_line(cls, config: Any) -> str | None:
        """The ``--dry-run`` plan's line on this scheme (None: no line)."""
        return None


class First(CreditScheme):
    """``first``: MOTIF's credit, round 1 by the mean accuracy of ``k`` continuations."""

    name = "first"
    legacy = True


class AllRounds(CreditScheme):
    """``all``: rounds ``2..n`` too, as groups of replies to later-round states."""

    name = "all"
    own_options = ("credit_first_share", "credit_buffer")

    @classmethod
    def check(cls, config: Any) -> None:
        """Rounds after the first, continued by MOTIF's summaries."""
        motif = config.motif
        _require(
            config.run.method == "motif",
            "--credit all trains rounds 2..n of MOTIF, and --method grpo answers in one round: "
            "use --method motif, or --credit first",
        )
        _require(
            motif.strategy().hands_state,
            f"--credit all starts rounds from carried summaries (each round a fresh chat); "
            f"--carry-over {motif.carry_over} is not supported: use --carry-over summary",
        )
        _require(
            motif.rounds >= 2,
            "--credit all trains rounds 2..n, and --rounds 1 has none: use --rounds 2 or more, "
            "or --credit first",
        )

    @classmethod
    def check_trl(cls) -> None:
        check_trl()

    @classmethod
    def make_state(cls, config: Any, tokenizer: Any) -> Credit:
        fold = folds_system(tokenizer)
        return Credit.from_args(config.motif, config.optim.num_generations, config.optim.seed, fold)

    @classmethod
    def trainer_class(cls) -> type:
        return credit_trainer_class()

    @classmethod
    def plan_line(cls, config: Any) -> str:
        m, o = config.motif, config.optim
        share = m.first_share()
        later = "round-2 states" if m.rounds == 2 else f"states of rounds 2..{m.rounds} in turn"
        return (
            f"credit: all rounds; {share:.0%} of GRPO groups answer questions (round 1), the "
            f"rest {later} (<= {m.credit_buffer} kept per round), "
            f"replies written by TRL (<= {o.max_completion_length} tokens, T={o.temperature}), "
            f"rewarded by {m.k} continuations (the last round: its own accuracy)"
        )


class TrajectoryCredit(CreditScheme):
    """``trajectory``: every round of a sampled trajectory, with the trajectory's advantage
    (:mod:`motif.training.trajectory`; Delethink arXiv 2510.06557, InftyThink+ arXiv
    2602.06960)."""

    name = "trajectory"
    own_options = ("trajectory_loss_norm",)
    continuations = 1  # each reply rolled out once to its end, whatever --k says

    @classmethod
    def check(cls, config: Any) -> None:
        """Two or more rounds of MOTIF (summary or tail), no KL term, no vLLM."""
        motif = config.motif
        _require(
            config.run.method == "motif",
            "--credit trajectory trains every round of a multi-round trajectory, and --method "
            "grpo answers in one round: use --method motif, or --credit first",
        )
        carry = motif.strategy()
        _require(
            carry.later_rounds and motif.rounds >= 2,
            f"--credit trajectory trains every round of a trajectory, and this run has one "
            f"(--carry-over {motif.carry_over}, {motif.rounds} {carry.unit}): use "
            f"{_more_rounds(carry)}, or --credit first",
        )
        check_options(config.optim.beta)

    @classmethod
    def adjust(cls, config: Any) -> list[str]:
        """The loss must divide by the summed token weights (``dapo`` unless one that does),
        and later rounds are trained, so they are sampled as round 1 is (TRL's log-probs of
        every trained row use round 1's temperature)."""
        return [*_weighted_loss(config), *_on_policy_rounds(config), *_vllm_rounds(config)]

    @classmethod
    def check_trl(cls) -> None:
        check_trajectory_trl()

    @classmethod
    def make_state(cls, config: Any, tokenizer: Any) -> TrajectoryBatch:
        m = config.motif
        return TrajectoryBatch(m.protocol(), config.optim.num_generations, m.trajectory_loss_norm)

    @classmethod
    def trainer_class(cls) -> type:
        return trajectory_trainer_class()

    @classmethod
    def plan_line(cls, config: Any) -> str:
        m, o = config.motif, config.optim
        carry = m.strategy()
        norm = (
            "per trajectory (Delethink's trace-length norm, arXiv 2510.06557)"
            if m.trajectory_loss_norm == "trace"
            else "per token over all rounds (InftyThink+, arXiv 2602.06960)"
        )
        rows = o.prompts_per_device * o.num_generations // o.micro_batches
        return (
            f"credit: trajectory; each of the {o.num_generations} trajectories per question is "
            f"rolled out once to {m.rounds} {carry.unit}s by the live policy and rewarded by its "
            f"final accuracy; its advantage (within its group) trains every {carry.unit}; loss "
            f"normalised {norm}; memory: up to {rows * m.rounds} rows per forward ({rows} "
            f"replies x {m.rounds} {carry.unit}s: raise --micro-batches if it does not fit)"
        )


def _weighted_loss(config: Any) -> list[str]:
    optim = config.optim
    if optim.loss_type in WEIGHTED_LOSSES:
        return []
    given, optim.loss_type = optim.loss_type, "dapo"
    return [
        f"--loss-type {given} replaced by dapo (--credit trajectory normalises the loss "
        f"per {'trajectory' if config.motif.trajectory_loss_norm == 'trace' else 'token'} "
        "through TRL's num_items_in_batch)"
    ]


def _on_policy_rounds(config: Any) -> list[str]:
    motif, optim = config.motif, config.optim
    given = (motif.continuation_temperature, motif.continuation_top_p)
    if given == (optim.temperature, optim.top_p):
        return []
    motif.continuation_temperature, motif.continuation_top_p = optim.temperature, optim.top_p
    return [
        f"--continuation-temperature {given[0]} and --continuation-top-p {given[1]} replaced by "
        f"round 1's {optim.temperature} and {optim.top_p} (--credit trajectory trains the later "
        "rounds too, with the log-probs of round 1's sampling)"
    ]


def _vllm_rounds(config: Any) -> list[str]:
    if not config.optim.use_vllm:
        return []
    return [
        "--use-vllm: TRL's importance-sampling correction (on by default) covers round 1; the "
        "later rounds' tokens get ratio 1 (their vLLM sampling log-probs are not kept; see "
        "motif.training.trajectory)"
    ]


CREDIT_SCHEMES: dict[str, type[CreditScheme]] = {
    scheme.name: scheme for scheme in (First, AllRounds, TrajectoryCredit)
}
"""The schemes ``--credit`` names, by name."""


def credit_scheme(name: str) -> type[CreditScheme]:
    """The scheme ``--credit name`` picks.

    Raises:
        ConfigError: an unknown name, listing the known ones.
    """
    _require(
        name in CREDIT_SCHEMES,
        f"--credit must be one of {', '.join(CREDIT_SCHEMES)}; got {name!r}",
    )
    return CREDIT_SCHEMES[name]
