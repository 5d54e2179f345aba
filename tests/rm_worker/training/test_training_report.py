"""The reward-model report's figures on hand-made cases, each checked against values computed by hand."""

import json
import math

import pytest

from rm_worker.training import HumanJudgment, PreferencePair, load_pairs
from rm_worker.training.report import (
    annotator_agreement,
    average_ranks,
    expected_calibration_error,
    format_report,
    objective_accuracy,
    objective_calibration,
    pearson,
    proportion,
    reliability_bins,
    reward_model_report,
    sigmoid,
    spearman,
    wilson_interval,
)


def logit(p: float) -> float:
    return math.log(p / (1 - p))


@pytest.mark.parametrize("hits, n, low, high", [
    # p = 0.8, z² = 3.8415: centre (0.8 + 0.19207) / 1.38415 = 0.71674, half 1.95996 · 0.16001 / 1.38415 = 0.22658
    (8, 10, 0.49016, 0.94332),
    (0, 5, 0.0, 0.43448),  # upper bound z² / (n + z²) = 3.8415 / 8.8415
    (10, 10, 0.72246, 1.0),  # lower bound n / (n + z²) = 10 / 13.8415
])
def test_wilson_interval_matches_hand_computed_bounds(hits, n, low, high):
    assert wilson_interval(hits, n) == pytest.approx((low, high), abs=1e-5)


def test_a_proportion_of_nothing_has_no_rate_or_interval():
    assert proportion(0, 0) == {"rate": None, "low": None, "high": None, "hits": 0, "n": 0}
    assert proportion(8, 10)["rate"] == 0.8 and proportion(8, 10)["n"] == 10


def test_accuracy_counts_the_side_the_label_prefers_and_equal_rewards_as_wrong():
    # Labels: A, B, A, B (negative scores prefer A); margins r_A − r_B: right, right, wrong, equal.
    figure = objective_accuracy([-1, 2, -3, 1], [0.5, -0.1, -2.0, 0.0])
    assert (figure["hits"], figure["n"], figure["rate"]) == (2, 4, 0.5)


def test_reliability_bins_and_ece_of_three_pairs():
    # P(A) = 0.75 and 0.72 share the bin [0.7, 0.8), one labeled A, one B; 0.2 in [0.2, 0.3) labeled B.
    # ECE = (2 · |0.5 − 0.735| + 1 · |0 − 0.2|) / 3 = 0.67 / 3
    calibration = objective_calibration([-1, 1, 2], [logit(0.75), logit(0.72), logit(0.2)])
    assert calibration["ece"] == pytest.approx(0.67 / 3)
    filled = {round(row["low"], 1): row for row in calibration["bins"] if row["count"]}
    assert set(filled) == {0.7, 0.2} and len(calibration["bins"]) == 10
    assert filled[0.7]["count"] == 2 and filled[0.7]["mean_predicted"] == pytest.approx(0.735)
    assert filled[0.7]["observed"] == 0.5 and filled[0.2]["observed"] == 0.0
    assert calibration["bins"][0] == {"low": 0.0, "high": 0.1, "count": 0, "mean_predicted": None, "observed": None}


def test_a_probability_of_one_falls_in_the_last_bin_and_a_calibrated_model_has_no_error():
    bins = reliability_bins([1.0, 0.95, 0.05, 0.0], [1, 1, 0, 0], bins=10)
    assert bins[9]["count"] == 2 and bins[0]["count"] == 2
    assert expected_calibration_error(reliability_bins([0.5, 0.5], [1, 0])) == 0.0
    assert expected_calibration_error(reliability_bins([], [])) is None


def test_sigmoid_is_stable_far_from_zero():
    assert sigmoid(0) == 0.5 and sigmoid(1000) == 1.0 and sigmoid(-1000) == 0.0
    assert sigmoid(math.log(3)) == pytest.approx(0.75)


def test_pearson_and_spearman_of_known_vectors():
    assert pearson([1, 2, 3, 4], [2, 4, 6, 8]) == pytest.approx(1.0)
    assert pearson([1, 2, 3, 4], [8, 6, 4, 2]) == pytest.approx(-1.0)
    # x − mean = (−1, 0, 1), y − mean = (−1, 1, 0): r = 1 / √(2 · 2)
    assert pearson([1, 2, 3], [1, 3, 2]) == pytest.approx(0.5)
    # Monotone but not linear: ranks agree perfectly, values do not.
    assert spearman([1, 2, 3, 4], [1, 4, 9, 100]) == pytest.approx(1.0)
    assert pearson([1, 2, 3, 4], [1, 4, 9, 100]) < 0.9
    assert average_ranks([10, 20, 20, 30]) == [1.0, 2.5, 2.5, 4.0]
    assert pearson([1, 1, 1], [1, 2, 3]) is None and pearson([1], [2]) is None
    with pytest.raises(ValueError, match="one length"):
        pearson([1, 2], [1])


