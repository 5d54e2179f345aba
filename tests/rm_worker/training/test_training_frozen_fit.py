"""Frozen mode fits each head full-batch to convergence, its penalty chosen by cross-validation on the training side."""

import dataclasses
import math

import pytest
import torch

from rm_worker.training import Callbacks, RewardModel, bradley_terry_loss, split_pairs, train_reward_model
from rm_worker.training.frozen_fit import (
    L2_GRID,
    Head,
    HeadData,
    Standardization,
    data_loss,
    fit_frozen_head,
    fit_head,
    penalized_loss,
    side_rewards,
)
from tests.tiny_models import synthetic_pairs, tiny_bert_factory, tiny_config

pytestmark = pytest.mark.usefixtures("one_thread")


def head_data(embeddings_a, embeddings_b, chosen_is_a, label_mask=None, margins=None) -> HeadData:
    rows = len(chosen_is_a)
    return HeadData(
        embeddings_a=torch.tensor(embeddings_a, dtype=torch.float64),
        embeddings_b=torch.tensor(embeddings_b, dtype=torch.float64),
        chosen_is_a=torch.tensor(chosen_is_a),
        label_mask=torch.tensor(label_mask if label_mask is not None else [True] * rows),
        margins=torch.tensor(margins if margins is not None else [0.0] * rows, dtype=torch.float64),
    )


def random_data(rows: int, hidden: int, seed: int, signal: float) -> HeadData:
    """Pairs whose preference follows ``signal · w·(e_a - e_b)`` through a logistic (0: coin flips)."""
    generator = torch.Generator().manual_seed(seed)
    embeddings_a, embeddings_b = (torch.randn(rows, hidden, generator=generator, dtype=torch.float64) * 2 + 1
                                  for _ in range(2))
    direction = torch.randn(hidden, generator=generator, dtype=torch.float64)
    p_a = torch.sigmoid(signal * (embeddings_a - embeddings_b) @ direction)
    chosen_is_a = torch.rand(rows, generator=generator, dtype=torch.float64) < p_a
    return HeadData(embeddings_a, embeddings_b, chosen_is_a, torch.ones(rows, dtype=torch.bool),
                    torch.zeros(rows, dtype=torch.float64))


def test_the_fitted_loss_is_the_training_loss_with_ties_and_missing_labels_masked():
    data = head_data([[1.0, 0.0], [0.0, 2.0], [3.0, 1.0], [5.0, 5.0]], [[0.0, 1.0], [1.0, 1.0], [0.0, 0.0], [0.0, 0.0]],
                     chosen_is_a=[True, False, True, True], label_mask=[True, True, True, False],
                     margins=[0.5, 0.0, 1.0, 0.0])
    head = Head(torch.tensor([0.3, -0.7], dtype=torch.float64), torch.tensor(2.0, dtype=torch.float64))
    rewards_a, rewards_b = side_rewards(head, data)
    expected, _ = bradley_terry_loss(rewards_a[:, None], rewards_b[:, None], data.chosen_is_a[:, None],
                                     data.label_mask[:, None], {"helpful": 1.0}, data.margins[:, None])
    # By hand, r_chosen - r_rejected - m of the three labeled pairs: 2.3 - 1.3 - 0.5, 1.6 - 0.6, 2.2 - 2.0 - 1.0.
    by_hand = [math.log(1 + math.exp(-z)) for z in (0.5, 1.0, -0.8)]
    assert data_loss(head, data).item() == pytest.approx(expected.item()) == pytest.approx(sum(by_hand) / 3)


