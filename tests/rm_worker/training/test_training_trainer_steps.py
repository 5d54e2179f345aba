"""The pieces of the reward-model loop on hand-checkable inputs: batches, one step, evaluation, best model."""

import math

import pytest
import torch

from rm_worker.training.batching import EncodedPairs, PairBatch
from rm_worker.training.checkpoint import TrainingPosition
from rm_worker.training.config import RewardModelConfig
from rm_worker.training.metrics import PairMetrics
from rm_worker.training.model import RewardModel
from rm_worker.training.trainer import (
    evaluate_pairs,
    keep_if_best,
    length_sorted_batches,
    make_batch,
    step_batches,
    total_steps_of,
    train_step,
)
from tests.tiny_models import make_tokenizer, tiny_bert

HIDDEN = 32  # tiny_bert's hidden size


def _frozen_model(weight: list[float]) -> RewardModel:
    """One head, frozen backbone: the reward of an embedding e is ``weight · e`` (bias 0)."""
    model = RewardModel(
        tiny_bert(), make_tokenizer("encoder"), ["helpful"], mode="frozen", pooling="mean", max_length=32
    )
    with torch.no_grad():
        model.heads["helpful"].weight.copy_(torch.tensor([weight + [0.0] * (HIDDEN - len(weight))]))
        model.heads["helpful"].bias.zero_()
    return model


def _vector(*values: float) -> torch.Tensor:
    return torch.tensor(list(values) + [0.0] * (HIDDEN - len(values)))


def _pair_batch(a: torch.Tensor, b: torch.Tensor, chosen_is_a: bool) -> PairBatch:
    """One labeled pair as cached embeddings (A row, then B row)."""
    return PairBatch(
        chosen_is_a=torch.tensor([[chosen_is_a]]),
        label_mask=torch.tensor([[True]]),
        margins=torch.zeros(1, 1),
        embeddings=torch.stack([a, b]),
    )


def test_step_batches_group_an_epochs_batches_per_optimizer_step_in_a_seeded_order():
    steps = step_batches([3] * 10, batch_size=2, accumulation=2, seed=7)
    assert [len(group) for group in steps] == [2, 2, 1]
    assert sorted(i for group in steps for batch in group for i in batch) == list(range(10))
    assert step_batches([3] * 10, batch_size=2, accumulation=2, seed=7) == steps


def test_length_sorted_batches_read_every_pair_once_shortest_first():
    assert length_sorted_batches([5, 1, 3, 2], 2) == [[1, 3], [2, 0]]


def test_make_batch_takes_the_cached_embeddings_or_pads_the_tokens():
    data = EncodedPairs(
        ids_a=[[1, 2], [3]],
        ids_b=[[4], [5, 6, 7]],
        chosen_is_a=torch.tensor([[True], [False]]),
        label_mask=torch.tensor([[True], [True]]),
        margins=torch.zeros(2, 1),
        truncated=0,
    )
    tokens = make_batch(data, [1, 0], pad_id=0, device=torch.device("cpu"))
    assert tokens.input_ids.tolist() == [[3, 0, 0], [1, 2, 0], [5, 6, 7], [4, 0, 0]]
    assert tokens.chosen_is_a.tolist() == [[False], [True]]
    cached = (torch.tensor([[10.0], [11.0]]), torch.tensor([[20.0], [21.0]]))
    embedded = make_batch(data, [1], pad_id=0, device=torch.device("cpu"), embeddings=cached)
    assert embedded.embeddings.tolist() == [[11.0], [21.0]] and embedded.input_ids is None