def judged(pair_id: str, *judgments: tuple[str, str, str]) -> PreferencePair:
    return PreferencePair(pair_id, "w1", "good", "bad", {"helpful": -1},
                          tuple(HumanJudgment(a, objective, choice) for a, objective, choice in judgments))


def test_agreement_with_annotators_next_to_annotators_with_each_other():
    pairs = [
        # The head prefers A; alice and bob chose A, carol B: 2 of 3 judgments agree with the head;
        # of the annotator couples only (alice, bob) agrees: 1 of 3.
        judged("p1", ("alice", "helpful", "A"), ("bob", "helpful", "A"), ("carol", "helpful", "B")),
        # The head prefers A, dave chose B; erin's tie has no side and is left out.
        judged("p2", ("dave", "helpful", "B"), ("erin", "helpful", "tie")),
        judged("p3", ("alice", "harmless", "A")),  # judged for another objective only
        judged("p4"),  # no annotator: imported labels
    ]
    agreement = annotator_agreement(pairs, [1.0, 0.3, 1.0, 1.0], "helpful")
    assert agreement["pairs"] == 2
    assert (agreement["model_annotator"]["hits"], agreement["model_annotator"]["n"]) == (2, 4)
    assert (agreement["annotator_annotator"]["hits"], agreement["annotator_annotator"]["n"]) == (1, 3)
    # On p1, the one pair two annotators judged, the head agrees with 2 of its 3 judgments.
    same = agreement["model_annotator_same_pairs"]
    assert (same["hits"], same["n"]) == (2, 3)


def test_one_annotator_judging_a_pair_twice_is_no_couple_and_equal_rewards_agree_with_nobody():
    pairs = [judged("p1", ("alice", "helpful", "A"), ("alice", "helpful", "A"))]
    agreement = annotator_agreement(pairs, [0.0], "helpful")
    assert agreement["annotator_annotator"]["n"] == 0 and agreement["annotator_annotator"]["rate"] is None
    assert (agreement["model_annotator"]["hits"], agreement["model_annotator"]["n"]) == (0, 2)


def test_the_report_has_every_figure_per_objective_and_the_correlation_between_heads():
    pairs = [
        PreferencePair("a", "w1", "x" * 1, "x" * 2, {"helpful": 1, "harmless": -1}),
        PreferencePair("b", "w1", "x" * 3, "x" * 4, {"helpful": 1, "harmless": 0}),
        PreferencePair("c", "w1", "x" * 6, "x" * 5, {"helpful": -2},
                       (HumanJudgment("ann", "helpful", "A"), HumanJudgment("bo", "helpful", "A"))),
    ]
    # helpful's reward is the response length, harmless's its negative: verbosity r = 1 and −1, heads r = −1.
    rewards_a = [[1, -1], [3, -3], [6, -6]]
    rewards_b = [[2, -2], [4, -4], [5, -5]]
    report = reward_model_report(pairs, rewards_a, rewards_b, ["helpful", "harmless"])
    helpful, harmless = report["objectives"]["helpful"], report["objectives"]["harmless"]
    assert report["pairs"] == 3 and report["length_unit"] == "characters"
    assert (helpful["accuracy"]["hits"], helpful["accuracy"]["n"]) == (3, 3)
    assert (harmless["accuracy"]["hits"], harmless["accuracy"]["n"], harmless["ties"]) == (1, 1, 1)
    assert helpful["length_correlation"] == {"pearson": pytest.approx(1.0), "spearman": pytest.approx(1.0), "n": 6}
    assert harmless["length_correlation"]["pearson"] == pytest.approx(-1.0)
    assert report["head_correlation"]["objectives"] == ["helpful", "harmless"]
    assert report["head_correlation"]["pearson"] == [[pytest.approx(1.0), pytest.approx(-1.0)],
                                                     [pytest.approx(-1.0), pytest.approx(1.0)]]
    assert helpful["agreement"]["annotator_annotator"]["rate"] == 1.0
    assert helpful["agreement"]["model_annotator"]["rate"] == 1.0
    # σ(−1), σ(−1) labeled B and σ(1) labeled A: predictions 0.269, 0.269, 0.731 against 0, 0, 1.
    assert helpful["calibration"]["ece"] == pytest.approx(1 - sigmoid(1))
    json.dumps(report)  # stored as JSON on the run

    text = format_report(report)
    assert "on 3 pairs" in text and "1.000 [0.439, 1.000] n=3" in text
    assert "Reliability of harmless" in text and "Correlation between heads" in text