def test_a_fit_converges_to_the_penalized_optimum():
    # One labeled pair, difference 1, l2 = 1: the minimum of softplus(-w) + w²/2 solves w = σ(-w).
    data = head_data([[1.0]], [[0.0]], chosen_is_a=[True])
    weight = fit_head(data, l2=1.0).weight.item()
    assert weight == pytest.approx(1 / (1 + math.exp(weight)), abs=1e-5) and weight == pytest.approx(0.4011, abs=1e-4)

    # Correlated dimensions (what embeddings have) with a weak penalty: the slow case for plain L-BFGS.
    data = random_data(300, 8, seed=0, signal=1.0)
    mixing = torch.eye(8, dtype=torch.float64) + 0.9
    data = data.with_embeddings(data.embeddings_a @ mixing, data.embeddings_b @ mixing)
    fitted = fit_head(data, l2=0.01)
    weight = fitted.weight.clone().requires_grad_()
    penalized_loss(Head(weight, fitted.bias), data, 0.01).backward()
    assert weight.grad.abs().max() < 1e-4
    # The same optimum as plain L-BFGS in the embeddings' own coordinates, run far longer.
    plain = torch.zeros(8, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([plain], max_iter=5000, tolerance_grad=1e-12, tolerance_change=1e-15,
                                  line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        loss = penalized_loss(Head(plain, fitted.bias), data, 0.01)
        loss.backward()
        return loss

    optimizer.step(closure)
    assert torch.allclose(fitted.weight, plain.detach(), atol=1e-4)
    assert penalized_loss(fitted, data, 0.01).item() == pytest.approx(closure().item(), abs=1e-9)


def test_the_standardization_is_folded_into_the_head_so_raw_embeddings_score_as_fitted():
    data = random_data(200, 6, seed=1, signal=1.0)
    standardization = Standardization.of(data)
    standardized = standardization.apply(data)
    head = fit_head(standardized, l2=0.1)
    raw_head = standardization.fold_into(head)
    assert torch.allclose(raw_head.rewards(data.embeddings_a), head.rewards(standardized.embeddings_a))
    assert torch.allclose(raw_head.rewards(data.embeddings_b), head.rewards(standardized.embeddings_b))
    # Centered on the training side: the fitted head's mean reward there is 0.
    assert torch.cat(side_rewards(raw_head, data)).mean().item() == pytest.approx(0.0)


def test_cross_validation_penalizes_noise_and_not_signal():
    signal = fit_frozen_head(random_data(400, 20, seed=2, signal=3.0), l2=None, folds=5, seed=0)
    noise = fit_frozen_head(random_data(400, 20, seed=2, signal=0.0), l2=None, folds=5, seed=0)
    assert signal.l2 in L2_GRID and noise.l2 in L2_GRID
    # Coin flips still correlate with some direction by chance; the penalty chosen for them is far stronger.
    assert noise.l2 >= 100 * signal.l2 and noise.head.weight.norm() < 0.1 * signal.head.weight.norm()
    assert signal.cv_accuracy > 0.8 and signal.cv_loss < 0.4 and noise.cv_loss > math.log(2) - 0.02
    assert set(signal.metrics("helpful")) == {"fit/l2/helpful", "fit/cv_loss/helpful", "fit/cv_accuracy/helpful"}


def test_a_given_penalty_skips_cross_validation_and_too_few_pairs_take_the_strongest():
    given = fit_frozen_head(random_data(50, 4, seed=3, signal=1.0), l2=0.5, folds=5, seed=0)
    assert given.l2 == 0.5 and given.cv_loss is None and given.metrics("o") == {"fit/l2/o": 0.5}
    single = fit_frozen_head(head_data([[1.0, 2.0]], [[0.0, 1.0]], chosen_is_a=[False]), l2=None, folds=5, seed=0)
    assert single.l2 == max(L2_GRID) and single.cv_loss is None


def train(config, pairs, output_dir, **kwargs):
    return train_reward_model(config, pairs, output_dir, backbone_factory=tiny_bert_factory, **kwargs)


def test_a_frozen_run_fits_each_head_reports_its_penalty_and_progress_and_exports_it(tmp_path):
    reported, progress = [], []
    callbacks = Callbacks(on_metrics=lambda step, m: reported.append((step, m)),
                          on_progress=lambda *a: progress.append(a))
    result = train(tiny_config(mode="frozen", max_steps=2), synthetic_pairs(60), tmp_path, callbacks=callbacks)

    # The total before the backbone loads, again when the step clock starts, then one step per head.
    assert progress == [(0, 2), (0, 2), (1, 2), (2, 2)] and result.steps == 2 and not result.cancelled
    metrics = result.metrics
    for objective in ("helpful", "harmless"):
        assert metrics[f"fit/l2/{objective}"] in L2_GRID and 0.5 < metrics[f"fit/cv_accuracy/{objective}"] <= 1
        assert metrics[f"eval/loss/{objective}"] < math.log(2) - 0.1
    assert [step for step, m in reported if "fit/l2/helpful" in m] == [1]
    assert "train/learning_rate/heads" not in metrics
    model = RewardModel.from_pretrained(result.model_dir)
    assert model.score("w1 ?", "w2 good safe")["helpful"] > model.score("w1 ?", "w2 bad safe")["helpful"]


def test_the_held_out_pairs_never_reach_the_fit(tmp_path):
    pairs = synthetic_pairs(60)
    config = tiny_config(mode="frozen")
    _, held_out = split_pairs(pairs, config.eval_fraction, config.seed)
    flipped = {pair.id for pair in held_out}
    relabeled = [
        type(pair)(pair.id, pair.prompt, pair.response_a, pair.response_b,
                   {key: -score for key, score in pair.scores.items()} if pair.id in flipped else pair.scores)
        for pair in pairs
    ]
    first, second = train(config, pairs, tmp_path / "one"), train(config, relabeled, tmp_path / "two")
    fitted = {key: value for key, value in first.metrics.items() if key.startswith(("fit/", "train/"))}
    assert fitted == {key: value for key, value in second.metrics.items() if key.startswith(("fit/", "train/"))}
    assert first.metrics["eval/accuracy"] > 0.9 > 0.1 > second.metrics["eval/accuracy"]


def test_a_frozen_run_stops_between_heads_and_a_restart_fits_again(tmp_path):
    config, pairs = tiny_config(mode="frozen"), synthetic_pairs(40)
    progress = []
    stopped = train(config, pairs, tmp_path / "run", callbacks=Callbacks(
        on_progress=lambda step, total: progress.append(step), should_stop=lambda: max(progress, default=0) >= 1))
    assert stopped.cancelled and stopped.steps == 1 and stopped.model_dir is None

    resumed_at = []
    restarted = train(config, pairs, tmp_path / "run", resume=True, callbacks=Callbacks(on_resume=resumed_at.append))
    straight = train(config, pairs, tmp_path / "straight")
    assert resumed_at == [0] and restarted.steps == 2 and restarted.metrics == straight.metrics


def test_an_objective_weighted_zero_keeps_its_head(tmp_path):
    result = train(tiny_config(mode="frozen", loss_weights={"harmless": 0.0}), synthetic_pairs(40), tmp_path)
    assert "fit/l2/helpful" in result.metrics and "fit/l2/harmless" not in result.metrics


def test_a_frozen_run_with_no_head_to_fit_is_an_error_not_a_model_of_unfitted_heads(tmp_path, caplog):
    pairs = synthetic_pairs(20)
    helpful_only = [dataclasses.replace(pair, scores={"helpful": pair.scores["helpful"]}) for pair in pairs]
    with pytest.raises(ValueError, match="no objective weighted above 0 has either in the training split"):
        train(tiny_config(mode="frozen", loss_weights={"helpful": 0.0}), helpful_only, tmp_path)
    assert "frozen head harmless: no labeled preference or rating in the training split" in caplog.text
