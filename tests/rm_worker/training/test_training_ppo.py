"""PPO: the arithmetic (GAE, KL, clipped losses, EOS masking) and the loop on a tiny random causal Llama."""


import pytest
import torch

from rm_worker.training import (
    Callbacks,
    PolicyWithValueHead,
    RewardModel,
    clipped_policy_loss,
    clipped_value_loss,
    compute_gae,
    kl_per_token,
    masked_whiten,
    response_mask,
    token_rewards,
    train_ppo,
)
from tests.tiny_models import (
    VOCAB,
    make_chat_tokenizer,
    make_tokenizer,
    tiny_bert,
    tiny_causal_lm,
    tiny_policy_factory,
    tiny_ppo_config,
    tiny_prompts,
)

pytestmark = pytest.mark.usefixtures("one_thread")

EOS = VOCAB["[EOS]"]


def count_words(*words):
    """A reward_fn: one column per word, +1 for each occurrence of it in the response."""

    def reward_fn(prompts, responses):
        return torch.tensor([[float(response.split().count(word)) for word in words] for response in responses])

    return reward_fn


class Recorder:
    def __init__(self, stop_after: int | None = None):
        self.metrics, self.samples, self.progress = {}, {}, []
        self.stop_after = stop_after

    def callbacks(self) -> Callbacks:
        return Callbacks(
            on_metrics=lambda step, values: self.metrics.setdefault(step, {}).update(values),
            on_samples=lambda step, rows: self.samples.__setitem__(step, rows),
            on_progress=lambda step, total: self.progress.append((step, total)),
            should_stop=lambda: self.stop_after is not None and self.steps_taken() >= self.stop_after,
        )

    def steps_taken(self) -> int:
        return max((step for step, _ in self.progress), default=0)


# --- arithmetic -----------------------------------------------------------------------------------------


def test_gae_matches_a_hand_computed_example():
    rewards = torch.tensor([[1.0, 0.0, 2.0], [1.0, 2.0, 5.0]])
    values = torch.tensor([[0.5, 1.0, 1.5], [0.5, 1.0, 9.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]])  # the second response ended after 2 tokens
    advantages, returns = compute_gae(rewards, values, mask, gamma=0.9, lam=0.8)
    # γλ = 0.72. Row 0:
    #   t=2: δ = 2 + 0.9·0 - 1.5 = 0.5                A = 0.5
    #   t=1: δ = 0 + 0.9·1.5 - 1.0 = 0.35             A = 0.35 + 0.72·0.5 = 0.71
    #   t=0: δ = 1 + 0.9·1.0 - 0.5 = 1.4              A = 1.4 + 0.72·0.71 = 1.9112
    # Row 1 (t=2 masked: its reward 5 and value 9 count for nothing, and the value after t=1 is 0):
    #   t=1: δ = 2 + 0.9·0 - 1.0 = 1.0                A = 1.0
    #   t=0: δ = 1 + 0.9·1.0 - 0.5 = 1.4              A = 1.4 + 0.72·1.0 = 2.12
    # returns = A + V on the response tokens.
    torch.testing.assert_close(advantages, torch.tensor([[1.9112, 0.71, 0.5], [2.12, 1.0, 0.0]]))
    torch.testing.assert_close(returns, torch.tensor([[2.4112, 1.71, 2.0], [2.62, 2.0, 0.0]]))


def test_whitened_advantages_have_mean_zero_and_unit_std_on_response_tokens_only():
    values = torch.tensor([[1.0, 2.0, 3.0], [4.0, 100.0, 100.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0], [1.0, 0.0, 0.0]])
    whitened = masked_whiten(values, mask)
    kept = whitened[mask.bool()]
    assert kept.mean().item() == pytest.approx(0.0, abs=1e-6)
    assert kept.std().item() == pytest.approx(1.0, abs=1e-4)
    assert whitened[1, 1:].tolist() == [0.0, 0.0]


def test_kl_is_zero_when_the_policy_is_the_reference():
    torch.manual_seed(0)
    policy = PolicyWithValueHead(tiny_causal_lm(), make_tokenizer("decoder"))
    input_ids = torch.randint(6, len(VOCAB), (3, 10))
    attention_mask = torch.ones_like(input_ids)
    attention_mask[0, :4] = 0  # left padding
    with torch.no_grad():
        logprobs, values = policy.response_logprobs(input_ids, attention_mask, response_start=6)
        with policy.reference():
            ref_logprobs, _ = policy.response_logprobs(input_ids, attention_mask, response_start=6, with_values=False)
    assert logprobs.shape == values.shape == (3, 4)
    # A fresh LoRA adapter has B = 0: adapters on and off give the same distribution.
    torch.testing.assert_close(logprobs, ref_logprobs, atol=0, rtol=0)
    for estimator in ("k1", "k3"):
        assert kl_per_token(logprobs, ref_logprobs, estimator).abs().max().item() == 0.0

    with torch.no_grad():
        for name, parameter in policy.model.named_parameters():
            if "lora_B" in name:
                parameter.normal_(std=0.5)
        moved, _ = policy.response_logprobs(input_ids, attention_mask, response_start=6, with_values=False)
    assert (moved - ref_logprobs).abs().max() > 1e-3
    assert (kl_per_token(moved, ref_logprobs, "k3") >= 0).all()  # k3 is never negative


