"""The rating term of the frozen full-batch fit: hand-computed loss, cross-validation on rated folds, and a
rating-only frozen run."""

import pytest
import torch

from rm_worker.training import RewardModel, train_reward_model
from rm_worker.training.frozen_fit import Head, HeadData, Validation, data_loss, fit_frozen_head
from tests.tiny_models import rated_pairs, tiny_bert_factory, tiny_config

T, F = True, False


def rated_data(rating_weight: float = 2.0) -> HeadData:
    """Two pairs of 1-d embeddings: pair 0 labeled (A chosen) and rated A 7, B 1; pair 1 a tie rated A 4 only."""
    return HeadData(
        embeddings_a=torch.tensor([[1.0], [2.0]], dtype=torch.float64),
        embeddings_b=torch.tensor([[0.0], [3.0]], dtype=torch.float64),
        chosen_is_a=torch.tensor([T, F]),
        label_mask=torch.tensor([T, F]),
        margins=torch.zeros(2, dtype=torch.float64),
        ratings=torch.tensor([[7.0, 1.0], [4.0, 0.0]], dtype=torch.float64),
        rating_mask=torch.tensor([[T, T], [T, F]]),
        rating_weight=rating_weight,
    )


HEAD = Head(torch.tensor([0.5], dtype=torch.float64), torch.tensor(0.25, dtype=torch.float64))


def test_the_rating_term_adds_the_weighted_squared_error_of_each_rated_responses_reward():
    # Bradley-Terry: pair 0, r_A - r_B = 0.5 * (1 - 0) = 0.5 -> softplus(-0.5) = 0.474077
    # Ratings -> targets: 7 -> 1, 1 -> -1, 4 -> 0. Rewards 0.5e + 0.25: A0 0.75, B0 0.25, A1 1.25.
    #   squared errors: (0.75 - 1)^2 = 0.0625, (0.25 + 1)^2 = 1.5625, (1.25 - 0)^2 = 1.5625 -> mean 1.0625
    # total = 0.474077 + 2 * 1.0625 = 2.599077
    assert data_loss(HEAD, rated_data()).item() == pytest.approx(0.474077 + 2 * 1.0625, abs=1e-6)
    assert data_loss(HEAD, rated_data(rating_weight=0.0)).item() == pytest.approx(0.474077, abs=1e-6)


def test_a_fold_takes_its_rows_ratings_and_keeps_the_weight():
    fold = rated_data().rows(torch.tensor([F, T]))
    assert fold.ratings.tolist() == [[4.0, 0.0]] and fold.rating_weight == 2.0
    assert (fold.labeled, fold.trainable) == (0, 1)
    # Only A1 rated: (1.25 - 0)^2 = 1.5625, weighted 2; no labeled pair, no Bradley-Terry term.
    assert data_loss(HEAD, fold).item() == pytest.approx(3.125)


def test_validation_of_a_rated_fold_without_preferences_has_a_loss_and_no_accuracy():
    scores = Validation().plus(HEAD, rated_data().rows(torch.tensor([F, T])))
    assert scores.loss == pytest.approx(3.125) and scores.accuracy is None
    both = scores.plus(HEAD, rated_data().rows(torch.tensor([T, F])))
    # Bradley-Terry 0.474077 over 1 pair, rating term 2 * (0.0625 + 1.5625 + 1.5625) over 3 responses.
    assert both.loss == pytest.approx(0.474077 + 2 * 3.1875 / 3, abs=1e-6) and both.accuracy == 1.0


def test_a_head_with_ratings_only_is_fitted_by_cross_validated_ridge_regression():
    generator = torch.Generator().manual_seed(0)
    embeddings = torch.randn(60, 2, 3, generator=generator, dtype=torch.float64)
    ratings = (4 + 2 * embeddings[..., 0]).clamp(1, 7)  # the first feature drives the rating
    data = HeadData(
        embeddings[:, 0], embeddings[:, 1], torch.ones(60, dtype=torch.bool), torch.zeros(60, dtype=torch.bool),
        torch.zeros(60, dtype=torch.float64), ratings, torch.ones(60, 2, dtype=torch.bool), rating_weight=1.0,
    )
    fit = fit_frozen_head(data, l2=None, folds=5, seed=0)
    assert fit.folds == 5 and fit.cv_accuracy is None and fit.cv_loss < 0.1
    weight = fit.head.weight
    assert weight[0] > 0.4 and weight[1:].abs().max() < 0.1 * weight[0]


@pytest.mark.parametrize(("best", "worst"), [("good", "bad"), ("bad", "good")])
def test_a_rating_only_frozen_run_fits_heads_that_rank_by_rating(tmp_path, one_thread, best, worst):
    config = tiny_config(objectives=["helpful"], mode="frozen")
    result = train_reward_model(config, rated_pairs(80, best=best), tmp_path, backbone_factory=tiny_bert_factory)
    assert "fit/l2/helpful" in result.metrics and "fit/cv_accuracy/helpful" not in result.metrics
    assert result.metrics["eval/rating_accuracy/helpful"] >= 0.9
    model = RewardModel.from_pretrained(result.model_dir)
    assert model.score("w3 w4 ?", f"w5 {best}")["helpful"] > model.score("w3 w4 ?", f"w5 {worst}")["helpful"]
