"""Rounds the model ends itself (``--round-end model``, InftyThink's protocol): its prompts,
its stop test, its cap, its identity, its options and their one-line errors."""

from __future__ import annotations

import pytest

from motif.carryover import (
    DEFAULT_MAX_ROUNDS,
    MIN_ROUND_TOKENS,
    ModelEndedCarryOver,
    SummaryCarryOver,
    TailCarryOver,
    carry_over_class,
    make_carry_over,
)
from motif.config import ProtocolArgs
from motif.errors import ConfigError
from motif.eval.identity import protocol_identity
from motif.prompts import MODEL_ENDED_SYSTEM_PROMPT, round_messages
from motif.protocol import Protocol

SUMMARY = "<reasoning>\n4 + 7 = 11\n</reasoning>\n<answer>\nso far 11; left: + 5\n</answer>\n"
CONCLUSION = "<reasoning>\n11 + 5 = 16\n</reasoning>\n<answer>\n\\boxed{16}\n</answer>\n"


def test_round_one_is_the_question_under_the_model_ended_system_prompt():
    chat = ModelEndedCarryOver(rounds=4).chat("What is 4 + 7 + 5?", 1)
    assert chat == [
        {"role": "system", "content": MODEL_ENDED_SYSTEM_PROMPT},
        {"role": "user", "content": "What is 4 + 7 + 5?"},
    ]
    assert chat.carried is None
    # the prompt offers both endings and never says how many rounds there are
    assert (
        "\\boxed{}" in MODEL_ENDED_SYSTEM_PROMPT and "progress summary" in MODEL_ENDED_SYSTEM_PROMPT
    )
    assert "4" not in MODEL_ENDED_SYSTEM_PROMPT and "final (" not in MODEL_ENDED_SYSTEM_PROMPT


def test_round_two_carries_the_summary_where_motif_carries_it():
    carry = ModelEndedCarryOver(rounds=4)
    summary = carry.carried(SUMMARY)
    assert summary == "so far 11; left: + 5"
    chat = carry.chat("Q?", 2, summary)
    assert chat[-1]["content"] == 'Q? Progress in round 1: "so far 11; left: + 5"'
    assert chat.carried == ('Q? Progress in round 1: "', summary, '"')
    # MOTIF's round 2 of 3 carries the same text at the same place
    assert round_messages("Q?", 2, 3, summary).carried == chat.carried
    cut = chat.with_carried("left: + 5")  # a backend shortens only the carried text
    assert cut[-1]["content"] == 'Q? Progress in round 1: "left: + 5"'


def test_round_phi_must_conclude():
    chat = ModelEndedCarryOver(rounds=3).chat("Q?", 3, "s")
    before, text, after = chat.carried
    assert (before, text) == ('Q? Progress in round 2: "', "s")
    assert after == (
        '" Current round is the last one (round 3 of at most 3). '
        "Conclude: provide the final answer in \\boxed{}."
    )
    one = ModelEndedCarryOver(rounds=1).chat("Q?", 1)  # phi = 1: round 1 is the last
    assert one[-1]["content"].startswith("Q? Current round is the last one (round 1 of at most 1)")
    with pytest.raises(ValueError, match="round_index must be in 1..3"):
        ModelEndedCarryOver(rounds=3).chat("Q?", 4, "s")


def test_a_conclusion_ends_the_trajectory_a_summary_does_not():
    carry = ModelEndedCarryOver(rounds=3)
    assert carry.finished(CONCLUSION, truncated=False, early_stop=False)
    assert not carry.finished(SUMMARY, truncated=False, early_stop=True)
    assert not carry.finished(SUMMARY.replace("so far", "\\boxed{} so far"), False, False)
    # the budget-ended summary carry-over only stops early with --early-stop
    assert not SummaryCarryOver(rounds=3).finished(CONCLUSION, False, early_stop=False)


def test_phi_caps_the_rounds():
    args = ProtocolArgs(round_end="model", max_rounds=5)
    assert args.rounds == 5
    assert args.strategy() == ModelEndedCarryOver(rounds=5, rule="paper")
    assert ProtocolArgs(round_end="model").rounds == DEFAULT_MAX_ROUNDS
    protocol = args.protocol()
    assert protocol.rounds == 5 and isinstance(protocol.carry, ModelEndedCarryOver)
    assert protocol.carry_over == "summary"  # stored trajectories read as summary ones


def test_registry_and_protocol_build_it():
    assert carry_over_class("summary", round_end="model") is ModelEndedCarryOver
    assert carry_over_class("summary") is SummaryCarryOver  # the default is unchanged
    assert carry_over_class("tail") is TailCarryOver
    assert make_carry_over("summary", 4, "strict", round_end="model") == ModelEndedCarryOver(
        4, "strict"
    )
    assert Protocol(rounds=2, round_end="model").carry == ModelEndedCarryOver(2)
    assert Protocol(rounds=2).carry == SummaryCarryOver(2)