def test_k1_and_k3_follow_their_formulas():
    logprobs, ref_logprobs = torch.tensor([-1.0, -2.0]), torch.tensor([-1.5, -1.0])
    torch.testing.assert_close(kl_per_token(logprobs, ref_logprobs, "k1"), torch.tensor([0.5, -1.0]))
    log_r = ref_logprobs - logprobs
    torch.testing.assert_close(kl_per_token(logprobs, ref_logprobs, "k3"), log_r.exp() - 1 - log_r)


@pytest.mark.parametrize(
    ("ratio", "advantage", "expected", "clipped"),
    [
        (1.0, 2.0, -2.0, False),
        (1.1, -2.0, 2.2, False),
        # Exactly at 1 ± ε both terms are equal (which one wins is rounding), so only the loss is checked.
        (1.2, 2.0, -2.4, None),
        (0.8, 2.0, -1.6, None),
        (1.2, -2.0, 2.4, None),
        (0.8, -2.0, 1.6, None),
        (1.5, 2.0, -2.4, True),  # beyond 1 + ε with A > 0: the gain is capped at (1 + ε)·A
        (0.5, 2.0, -1.0, False),  # below 1 - ε with A > 0: the pessimistic unclipped term
        (0.5, -2.0, 1.6, True),  # below 1 - ε with A < 0: capped at (1 - ε)·A
        (1.5, -2.0, 3.0, False),  # beyond 1 + ε with A < 0: the unclipped, larger loss
    ],
)
def test_clipped_policy_objective_at_and_beyond_the_clip_range(ratio, advantage, expected, clipped):
    old_logprobs = torch.tensor([[-1.0]])
    logprobs = (old_logprobs + torch.tensor(ratio).log()).requires_grad_()
    advantages, mask = torch.tensor([[advantage]]), torch.ones(1, 1)
    loss, clip_fraction, approx_kl = clipped_policy_loss(logprobs, old_logprobs, advantages, mask, cliprange=0.2)
    # loss = max(-A·ρ, -A·clip(ρ, 0.8, 1.2))
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    assert approx_kl.item() == pytest.approx(0.5 * torch.tensor(ratio).log().item() ** 2, rel=1e-5, abs=1e-12)
    if clipped is None:
        return
    assert clip_fraction.item() == (1.0 if clipped else 0.0)
    loss.backward()
    if clipped:
        assert logprobs.grad.item() == 0.0  # a clipped token pushes the policy no further
    else:
        assert logprobs.grad.item() == pytest.approx(-advantage * ratio, rel=1e-5)


def test_clipped_value_loss_takes_the_larger_of_the_two_errors():
    old_values = torch.tensor([[0.0, 0.0, 0.0]])
    values = torch.tensor([[0.5, 0.1, -0.5]])
    returns = torch.tensor([[1.0, 1.0, 0.0]])
    # V_clip = clip(V, -0.2, 0.2) = [0.2, 0.1, -0.2]
    # token 0: max((0.5-1)², (0.2-1)²) = 0.64; token 1: max(0.81, 0.81) = 0.81; token 2: max(0.25, 0.04) = 0.25
    loss = clipped_value_loss(values, old_values, returns, torch.ones(1, 3), cliprange_value=0.2)
    assert loss.item() == pytest.approx(0.5 * (0.64 + 0.81 + 0.25) / 3)


def test_tokens_after_the_first_eos_are_masked_and_the_score_lands_on_the_last_kept_token():
    responses = torch.tensor([[7, 8, EOS, 9, EOS], [7, 8, 9, 10, 11], [EOS, EOS, EOS, EOS, EOS]])
    mask, ended = response_mask(responses, EOS)
    assert mask.tolist() == [[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0]]
    assert ended.tolist() == [True, False, True]

    kl = torch.full((3, 5), 0.5)
    rewards = token_rewards(torch.tensor([1.0, 2.0, 3.0]), kl, mask, kl_coef=0.1)
    expected = [[-0.05, -0.05, 0.95, 0, 0], [-0.05, -0.05, -0.05, -0.05, 1.95], [2.95, 0, 0, 0, 0]]
    torch.testing.assert_close(rewards, torch.tensor(expected))


