"""The pieces of one PPO step on hand-checkable inputs: rollout, scores, advantages/returns, update, metrics."""

import pytest
import torch
from transformers import GenerationConfig

from rm_worker.training.policy import PolicyWithValueHead
from rm_worker.training.ppo import (
    SAMPLE_ROWS,
    Experience,
    Rollout,
    Scores,
    advantages_and_returns,
    draw_batch,
    experience_of,
    ppo_update,
    rollout,
    sample_rows,
    score_rollout,
    step_metrics,
)
from rm_worker.training.scalarization import Scalarizer
from tests.tiny_models import VOCAB, tiny_policy_factory, tiny_ppo_config, tiny_prompts

pytestmark = pytest.mark.usefixtures("one_thread")

EOS = VOCAB["[EOS]"]


def _rollout_of(responses: list[str], ended: list[bool], mask: list[list[float]]) -> Rollout:
    """A rollout with only what scoring and metrics read."""
    return Rollout(
        prompts=[f"p{i}" for i in range(len(responses))],
        responses=responses,
        input_ids=torch.zeros(len(responses), 1, dtype=torch.long),
        attention_mask=torch.ones(len(responses), 1, dtype=torch.long),
        prompt_width=1,
        mask=torch.tensor(mask),
        ended=torch.tensor(ended),
    )


def test_advantages_and_returns_of_a_three_token_response_match_a_hand_computation():
    # One response of 3 tokens (the 4th is past its EOS). k1 KL = log π - log π_ref = (0.1, 0.2, 0.0).
    experience = Experience(
        logprobs=torch.tensor([[-1.0, -2.0, -0.5, -3.0]]),
        ref_logprobs=torch.tensor([[-1.1, -2.2, -0.5, -3.5]]),
        values=torch.tensor([[0.5, 0.2, 0.4, 0.0]]),
    )
    mask = torch.tensor([[1.0, 1.0, 1.0, 0.0]])
    kl, advantages, returns = advantages_and_returns(
        torch.tensor([1.0]), experience, mask, kl_coef=0.5, kl_estimator="k1", gamma=0.9, lam=0.8, whiten=False
    )
    # rewards = -0.5·KL plus the score 1.0 on the last token: (-0.05, -0.1, 1.0, 0); γλ = 0.72.
    #   t=2: δ = 1.0 + 0.9·0 - 0.4 = 0.6        A = 0.6
    #   t=1: δ = -0.1 + 0.9·0.4 - 0.2 = 0.06     A = 0.06 + 0.72·0.6 = 0.492
    #   t=0: δ = -0.05 + 0.9·0.2 - 0.5 = -0.37   A = -0.37 + 0.72·0.492 = -0.01576
    torch.testing.assert_close(kl, torch.tensor([[0.1, 0.2, 0.0, 0.0]]))
    torch.testing.assert_close(advantages, torch.tensor([[-0.01576, 0.492, 0.6, 0.0]]))
    torch.testing.assert_close(returns, torch.tensor([[0.48424, 0.692, 1.0, 0.0]]))

    _, whitened, same_returns = advantages_and_returns(
        torch.tensor([1.0]), experience, mask, kl_coef=0.5, kl_estimator="k1", gamma=0.9, lam=0.8, whiten=True
    )
    kept = whitened[0, :3]
    assert kept.mean().item() == pytest.approx(0.0, abs=1e-6)
    assert kept.std().item() == pytest.approx(1.0, abs=1e-4)
    assert whitened[0, 3].item() == 0.0
    torch.testing.assert_close(same_returns, returns)  # value targets are never whitened


def test_score_rollout_normalizes_combines_and_penalizes_responses_without_eos():
    def score(prompts, responses):
        raw = torch.tensor([[1.0, 4.0], [3.0, 0.0]])
        return raw, raw / 2

    scalarizer = Scalarizer(["a", "b"], weights={"a": 0.25, "b": 0.75})
    scores = score_rollout(score, _rollout_of(["x", "y"], [True, False], [[1.0], [1.0]]), scalarizer, 1.5)
    torch.testing.assert_close(scores.normalized, torch.tensor([[0.5, 2.0], [1.5, 0.0]]))
    torch.testing.assert_close(scores.combined, torch.tensor([0.25 * 0.5 + 0.75 * 2.0, 0.25 * 1.5]))
    torch.testing.assert_close(scores.penalized, torch.tensor([1.625, 0.375 - 1.5]))
    no_penalty = score_rollout(score, _rollout_of(["x", "y"], [True, False], [[1.0], [1.0]]), scalarizer, None)
    torch.testing.assert_close(no_penalty.penalized, no_penalty.combined)


