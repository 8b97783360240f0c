"""What the future-accuracy reward logs per batch (``future_accuracy``, ``efficiency``)."""

from __future__ import annotations

import pytest

from motif.training.config import MotifArgs
from motif.training.reward import FutureAccuracyReward
from test_rewards import R1, RIGHT, WRONG, _trajectory


def _logged(motif: MotifArgs) -> dict:
    groups = [
        [_trajectory(RIGHT)],  # concluded in round 1: factor 1
        [_trajectory(R1, "r2", RIGHT)],  # in round 3 of phi = 3: factor 1 - (2/3)^2
        [_trajectory(R1, WRONG)],  # wrong: 0 whatever its rounds
    ]
    reward = FutureAccuracyReward(motif)
    rewards = reward._scores(groups, ["18"] * 3)
    metrics: dict = {}
    reward._log(metrics.__setitem__, rewards, groups, 0, 0.0, ["18"] * 3)
    return {"rewards": rewards, **metrics}


def test_future_accuracy_is_logged_undiscounted_beside_the_mean_efficiency():
    on = _logged(MotifArgs(round_end="model", max_rounds=3, efficiency_reward=True))
    late = 1 - (2 / 3) ** 2
    weight = MotifArgs().accuracy_reward_weight()
    assert on["rewards"] == pytest.approx([weight, weight * late, 0.0])  # the trained reward
    assert on["future_accuracy"] == pytest.approx(2 / 3)  # two of three right, no discount
    assert on["efficiency"] == pytest.approx((1 + late + (1 - (1 / 3) ** 2)) / 3)
    off = _logged(MotifArgs(round_end="model", max_rounds=3))
    assert off["future_accuracy"] == pytest.approx(2 / 3) and "efficiency" not in off