def test_total_steps_are_max_steps_or_epochs_of_accumulated_batches_but_at_least_min_steps():
    config = RewardModelConfig(batch_size=4, gradient_accumulation=2, epochs=2, min_steps=0,
                               objectives=["helpful", "harmless"])

    def steps(train_pairs, **changes):
        return total_steps_of(config.model_copy(update=changes), train_pairs)

    assert steps(10) == 4  # 3 micro-batches per epoch -> 2 steps per epoch
    assert steps(10, max_steps=9) == 9
    assert steps(10, min_steps=50) == 50
    assert steps(1000, min_steps=50) == 250
    assert steps(10, min_steps=50, max_steps=9) == 9
    assert steps(10, mode="frozen") == 2  # one fit per head


def test_train_step_averages_the_accumulated_gradients_and_reports_the_norm_before_clipping():
    # Rewards all start at 0, so each pair's loss is log 2 and dL/dr_chosen = -1/2: pair 1 (A chosen, e_A = (1, 0))
    # gives dL/dw = -1/2 (1, 0), pair 2 (B chosen, e_A = (0, 2)) gives +1/2 (0, 2); halved for two micro-batches.
    model = _frozen_model([0.0])
    batches = [_pair_batch(_vector(1), _vector(), True), _pair_batch(_vector(0, 2), _vector(), False)]
    optimizer = torch.optim.SGD(model.heads.parameters(), lr=1.0)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    window = PairMetrics({"helpful": 1.0})
    grad_norm = train_step(model, batches, {"helpful": 1.0}, optimizer, scheduler, 10.0, window)
    assert grad_norm.item() == pytest.approx(math.sqrt(0.25**2 + 0.5**2))
    assert model.heads["helpful"].weight[0, :3].tolist() == pytest.approx([0.25, -0.5, 0.0])
    assert window.summary("train")["train/loss"] == pytest.approx(math.log(2))


def test_train_step_clips_the_update_to_grad_clip():
    model = _frozen_model([0.0])
    batches = [_pair_batch(_vector(1), _vector(), True), _pair_batch(_vector(0, 2), _vector(), False)]
    optimizer = torch.optim.SGD(model.heads.parameters(), lr=1.0)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    train_step(model, batches, {"helpful": 1.0}, optimizer, scheduler, 0.25, PairMetrics({"helpful": 1.0}))
    assert model.heads["helpful"].weight.norm().item() == pytest.approx(0.25, rel=1e-4)


def test_evaluate_pairs_measures_accuracy_and_reward_stats_and_leaves_train_mode():
    model = _frozen_model([1.0])  # reward = first coordinate
    batches = [_pair_batch(_vector(2), _vector(1), True), _pair_batch(_vector(0), _vector(3), True)]
    metrics, stats = evaluate_pairs(model.train(), batches, {"helpful": 1.0}, "eval")
    assert metrics["eval/accuracy"] == 0.5  # the second pair ranks the rejected side higher
    assert metrics["eval/margin/helpful"] == pytest.approx(((2 - 1) + (0 - 3)) / 2)
    assert stats["helpful"]["mean"] == pytest.approx((2 + 0 + 1 + 3) / 4)
    assert model.training


def test_keep_if_best_saves_only_better_accuracy_or_equal_accuracy_with_lower_loss(tmp_path):
    model, position = _frozen_model([1.0]), TrainingPosition(step=2)
    stats = {"helpful": {"mean": 0.5, "std": 2.0}}
    assert keep_if_best(model, {"eval/accuracy": 0.5, "eval/loss": 0.7}, stats, position, tmp_path / "best")
    assert (position.best_step, position.best_accuracy, position.best_loss) == (2, 0.5, 0.7)
    assert RewardModel.from_pretrained(tmp_path / "best", device="cpu").normalization == stats
    position.step = 4
    assert not keep_if_best(model, {"eval/accuracy": 0.4, "eval/loss": 0.1}, stats, position, tmp_path / "best")
    assert not keep_if_best(model, {"eval/accuracy": 0.5, "eval/loss": 0.7}, stats, position, tmp_path / "best")
    assert position.best_step == 2
    assert keep_if_best(model, {"eval/accuracy": 0.5, "eval/loss": 0.6}, stats, position, tmp_path / "best")
    assert position.best_step == 4