# --- the loop -------------------------------------------------------------------------------------------


def test_missing_eos_penalty_is_subtracted_from_responses_that_never_end(tmp_path):
    recorder = Recorder()
    config = tiny_ppo_config(missing_eos_penalty=2.0, eval_fraction=0.0)
    train_ppo(
        config,
        tiny_prompts(),
        tmp_path,
        callbacks=recorder.callbacks(),
        policy_factory=tiny_policy_factory,
        reward_fn=count_words("good"),
    )
    for metrics in recorder.metrics.values():
        unended = 1.0 - metrics["ppo/eos_fraction"]
        assert metrics["ppo/score"] == pytest.approx(metrics["ppo/reward/combined"] - 2.0 * unended)
        assert metrics["ppo/response_length"] <= config.max_new_tokens


def test_synthetic_reward_rises_under_ppo(tmp_path):
    recorder = Recorder()
    config = tiny_ppo_config(
        steps=30,
        batch_size=8,
        mini_batch_size=4,
        learning_rate=1e-2,
        max_new_tokens=8,
        init_kl_coef=0.01,
        missing_eos_penalty=None,
        sample_every=10,
        # The random tiny model's output layer has tiny weights: adapters in attention alone barely move its
        # next-token distribution, so the output layer gets an adapter too.
        lora_target_modules=["q_proj", "v_proj", "lm_head"],
    )
    result = train_ppo(
        config,
        tiny_prompts(),
        tmp_path,
        callbacks=recorder.callbacks(),
        policy_factory=tiny_policy_factory,
        reward_fn=count_words("good"),
    )
    rewards = [recorder.metrics[step]["ppo/reward/good"] for step in range(1, 31)]
    first, last = sum(rewards[:3]) / 3, sum(rewards[-3:]) / 3
    assert last > first + 1.0, rewards
    assert result.steps == 30 and not result.cancelled
    assert result.eval_after["good"]["raw"] > result.eval_before["good"]["raw"]
    assert sorted(recorder.samples) == [10, 20, 30]
    assert (result.adapter_dir / "adapter_config.json").is_file()
    assert (result.adapter_dir / "value_head.safetensors").is_file()


def test_metrics_samples_and_evaluation_report_every_objective(tmp_path):
    recorder = Recorder()
    config = tiny_ppo_config(
        objectives=["good", "safe"],
        steps=2,
        sample_every=1,
        scalarization="constrained",
        weights={"good": 1.0, "safe": 0.0},
        constraint_objective="safe",
        constraint_threshold=5.0,
        eval_fraction=0.3,
    )
    normalization = {"good": {"mean": 1.0, "std": 2.0}, "safe": {"mean": 0.0, "std": 0.5}}
    result = train_ppo(
        config,
        tiny_prompts(),
        tmp_path,
        callbacks=recorder.callbacks(),
        policy_factory=tiny_policy_factory,
        reward_fn=count_words("good", "safe"),
        reward_normalization=normalization,
    )
    expected = {
        "ppo/reward/good",
        "ppo/reward/safe",
        "ppo/reward_normalized/good",
        "ppo/reward_normalized/safe",
        "ppo/reward/combined",
        "ppo/score",
        "ppo/kl",
        "ppo/kl_coef",
        "ppo/weight/good",
        "ppo/weight/safe",
        "ppo/lagrange_multiplier",
        "ppo/policy_loss",
        "ppo/value_loss",
        "ppo/clip_fraction",
        "ppo/approx_kl",
        "ppo/response_length",
        "ppo/eos_fraction",
    }
    assert sorted(recorder.metrics) == [1, 2]
    for metrics in recorder.metrics.values():
        assert set(metrics) == expected
        assert metrics["ppo/reward_normalized/good"] == pytest.approx((metrics["ppo/reward/good"] - 1.0) / 2.0)
    # λ starts at 0 and grows: the mean normalized "safe" reward stays far below the threshold of 5.
    assert recorder.metrics[1]["ppo/lagrange_multiplier"] == 0.0
    assert recorder.metrics[2]["ppo/lagrange_multiplier"] > 0.0
    # The total before the policy loads ("0 / 2" from the start), again when the step clock starts, then each step.
    assert recorder.progress == [(0, 2), (0, 2), (1, 2), (2, 2)]
    row = recorder.samples[1][0]
    assert set(row) == {"prompt", "response", "rewards", "normalized", "combined"}
    assert isinstance(row["prompt"], str) and set(row["rewards"]) == {"good", "safe"}
    assert result.metrics == recorder.metrics[2]
    for evaluation in (result.eval_before, result.eval_after):
        assert set(evaluation) == {"good", "safe", "combined"}
        assert set(evaluation["good"]) == {"raw", "normalized"}
        assert evaluation["combined"] == pytest.approx(evaluation["good"]["normalized"])  # weights 1 and 0
    assert result.seconds_per_step > 0