def test_identity_records_the_round_end():
    assert ModelEndedCarryOver(rounds=3).identity() == {"round_end": "model"}
    model = protocol_identity(ProtocolArgs(round_end="model", max_rounds=4))
    budget = protocol_identity(ProtocolArgs(rounds=4))
    assert model == {**budget, "round_end": "model"}
    assert "round_end" not in budget  # runs written before --round-end still resume


def test_stored_files_read_back_as_model_ended():
    """A run identity's protocol block and a stored trajectory row name ``round_end``: every
    reader gets the model-ended strategy back, and its label says so."""
    from motif.carryover import protocol_carry_over, stored_carry_over
    from motif.engine import Trajectory
    from motif.eval.identity import run_label

    block = protocol_identity(ProtocolArgs(round_end="model", max_rounds=4))
    assert protocol_carry_over(block) is ModelEndedCarryOver
    assert protocol_carry_over(protocol_identity(ProtocolArgs())) is SummaryCarryOver
    assert protocol_carry_over(None) is SummaryCarryOver  # files from before carry-overs
    assert stored_carry_over("summary", "model") is ModelEndedCarryOver
    assert stored_carry_over("tail", None) is TailCarryOver
    with pytest.raises(ConfigError, match="--round-end model applies to --carry-over summary"):
        stored_carry_over("tail", "model")
    identity = {"model": "default:m", "protocol": block, "sampling": {"samples": 1}}
    assert run_label(identity) == "m, up to 4 model-ended rounds"
    assert run_label({**identity, "protocol": protocol_identity(ProtocolArgs())}) == "m, 3 rounds"
    row = Trajectory("Q", round_end="model").to_dict()
    assert row["round_end"] == "model" and "round_end" not in Trajectory("Q").to_dict()


def test_the_engine_stamps_its_round_end_on_every_trajectory():
    from fakes import ScriptedBackend
    from motif.backends.base import SamplingParams
    from motif.engine import RolloutEngine

    backend = ScriptedBackend(lambda chat, sample: SUMMARY)
    params = SamplingParams(max_new_tokens=64)
    protocol = Protocol(rounds=2, round_end="model")
    trajectories = RolloutEngine(backend, protocol, params).run(["Q?"], 2)
    assert [t.round_end for t in trajectories] == ["model", "model"]
    assert RolloutEngine(backend, Protocol(rounds=2), params).run(["Q?"])[0].round_end == "budget"


def test_defaults_and_spellings_are_unchanged():
    args = ProtocolArgs()
    assert (args.round_end, args.max_rounds, args.rounds) == ("budget", None, 3)
    assert type(args.strategy()) is SummaryCarryOver
    assert ProtocolArgs(round_end="budget", rounds=2).strategy() == SummaryCarryOver(2)


def test_max_rounds_without_model_ended_rounds_is_a_note():
    from motif.config import GenerationArgs

    notes = ProtocolArgs(max_rounds=4).unused_in_run(GenerationArgs())
    assert any(n.startswith("--max-rounds 4: not used") for n in notes)
    assert not ProtocolArgs(round_end="model", max_rounds=4).unused_in_run(GenerationArgs())


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"round_end": "model", "max_rounds": 0}, "--max-rounds must be >= 1 (phi"),
        ({"round_end": "model", "max_rounds": -2}, "--max-rounds must be >= 1 (phi"),
        ({"round_end": "sometimes"}, "--round-end must be one of budget, model"),
        (
            {"round_end": "model", "carry_over": "tail"},
            "--round-end model applies to --carry-over summary",
        ),
        (
            {"round_end": "model", "carry_over": "none"},
            "use --carry-over summary or drop --round-end",
        ),
        ({"round_end": "model", "rounds": 5}, "drop --rounds 5 or use --max-rounds 5"),
        ({"round_end": "model", "early_stop": True}, "drop --early-stop"),
    ],
)
def test_bad_options_are_one_line_config_errors(kwargs, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")) as caught:
        ProtocolArgs(**kwargs)
    assert "\n" not in str(caught.value)


def test_rounds_equal_to_phi_are_accepted():
    assert ProtocolArgs(round_end="model", rounds=4, max_rounds=4).rounds == 4


def test_a_cap_below_the_stated_minimum_is_refused():
    carry = ProtocolArgs(round_end="model").carry_class()
    carry.check_budgets(MIN_ROUND_TOKENS, None)
    with pytest.raises(ConfigError, match=f"--max-new-tokens 8 .* {MIN_ROUND_TOKENS} or more"):
        carry.check_budgets(8, None)
    with pytest.raises(ConfigError, match="--later-max-new-tokens 16 "):
        carry.check_budgets(64, 16)
    SummaryCarryOver.check_budgets(1, 1)  # budget-ended rounds take any budget


def test_efficiency_reward_needs_model_ended_rounds():
    ModelEndedCarryOver.check_efficiency_reward()
    for name in ("summary", "tail", "none"):
        with pytest.raises(ConfigError, match="--efficiency-reward .* add --round-end model"):
            carry_over_class(name).check_efficiency_reward()
