"""Scalarizer: static default weights, linear schedules, the constrained mode's Lagrange multiplier."""

import pytest
import torch

from rm_worker.training import Scalarizer

OBJECTIVES = ["helpful", "harmless", "honest"]


def test_static_weights_default_to_the_house_weights_filtered_to_the_objectives():
    assert Scalarizer(OBJECTIVES).weights(0) == {"helpful": 0.40, "harmless": 0.45, "honest": 0.15}
    assert Scalarizer(["harmless", "helpful"]).weights(7) == {"harmless": 0.45, "helpful": 0.40}
    assert Scalarizer(["helpful", "concise"], weights={"helpful": 2.0}).weights(0) == {"helpful": 2.0, "concise": 1.0}
    assert Scalarizer(OBJECTIVES).multiplier is None


def test_combine_is_the_weighted_sum_for_tensors_and_lists():
    scalarizer = Scalarizer(OBJECTIVES)
    rewards = [[1.0, 2.0, -1.0], [0.0, -2.0, 4.0]]
    expected = [0.40 * 1 + 0.45 * 2 - 0.15 * 1, -0.45 * 2 + 0.15 * 4]
    assert scalarizer.combine(rewards) == pytest.approx(expected)
    combined = scalarizer.combine(torch.tensor(rewards, dtype=torch.float64))
    assert combined.dtype == torch.float64
    torch.testing.assert_close(combined, torch.tensor(expected, dtype=torch.float64))


def test_schedule_weights_move_linearly_from_start_to_end_over_the_steps():
    scalarizer = Scalarizer(
        ["helpful", "harmless"],
        mode="schedule",
        weights={"helpful": 1.0, "harmless": 0.0},
        weights_end={"helpful": 0.0, "harmless": 1.0},
        total_steps=5,
    )
    for step, fraction in [(0, 0.0), (1, 0.25), (2, 0.5), (3, 0.75), (4, 1.0), (9, 1.0)]:
        assert scalarizer.weights(step) == pytest.approx({"helpful": 1 - fraction, "harmless": fraction})
    # Without a step, the scalarizer's own step (advanced by update) is used.
    scalarizer.update(0, {"helpful": 0.0, "harmless": 0.0})
    assert scalarizer.weights() == pytest.approx({"helpful": 0.75, "harmless": 0.25})
    assert scalarizer.combine([[1.0, 1.0]]) == pytest.approx([1.0])


def test_schedule_keeps_the_start_weight_of_objectives_weights_end_does_not_name():
    scalarizer = Scalarizer(OBJECTIVES, mode="schedule", weights_end={"helpful": 0.0}, total_steps=3)
    assert scalarizer.weights(1) == pytest.approx({"helpful": 0.20, "harmless": 0.45, "honest": 0.15})


def test_lagrange_multiplier_grows_while_the_constraint_is_violated_and_shrinks_to_zero_once_it_holds():
    scalarizer = Scalarizer(
        ["helpful", "harmless"],
        mode="constrained",
        weights={"helpful": 1.0, "harmless": 0.0},
        constraint_objective="harmless",
        constraint_threshold=0.5,
        lagrange_lr=0.2,
    )
    assert scalarizer.multiplier == 0.0
    seen = []
    for step in range(3):  # harmless mean 0.0 < 0.5: λ += 0.2 · 0.5 each step
        scalarizer.update(step, {"helpful": 1.0, "harmless": 0.0})
        seen.append(scalarizer.multiplier)
    assert seen == pytest.approx([0.1, 0.2, 0.3])
    # The Lagrangian reward: Σ w_o R̂_o + λ R̂_c.
    assert scalarizer.combine([[2.0, 1.0]]) == pytest.approx([2.0 + 0.3 * 1.0])
    for step in range(3, 6):  # harmless mean 1.5 > 0.5: λ -= 0.2 · 1.0 each step, floored at 0
        scalarizer.update(step, {"helpful": 1.0, "harmless": 1.5})
        seen.append(scalarizer.multiplier)
    assert seen[3:] == pytest.approx([0.1, 0.0, 0.0])
    assert min(seen) >= 0.0
    assert scalarizer.weights() == {"helpful": 1.0, "harmless": 0.0}  # λ is reported apart from the weights


def test_multiplier_starts_at_lagrange_init_and_survives_a_state_round_trip():
    scalarizer = Scalarizer(
        ["helpful", "harmless"], mode="constrained", constraint_objective="harmless", lagrange_init=0.7
    )
    scalarizer.update(0, {"harmless": 0.0})
    restored = Scalarizer(["helpful", "harmless"], mode="constrained", constraint_objective="harmless")
    restored.load_state_dict(scalarizer.state_dict())
    assert restored.multiplier == pytest.approx(0.7)
    assert restored.step == 1


def test_constrained_mode_needs_a_configured_constraint_objective():
    with pytest.raises(ValueError, match="constraint_objective"):
        Scalarizer(["helpful"], mode="constrained", constraint_objective="harmless")
    with pytest.raises(ValueError, match="scalarization must be one of"):
        Scalarizer(["helpful"], mode="pareto")
