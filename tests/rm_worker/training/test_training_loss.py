"""The masked multi-objective Bradley-Terry loss and the metrics beside it."""

import math

import pytest
import torch

from rm_worker.training import RewardModel, bradley_terry_loss, mean_margin, pairwise_accuracy
from rm_worker.training.batching import encode_pairs, pad_token_id
from rm_worker.training.data import PreferencePair
from tests.tiny_models import make_tokenizer, tiny_bert

T, F = True, False
# Columns: helpful, harmless, honest (honest is labeled nowhere).
REWARDS_A = torch.tensor([[1.0, 0.0, 4.0], [0.0, 3.0, 0.0], [2.0, 5.0, 1.0]])
REWARDS_B = torch.tensor([[0.0, 0.0, 0.0], [1.0, 1.0, 2.0], [2.0, 9.0, 0.0]])
CHOSEN_IS_A = torch.tensor([[T, T, T], [F, T, F], [T, F, T]])
MASK = torch.tensor([[T, F, F], [T, T, F], [F, F, F]])
WEIGHTS = {"helpful": 2.0, "harmless": 0.5, "honest": 1.0}


def nll(x: float) -> float:
    """-log σ(x) = log(1 + e^-x)."""
    return math.log1p(math.exp(-x))


def test_loss_matches_hand_computation_with_weights_and_a_masked_objective():
    total, per_objective = bradley_terry_loss(REWARDS_A, REWARDS_B, CHOSEN_IS_A, MASK, WEIGHTS)
    # helpful: pair 0 chosen A: 1 - 0 = 1; pair 1 chosen B: 1 - 0 = 1; pair 2 masked.
    #   L = (nll(1) + nll(1)) / 2 = 0.313262
    # harmless: only pair 1, chosen A: 3 - 1 = 2 -> nll(2) = 0.126928
    # honest: no labeled pair -> 0 (not NaN)
    # total = 2.0 * 0.313262 + 0.5 * 0.126928 + 1.0 * 0 = 0.689988
    assert per_objective["helpful"].item() == pytest.approx(nll(1), abs=1e-6)
    assert per_objective["helpful"].item() == pytest.approx(0.313262, abs=1e-6)
    assert per_objective["harmless"].item() == pytest.approx(0.126928, abs=1e-6)
    assert per_objective["honest"].item() == 0.0
    assert total.item() == pytest.approx(0.689988, abs=1e-6)


def test_margins_are_subtracted_from_the_chosen_minus_rejected_difference():
    margins = torch.tensor([[1.0, 0.0, 7.0], [0.5, 2.0, 7.0], [0.0, 0.0, 7.0]])
    total, per_objective = bradley_terry_loss(REWARDS_A, REWARDS_B, CHOSEN_IS_A, MASK, WEIGHTS, margins)
    # helpful: pair 0: 1 - 1 = 0 -> log 2 = 0.693147; pair 1: 1 - 0.5 = 0.5 -> nll(0.5) = 0.474077
    #   L = (0.693147 + 0.474077) / 2 = 0.583612
    # harmless: pair 1: 2 - 2 = 0 -> log 2 = 0.693147
    # honest is masked, so its margin 7 changes nothing.
    # total = 2.0 * 0.583612 + 0.5 * 0.693147 = 1.513798
    assert per_objective["helpful"].item() == pytest.approx((math.log(2) + nll(0.5)) / 2, abs=1e-6)
    assert per_objective["harmless"].item() == pytest.approx(math.log(2), abs=1e-6)
    assert total.item() == pytest.approx(1.513798, abs=1e-6)


def test_an_unlabeled_objective_gives_zero_loss_and_zero_gradient():
    rewards_a = REWARDS_A.clone().requires_grad_()
    total, _ = bradley_terry_loss(rewards_a, REWARDS_B, CHOSEN_IS_A, MASK, WEIGHTS)
    total.backward()
    assert torch.all(rewards_a.grad[:, 2] == 0)
    assert torch.all(rewards_a.grad[2] == 0)  # pair 2 is labeled for nothing
    assert not torch.isnan(rewards_a.grad).any()


def test_weights_must_match_the_reward_columns():
    with pytest.raises(ValueError, match="3 reward columns but 2 weights"):
        bradley_terry_loss(REWARDS_A, REWARDS_B, CHOSEN_IS_A, MASK, {"helpful": 1.0, "harmless": 1.0})


def test_accuracy_and_margin_count_only_labeled_pairs():
    accuracy = pairwise_accuracy(REWARDS_A, REWARDS_B, CHOSEN_IS_A, MASK)
    margin = mean_margin(REWARDS_A, REWARDS_B, CHOSEN_IS_A, MASK)
    # helpful: differences 1 and 1 -> accuracy 1, margin 1; harmless: 2 -> 1, 2; honest: no labels -> NaN
    assert accuracy[:2].tolist() == [1.0, 1.0] and math.isnan(accuracy[2])
    assert margin[:2].tolist() == [1.0, 2.0] and math.isnan(margin[2])


@pytest.mark.parametrize("mode", ["multi_head", "separate"])
def test_a_pair_labeled_only_for_harmless_sends_no_gradient_to_other_heads(mode):
    torch.manual_seed(0)
    objectives = ["helpful", "harmless", "honest"]
    model = RewardModel(tiny_bert(), make_tokenizer(), objectives, mode=mode, max_length=32)
    pair = PreferencePair("p", "w1 w2 ?", "good safe", "bad harm", {"harmless": -2.0})
    encoded = encode_pairs([pair], model.tokenizer, objectives, max_length=32)
    batch = encoded.token_batch([0], pad_token_id(model.tokenizer))
    rewards = model(batch.input_ids, batch.attention_mask)
    loss, _ = bradley_terry_loss(
        rewards[:1], rewards[1:], batch.chosen_is_a, batch.label_mask, dict.fromkeys(objectives, 1.0)
    )
    loss.backward()

    def gradient_size(module) -> float:
        return sum(p.grad.abs().sum().item() for p in module.parameters() if p.grad is not None)

    assert gradient_size(model.heads["harmless"]) > 0
    assert gradient_size(model.heads["helpful"]) == 0
    assert gradient_size(model.heads["honest"]) == 0
    if mode == "separate":
        assert gradient_size(model.backbones["harmless"]) > 0
        assert gradient_size(model.backbones["helpful"]) == 0
        assert gradient_size(model.backbones["honest"]) == 0
    else:
        assert gradient_size(model.backbones["shared"]) > 0
