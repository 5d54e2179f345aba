"""Scoring single comparisons on the worker: the task stores each head's rewards by the run's saved model."""

import pytest

from annotate_app.models import ComparisonScore, RunStatus
from annotate_app.services.runs import run_dir
from rm_worker.tasks import score_comparisons
from rm_worker.training import RewardModel
from rm_worker.training.trainer import MODEL_DIR
from tests.factories import import_lines, make_project, native_line, trained_reward_run

pytestmark = pytest.mark.django_db


@pytest.fixture
def reward_run():
    """A tiny run trained to success, whose project then gets two comparisons in words the tokenizer knows."""
    run = trained_reward_run()
    import_lines(run.project, [native_line(20, prompt="w1 ?", response_a="good safe w3", response_b="bad harm"),
                           native_line(21, prompt=[{"role": "user", "content": "w2 ?"}], response_a="harm w9",
                                       response_b="safe good")])
    return run


def _scored(run, external_ids):
    return list(run.project.comparisons.filter(external_id__in=external_ids).order_by("id"))


def test_the_task_stores_the_saved_models_rewards_of_both_sides(reward_run):
    comparisons = _scored(reward_run, ["c20", "c21"])
    assert score_comparisons(reward_run.pk, [row.pk for row in comparisons]) == 2
    model = RewardModel.from_pretrained(run_dir(reward_run) / MODEL_DIR, device="cpu")
    for comparison in comparisons:
        stored = ComparisonScore.objects.get(reward_run=reward_run, comparison=comparison).rewards
        expected_a, expected_b = model.score(comparison.prompt, comparison.response_a), model.score(
            comparison.prompt, comparison.response_b)
        assert set(stored) == set(model.objectives)
        for objective in model.objectives:
            assert stored[objective]["a"] == pytest.approx(expected_a[objective], abs=1e-5)
            assert stored[objective]["b"] == pytest.approx(expected_b[objective], abs=1e-5)
        assert any(sides["a"] != sides["b"] for sides in stored.values())


def test_scoring_again_or_another_projects_comparison_stores_nothing(reward_run):
    comparison = _scored(reward_run, ["c20"])[0]
    assert score_comparisons(reward_run.pk, [comparison.pk]) == 1
    first = ComparisonScore.objects.get(comparison=comparison).rewards
    elsewhere = make_project(comparisons=1).comparisons.get()
    assert score_comparisons(reward_run.pk, [comparison.pk, elsewhere.pk]) == 0
    assert ComparisonScore.objects.get(comparison=comparison).rewards == first
    assert not ComparisonScore.objects.filter(comparison=elsewhere).exists()


def test_a_run_that_has_not_succeeded_scores_nothing(reward_run):
    comparison = _scored(reward_run, ["c20"])[0]
    type(reward_run).objects.filter(pk=reward_run.pk).update(status=RunStatus.FAILED)
    assert score_comparisons(reward_run.pk, [comparison.pk]) == 0
    assert not ComparisonScore.objects.exists()
