"""Ratings as a training signal: read from a file, kept for training, batched, and learned by the heads."""

import json

import pytest
import torch

from rm_worker.training import Callbacks, RewardModel, load_pairs, select_trainable_pairs, train_reward_model
from rm_worker.training.batching import encode_pairs
from rm_worker.training.data import PreferencePair
from tests.tiny_models import make_tokenizer, rated_pairs, synthetic_pairs, tiny_bert_factory, tiny_config


def line(**fields) -> str:
    return json.dumps({"prompt": "w1 ?", "response_a": "good", "response_b": "bad", **fields})


def test_a_files_ratings_are_read_per_objective_and_side():
    (pair,) = load_pairs(
        [line(labels={"helpful": "tie"}, ratings={"helpful": {"a": 5.5, "b": 2}, "harmless": {"a": None, "b": 7}})]
    )
    assert pair.ratings == {"helpful": (5.5, 2.0), "harmless": (None, 7.0)}
    (only_helpful,) = load_pairs([line(ratings={"helpful": {"a": 5}, "harmless": {"b": 1}})], ["helpful"])
    assert only_helpful.ratings == {"helpful": (5.0, None)}
    (unrated,) = load_pairs([line(ratings={"helpful": {"a": None, "b": None}})])
    assert unrated.ratings == {}


@pytest.mark.parametrize(
    ("ratings", "message"),
    [
        ([5, 3], "'ratings' must be an object"),
        ({"helpful": 5}, "ratings 'helpful' must be an object"),
        ({"helpful": {"a": 8}}, "rating helpful.a must be a number from 1 to 7, got 8"),
        ({"helpful": {"b": 0.5}}, "rating helpful.b must be a number from 1 to 7"),
        ({"helpful": {"a": "5"}}, "rating helpful.a must be a number"),
        ({"helpful": {"a": True}}, "rating helpful.a must be a number"),
    ],
)
def test_a_bad_rating_names_its_line_and_field(ratings, message):
    with pytest.raises(ValueError, match=f"line 2: {message}"):
        load_pairs([line(), line(ratings=ratings)])


PAIRS = [
    PreferencePair("preferred", "p", "a", "b", {"helpful": -2.0}),
    PreferencePair("tied-rated", "p", "a", "b", {"helpful": 0.0}, ratings={"helpful": (6.0, 2.0)}),
    PreferencePair("unlabeled-rated", "p", "a", "b", {}, ratings={"harmless": (None, 3.0)}),
    PreferencePair("tied", "p", "a", "b", {"helpful": 0.0}),
    PreferencePair("rated-elsewhere", "p", "a", "b", {}, ratings={"honest": (1.0, 7.0)}),
]


def test_rated_pairs_without_a_preference_are_kept_when_ratings_are_used():
    used, report = select_trainable_pairs(PAIRS, ["helpful", "harmless"], use_ratings=True)
    assert [p.id for p in used] == ["preferred", "tied-rated", "unlabeled-rated"]
    assert (report.excluded_all_ties, report.excluded_unlabeled) == (1, 1)
    assert report.objectives["helpful"].rated == 1 and report.objectives["harmless"].rated == 1
    without, _ = select_trainable_pairs(PAIRS, ["helpful", "harmless"])
    assert [p.id for p in without] == ["preferred"]


def test_encoded_pairs_carry_each_sides_rating_and_whether_it_is_there():
    encoded = encode_pairs(PAIRS[:3], make_tokenizer(), ["helpful", "harmless"], max_length=16, use_ratings=True)
    assert encoded.ratings.tolist() == [
        [[0.0, 0.0], [0.0, 0.0]],
        [[6.0, 0.0], [2.0, 0.0]],
        [[0.0, 0.0], [0.0, 3.0]],
    ]
    assert encoded.rating_mask[1].tolist() == [[True, False], [True, False]]
    assert encoded.rating_mask[2].tolist() == [[False, False], [False, True]]
    batch = encoded.token_batch([2, 1], pad_id=0)
    assert batch.ratings[0, 1, 1] == 3.0 and batch.rating_mask.shape == (2, 2, 2)
    assert encode_pairs(PAIRS[:3], make_tokenizer(), ["helpful"], max_length=16).ratings is None


# Both ways round, so a head that happens to start out ranking one word higher cannot pass by luck.
@pytest.mark.parametrize(("best", "worst"), [("good", "bad"), ("bad", "good")])
def test_a_rating_only_project_trains_heads_that_rank_by_rating(tmp_path, one_thread, best, worst):
    reported = []
    config = tiny_config(objectives=["helpful"], max_steps=40, eval_every=20, log_every=5, batch_size=8)
    result = train_reward_model(
        config, rated_pairs(80, best=best), tmp_path, backbone_factory=tiny_bert_factory,
        callbacks=Callbacks(on_metrics=lambda step, metrics: reported.append(metrics)),
    )
    rating_losses = [metrics["train/rating_loss"] for metrics in reported if "train/rating_loss" in metrics]
    assert rating_losses[-1] < 0.5 * rating_losses[0]
    assert result.data_report.used == 80 and result.data_report.objectives["helpful"].pairs == 0
    assert result.metrics["eval/rating_accuracy/helpful"] >= 0.9
    assert result.metrics["eval/accuracy"] == result.metrics["eval/rating_accuracy/helpful"]
    model = RewardModel.from_pretrained(result.model_dir)
    assert model.score("w3 w4 ?", f"w5 {best}")["helpful"] > model.score("w3 w4 ?", f"w5 {worst}")["helpful"]


def test_a_rating_only_project_with_ratings_switched_off_has_nothing_to_train_on(tmp_path):
    config = tiny_config(objectives=["helpful"], rating_loss_weight=0.0)
    with pytest.raises(ValueError, match="No pairs to train on"):
        train_reward_model(config, rated_pairs(8), tmp_path, backbone_factory=tiny_bert_factory)


def test_without_ratings_in_the_data_the_rating_weight_changes_nothing(tmp_path, one_thread):
    runs = [
        train_reward_model(
            tiny_config(rating_loss_weight=weight), synthetic_pairs(24), tmp_path / str(weight),
            backbone_factory=tiny_bert_factory,
        )
        for weight in (0.0, 1.0)
    ]
    assert runs[0].metrics == runs[1].metrics
    heads = [RewardModel.from_pretrained(run.model_dir).heads.state_dict() for run in runs]
    assert all(torch.equal(heads[0][name], heads[1][name]) for name in heads[0])


def test_ratings_and_preferences_train_jointly(tmp_path, one_thread):
    preferences = synthetic_pairs(24)
    rated = [
        PreferencePair(p.id, p.prompt, p.response_a, p.response_b, p.scores, ratings={"helpful": (6.0, 2.0)})
        if p.scores["helpful"] < 0 else p
        for p in preferences
    ]
    plain = train_reward_model(tiny_config(), preferences, tmp_path / "plain", backbone_factory=tiny_bert_factory)
    joint = train_reward_model(tiny_config(), rated, tmp_path / "joint", backbone_factory=tiny_bert_factory)
    assert "train/rating_loss" in joint.metrics and "train/rating_loss" not in plain.metrics
    assert joint.metrics["train/loss"] != plain.metrics["train/loss"]
    assert joint.metrics["train/loss/helpful"] > 0  # the pairwise term is still there