def test_step_metrics_are_batch_means_under_their_keys():
    scores = Scores(
        raw=torch.tensor([[1.0, 4.0], [3.0, 0.0]]),
        normalized=torch.tensor([[0.5, 2.0], [1.5, 0.0]]),
        combined=torch.tensor([1.0, 2.0]),
        penalized=torch.tensor([1.0, 0.0]),
    )
    rolled = _rollout_of(["x", "y"], [True, False], [[1.0, 1.0, 0.0], [1.0, 1.0, 1.0]])
    kl = torch.tensor([[0.1, 0.3, 0.0], [0.2, 0.2, 0.2]])
    losses = {"policy_loss": -0.1, "value_loss": 0.2, "clip_fraction": 0.0, "approx_kl": 0.01}
    metrics = step_metrics(["a", "b"], scores, {"a": 0.4, "b": 0.6}, None, losses, kl, 0.05, rolled)
    assert metrics == pytest.approx(
        {
            "ppo/reward/a": 2.0,
            "ppo/reward/b": 2.0,
            "ppo/reward_normalized/a": 1.0,
            "ppo/reward_normalized/b": 1.0,
            "ppo/reward/combined": 1.5,
            "ppo/score": 0.5,
            "ppo/weight/a": 0.4,
            "ppo/weight/b": 0.6,
            "ppo/policy_loss": -0.1,
            "ppo/value_loss": 0.2,
            "ppo/clip_fraction": 0.0,
            "ppo/approx_kl": 0.01,
            "ppo/kl": (0.4 + 0.6) / 2,
            "ppo/kl_coef": 0.05,
            "ppo/response_length": 2.5,
            "ppo/eos_fraction": 0.5,
        }
    )
    constrained = step_metrics(["a", "b"], scores, {"a": 0.4, "b": 0.6}, 0.3, losses, kl, 0.05, rolled)
    assert constrained["ppo/lagrange_multiplier"] == 0.3


def test_sample_rows_pair_each_response_with_its_rewards_and_stop_at_the_row_limit():
    count = SAMPLE_ROWS + 2
    raw = torch.arange(count, dtype=torch.float).unsqueeze(1)
    scores = Scores(raw=raw, normalized=raw / 4, combined=raw.squeeze(1) / 4, penalized=raw.squeeze(1))
    rows = sample_rows(["a"], _rollout_of([f"r{i}" for i in range(count)], [True] * count, [[1.0]] * count), scores)
    assert len(rows) == SAMPLE_ROWS
    assert rows[3] == {"prompt": "p3", "response": "r3", "rewards": {"a": 3.0}, "normalized": {"a": 0.75},
                       "combined": 0.75}


def test_draw_batch_is_seeded_by_step_and_repeats_prompts_only_when_there_are_too_few():
    prompts = [f"p{i}" for i in range(10)]
    first = draw_batch(prompts, 4, seed=1, step=0)
    assert len(set(first)) == 4 and draw_batch(prompts, 4, seed=1, step=0) == first
    assert draw_batch(prompts, 4, seed=1, step=1) != first
    assert len(draw_batch(prompts[:2], 4, seed=1, step=0)) == 4


@pytest.fixture
def policy():
    return PolicyWithValueHead.from_config(tiny_ppo_config(), tiny_policy_factory)


def test_rollout_masks_each_response_after_its_first_eos_and_the_fresh_adapters_are_the_reference(policy):
    config = tiny_ppo_config(max_new_tokens=6)
    prompts = tiny_prompts(4)
    torch.manual_seed(0)
    rolled = rollout(policy, prompts, config, _sampling(policy, config))
    assert rolled.prompts == prompts and len(rolled.responses) == 4
    responses = rolled.input_ids[:, rolled.prompt_width :]
    assert rolled.mask.shape == responses.shape and responses.shape[1] <= 6
    for row, mask, ended in zip(responses.tolist(), rolled.mask.tolist(), rolled.ended.tolist()):
        kept = int(sum(mask))
        assert ended == (EOS in row)
        assert kept == (row.index(EOS) + 1 if ended else len(row))
    torch.testing.assert_close(rolled.attention_mask[:, rolled.prompt_width :], rolled.mask.long())

    experience = experience_of(policy, rolled, config.temperature)
    # LoRA's B matrices start at zero: before any update the policy is its reference, so the KL is 0.
    torch.testing.assert_close(experience.logprobs * rolled.mask, experience.ref_logprobs * rolled.mask)
    assert (experience.values * (1 - rolled.mask)).abs().sum().item() == 0.0


def _sampling(policy, config) -> GenerationConfig:
    return GenerationConfig(
        do_sample=True,
        max_new_tokens=config.max_new_tokens,
        pad_token_id=policy.tokenizer.pad_token_id,
        eos_token_id=policy.tokenizer.eos_token_id,
    )


def test_ppo_update_with_zero_advantages_at_the_value_targets_has_zero_losses(policy):
    config = tiny_ppo_config(ppo_epochs=1, mini_batch_size=4)
    torch.manual_seed(0)
    rolled = rollout(policy, tiny_prompts(4), config, _sampling(policy, config))
    experience = experience_of(policy, rolled, config.temperature)
    optimizer = torch.optim.AdamW(policy.trainable_parameters(), lr=1e-3)
    losses = ppo_update(
        policy, optimizer, rolled, experience, torch.zeros_like(rolled.mask), experience.values, config
    )
    assert losses == {"policy_loss": 0.0, "value_loss": 0.0, "clip_fraction": 0.0, "approx_kl": 0.0}
    assert not policy.training


def test_ppo_update_takes_one_optimizer_step_per_mini_batch_per_epoch(policy):
    config = tiny_ppo_config(ppo_epochs=2, mini_batch_size=2, batch_size=4)
    torch.manual_seed(0)
    rolled = rollout(policy, tiny_prompts(4), config, _sampling(policy, config))
    experience = experience_of(policy, rolled, config.temperature)
    optimizer = torch.optim.AdamW(policy.trainable_parameters(), lr=1e-2)
    head_before = policy.value_head.weight.detach().clone()
    advantages = torch.ones_like(rolled.mask) * rolled.mask
    losses = ppo_update(policy, optimizer, rolled, experience, advantages, experience.values + 1.0, config)
    assert {int(state["step"]) for state in optimizer.state.values()} == {4}  # 2 epochs x 2 mini-batches
    assert losses["value_loss"] > 0 and not torch.equal(policy.value_head.weight, head_before)
