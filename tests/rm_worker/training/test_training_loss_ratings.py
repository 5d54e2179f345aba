"""The rating term: per-response Likert ratings regressed by each objective's head, masked where missing."""

import math

import pytest
import torch

from rm_worker.training.batching import PairBatch
from rm_worker.training.loss import RatingMap, rating_accuracy, rating_loss, rating_targets
from rm_worker.training.metrics import PairMetrics

T, F = True, False
# Two pairs, columns helpful and harmless.
REWARDS_A = torch.tensor([[1.0, 0.0], [0.5, 2.0]])
REWARDS_B = torch.tensor([[-1.0, 3.0], [0.0, 1.0]])
# [pair, side (A, B), objective]; 0 where missing.
RATINGS = torch.tensor([[[7.0, 4.0], [1.0, 0.0]], [[5.5, 0.0], [0.0, 0.0]]])
RATED = torch.tensor([[[T, T], [T, F]], [[T, F], [F, F]]])
WEIGHTS = {"helpful": 2.0, "harmless": 0.5}


def test_ratings_map_to_targets_from_minus_one_to_one():
    assert rating_targets(torch.tensor([1.0, 4.0, 5.5, 7.0])).tolist() == [-1.0, 0.0, 0.5, 1.0]


def test_rating_loss_matches_hand_computation_with_missing_ratings_masked():
    total, per_objective = rating_loss(REWARDS_A, REWARDS_B, RATINGS, RATED, WEIGHTS, RatingMap(2))
    # The map starts as the identity (scale e^0 = 1, offset 0), so the prediction is the reward.
    # helpful: pair 0 A: (1 - 1)^2 = 0; pair 0 B: (-1 - (-1))^2 = 0; pair 1 A: (0.5 - 0.5)^2 = 0 -> 0
    # harmless: only pair 0 A is rated (4 -> target 0): (0 - 0)^2 = 0 -> 0
    assert per_objective["helpful"].item() == 0.0 and per_objective["harmless"].item() == 0.0
    assert total.item() == 0.0
    shifted = rating_loss(REWARDS_A + 1, REWARDS_B + 1, RATINGS, RATED, WEIGHTS, RatingMap(2))
    # Every prediction 1 above its target: helpful mean of three 1s = 1, harmless 1; total 2 * 1 + 0.5 * 1 = 2.5
    assert shifted[0].item() == pytest.approx(2.5)


def test_the_learned_scale_and_offset_enter_the_prediction():
    rating_map = RatingMap(2)
    with torch.no_grad():
        rating_map.log_scale.copy_(torch.tensor([math.log(2.0), 0.0]))
        rating_map.offset.copy_(torch.tensor([0.0, -1.0]))
    total, per_objective = rating_loss(REWARDS_A, REWARDS_B, RATINGS, RATED, WEIGHTS, rating_map)
    # helpful: 2r vs target: pair 0 A: (2 - 1)^2 = 1; pair 0 B: (-2 + 1)^2 = 1; pair 1 A: (1 - 0.5)^2 = 0.25
    #   mean = 2.25 / 3 = 0.75
    # harmless: pair 0 A: r - 1 = -1 vs 0 -> 1
    # total = 2 * 0.75 + 0.5 * 1 = 2.0
    assert per_objective["helpful"].item() == pytest.approx(0.75)
    assert per_objective["harmless"].item() == pytest.approx(1.0)
    assert total.item() == pytest.approx(2.0)


def test_missing_ratings_send_no_gradient_and_an_unrated_objective_gives_zero():
    rewards_a = REWARDS_A.clone().requires_grad_()
    rewards_b = REWARDS_B.clone().requires_grad_()
    rated = RATED.clone()
    rated[:, :, 1] = False  # harmless rated nowhere
    total, per_objective = rating_loss(rewards_a + 1, rewards_b + 1, RATINGS, rated, WEIGHTS, RatingMap(2))
    total.backward()
    assert per_objective["harmless"].item() == 0.0
    assert torch.all(rewards_a.grad[:, 1] == 0) and torch.all(rewards_b.grad[:, 1] == 0)
    assert rewards_b.grad[1, 0] == 0  # pair 1's B side is not rated
    # d/dr of 2 * mean over 3 of (r + 1 - t)^2 = 2 * 2 * 1 / 3 at each rated side
    assert rewards_a.grad[0, 0].item() == pytest.approx(4 / 3)


def test_rating_accuracy_counts_pairs_rated_differently_on_both_sides():
    accuracy, counted = rating_accuracy(REWARDS_A, REWARDS_B, RATINGS, RATED)
    # helpful: pair 0 rated 7 vs 1 and rewards 1 > -1 -> right; pair 1 has no B rating -> not counted.
    # harmless: pair 0's B side is not rated -> nothing counted -> NaN.
    assert counted.tolist() == [1, 0]
    assert accuracy[0].item() == 1.0 and math.isnan(accuracy[1])


def _batch(chosen_is_a, label_mask) -> PairBatch:
    return PairBatch(
        chosen_is_a=chosen_is_a, label_mask=label_mask, margins=torch.zeros(2, 2), ratings=RATINGS, rating_mask=RATED
    )


def test_metrics_add_the_rating_term_to_the_loss_and_rank_a_rating_only_split_by_its_ratings():
    rating_only = _batch(torch.ones(2, 2, dtype=torch.bool), torch.zeros(2, 2, dtype=torch.bool))
    metrics = PairMetrics(WEIGHTS, RatingMap(2), rating_weight=3.0)
    metrics.add(REWARDS_A + 1, REWARDS_B + 1, rating_only)
    summary = metrics.summary("eval")
    # No preference labeled: Bradley-Terry adds 0; the rating loss is 2.5 (see above), weighted by 3.
    assert summary["eval/rating_loss"] == pytest.approx(2.5)
    assert summary["eval/rating_loss/helpful"] == pytest.approx(1.0)
    assert summary["eval/loss"] == pytest.approx(7.5)
    assert summary["eval/rating_accuracy/helpful"] == 1.0 and "eval/rating_accuracy/harmless" not in summary
    assert summary["eval/accuracy"] == 1.0  # nothing labeled with a preference: the rating accuracy
    assert "eval/accuracy/helpful" not in summary


def test_without_a_rating_weight_the_metrics_are_the_pairwise_ones():
    labeled = _batch(torch.tensor([[T, T], [F, T]]), torch.tensor([[T, F], [T, F]]))
    with_ratings = PairMetrics(WEIGHTS, RatingMap(2), rating_weight=0.0)
    without = PairMetrics(WEIGHTS)
    for metrics in (with_ratings, without):
        metrics.add(REWARDS_A, REWARDS_B, labeled)
    assert with_ratings.summary("train") == without.summary("train")
    assert not any("rating" in key for key in without.summary("train"))