def test_the_report_refuses_rewards_that_do_not_match_the_pairs():
    with pytest.raises(ValueError, match="1 pairs but 0 and 0 rows"):
        reward_model_report([judged("p")], [], [], ["helpful"])


def test_export_judgments_load_with_their_annotators_and_imported_labels_are_nobodys():
    record = {"id": "c1", "prompt": "w1", "response_a": "good", "response_b": "bad", "labels": {"helpful": -1},
              "judgments": [{"objective": "helpful", "choice": "A", "annotator": "alice", "source": None},
                            {"objective": "helpful", "choice": "B", "annotator": None, "source": 4},
                            {"objective": "honest", "choice": "tie", "annotator": "bob", "source": None}]}
    [pair] = load_pairs([json.dumps(record)], ["helpful"])
    assert pair.judgments == (HumanJudgment("alice", "helpful", "A"),)
    [everything] = load_pairs([json.dumps(record)])
    assert len(everything.judgments) == 2


@pytest.mark.parametrize("judgments, message", [
    ({"objective": "helpful"}, "'judgments' must be a list of objects"),
    ([{"objective": "helpful", "choice": "better", "annotator": "alice"}], "a judgment needs"),
    ([{"objective": "helpful", "choice": "A", "annotator": 7}], "a judgment needs"),
])
def test_malformed_judgments_are_refused_naming_the_line(judgments, message):
    record = {"prompt": "w1", "response_a": "good", "response_b": "bad", "judgments": judgments}
    with pytest.raises(ValueError, match=f"line 1: {message}"):
        load_pairs([json.dumps(record)])


@pytest.mark.parametrize("rating_loss_weight, rated_held_out", [(1.0, True), (0.0, False)])
def test_the_report_reads_the_held_out_split_the_trainer_makes(rating_loss_weight, rated_held_out):
    """Pairs rated but tied train the rating term when ratings are used: then the trainer holds some out too."""
    from rm_worker.training import RewardModelConfig
    from rm_worker.training.data import is_held_out
    from rm_worker.training.evaluate import held_out_pairs

    config = RewardModelConfig(objectives=["helpful"], eval_fraction=0.5, rating_loss_weight=rating_loss_weight)
    labeled = [PreferencePair(f"p{i}", "w1", "good", "bad", {"helpful": -1}) for i in range(10)]
    rated = [PreferencePair(f"r{i}", "w1", "good", "bad", {"helpful": 0}, ratings={"helpful": (6.0, 2.0)})
             for i in range(10)]
    expected = [p for p in labeled + (rated if rated_held_out else []) if is_held_out(p.id, 0.5, config.seed)]
    assert held_out_pairs(config, labeled + rated) == expected and any(p.id.startswith("r") for p in expected) == (
        rated_held_out)


def test_a_frozen_models_report_reads_the_held_out_embeddings_its_run_cached(tmp_path, monkeypatch, one_thread):
    """Reporting after a frozen retrain costs no backbone pass: the run cached the held-out texts' embeddings."""
    from transformers import BertModel

    from rm_worker.training import RewardModel, train_reward_model
    from rm_worker.training.evaluate import held_out_pairs, report_reward_model
    from tests.tiny_models import make_tokenizer, synthetic_pairs, tiny_bert, tiny_config

    def bert_as_saved(config):
        # With its pooler, as a saved BERT loads again: the cache's namespace hashes every backbone weight.
        return BertModel(tiny_bert().config), make_tokenizer("encoder")

    config = tiny_config(mode="frozen", cache_dir=str(tmp_path / "cache"), eval_fraction=0.3)
    pairs = synthetic_pairs(30)
    result = train_reward_model(config, pairs, tmp_path / "run", backbone_factory=bert_as_saved)
    held_out = held_out_pairs(config, pairs)
    through_backbone = report_reward_model(result.model_dir, held_out, device="cpu")

    def no_backbone(*args, **kwargs):
        raise AssertionError("the backbone ran: the held-out embeddings were not read from the cache")

    monkeypatch.setattr(RewardModel, "pooled", no_backbone)
    cached = report_reward_model(result.model_dir, held_out, device="cpu", cache_dir=config.cache_dir)
    for objective, figures in through_backbone["objectives"].items():
        assert cached["objectives"][objective]["accuracy"] == figures["accuracy"]
        assert cached["objectives"][objective]["calibration"]["ece"] == pytest.approx(figures["calibration"]["ece"])
        assert cached["objectives"][objective]["length_correlation"]["pearson"] == pytest.approx(
            figures["length_correlation"]["pearson"])