@pytest.mark.parametrize(
    ("tokenizer", "chat_template"), [(lambda: make_tokenizer("encoder"), False), (make_chat_tokenizer, True)]
)
def test_default_reward_is_the_saved_reward_model_scored_and_normalized_per_head(tmp_path, tokenizer, chat_template):
    torch.manual_seed(0)
    reward_model = RewardModel(
        tiny_bert(), tokenizer(), ["helpful", "harmless"], max_length=64, chat_template=chat_template
    )
    reward_model.normalization = {"helpful": {"mean": 0.5, "std": 2.0}, "harmless": {"mean": -1.0, "std": 4.0}}
    reward_model.save_pretrained(tmp_path / "rm")
    recorder = Recorder()
    # Objectives in another order than the model's heads: columns are matched by name.
    config = tiny_ppo_config(
        objectives=["harmless", "helpful"],
        reward_model_dir=str(tmp_path / "rm"),
        steps=1,
        sample_every=1,
        eval_fraction=0.0,
    )
    train_ppo(
        config, tiny_prompts(), tmp_path / "ppo", callbacks=recorder.callbacks(), policy_factory=tiny_policy_factory
    )
    rows = recorder.samples[1]
    # Scored as the reward model reads text (its chat template, when it was trained with one).
    expected = reward_model.score_batch([row["prompt"] for row in rows], [row["response"] for row in rows])
    for row, scores in zip(rows, expected):
        assert row["rewards"] == pytest.approx(scores, abs=1e-5)
        assert row["normalized"]["harmless"] == pytest.approx((scores["harmless"] + 1.0) / 4.0, abs=1e-5)
        assert row["combined"] == pytest.approx(
            0.45 * row["normalized"]["harmless"] + 0.40 * row["normalized"]["helpful"], abs=1e-5
        )


def test_resume_continues_the_step_count_where_the_checkpoint_left_off(tmp_path):
    straight = Recorder()
    train_ppo(
        tiny_ppo_config(steps=4),
        tiny_prompts(),
        tmp_path / "straight",
        callbacks=straight.callbacks(),
        policy_factory=tiny_policy_factory,
        reward_fn=count_words("good"),
    )

    first, second = Recorder(), Recorder()
    train_ppo(
        tiny_ppo_config(steps=2),
        tiny_prompts(),
        tmp_path / "split",
        callbacks=first.callbacks(),
        policy_factory=tiny_policy_factory,
        reward_fn=count_words("good"),
    )
    result = train_ppo(
        tiny_ppo_config(steps=4),
        tiny_prompts(),
        tmp_path / "split",
        callbacks=second.callbacks(),
        policy_factory=tiny_policy_factory,
        reward_fn=count_words("good"),
        resume=True,
    )
    assert sorted(second.metrics) == [3, 4]
    assert result.steps == 4
    # Same batches, same RNG, same optimizer state: the resumed steps are the uninterrupted run's steps.
    for step in (3, 4):
        assert second.metrics[step] == pytest.approx(straight.metrics[step])

    with pytest.raises(ValueError, match="different learning_rate"):
        train_ppo(
            tiny_ppo_config(steps=6, learning_rate=1.0),
            tiny_prompts(),
            tmp_path / "split",
            policy_factory=tiny_policy_factory,
            reward_fn=count_words("good"),
            resume=True,
        )
    with pytest.raises(ValueError, match="no checkpoint"):
        train_ppo(
            tiny_ppo_config(),
            tiny_prompts(),
            tmp_path / "empty",
            policy_factory=tiny_policy_factory,
            reward_fn=count_words("good"),
            resume=True,
        )


def test_cooperative_cancel_stops_between_steps_and_can_be_resumed(tmp_path):
    recorder = Recorder(stop_after=2)
    result = train_ppo(
        tiny_ppo_config(steps=5),
        tiny_prompts(),
        tmp_path,
        callbacks=recorder.callbacks(),
        policy_factory=tiny_policy_factory,
        reward_fn=count_words("good"),
    )
    assert result.cancelled and result.steps == 2
    assert result.adapter_dir is None and result.eval_after == {}
    assert (tmp_path / "checkpoint" / "ppo_state.pt").is_file()

    resumed = train_ppo(
        tiny_ppo_config(steps=5),
        tiny_prompts(),
        tmp_path,
        policy_factory=tiny_policy_factory,
        reward_fn=count_words("good"),
        resume=True,
    )
    assert resumed.steps == 5 and not resumed.cancelled
    assert resumed.eval_before["good"] == result.eval_before["good"]  # measured once, before step 1
