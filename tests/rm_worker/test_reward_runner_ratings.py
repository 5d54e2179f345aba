"""A rating-only project end to end: annotators rate each response and prefer neither; a reward-model run on its
latest labels trains on the ratings."""

import pytest

from annotate_app.models import MetricPoint, RunStatus
from annotate_app.services.annotations import JudgmentInput, annotation_submit
from annotate_app.services.queue import task_next_for
from annotate_app.services.reward_runs import reward_run_create
from rm_worker.reward_runner import run_reward_training
from tests.factories import make_project, member
from tests.tiny_models import tiny_bert_factory

pytestmark = pytest.mark.django_db

TINY = {"max_steps": 4, "eval_every": 2, "batch_size": 2, "max_length": 32, "learning_rate": 1e-3,
        "eval_fraction": 0.25}


@pytest.fixture
def rating_only(settings, tmp_path):
    """8 comparisons, every objective judged a tie; helpful rated 6 for A and 2 for B (as stored)."""
    settings.MORM_ARTIFACTS_DIR = tmp_path / "artifacts"
    project = make_project(comparisons=8, overlap_k=1, gold_rate=0, ask_likert=True)
    user = member(project)
    while (task := task_next_for(project=project, user=user)) is not None:
        shown = (2, 6) if task.shown_swapped else (6, 2)  # the form's left response is A as shown
        judgments = {objective.key: JudgmentInput(choice="tie") for objective in project.objectives.all()}
        judgments["helpful"] = JudgmentInput(choice="tie", likert_a=shown[0], likert_b=shown[1])
        annotation_submit(task=task, user=user, judgments=judgments)
    return project


def test_a_rating_only_project_trains_on_its_ratings(rating_only):
    run = reward_run_create(project=rating_only, overrides=TINY, enqueue=False)
    assert run_reward_training(run.pk, backbone_factory=tiny_bert_factory) == RunStatus.SUCCEEDED
    run.refresh_from_db()
    helpful = run.data_report["objectives"]["helpful"]
    assert (helpful["pairs"], helpful["ties"], helpful["rated"]) == (0, 8, 8)
    assert run.data_report["used"] == 8 and run.data_report["excluded_all_ties"] == 0
    keys = set(MetricPoint.objects.filter(reward_run=run).values_list("key", flat=True))
    assert {"train/rating_loss", "train/rating_loss/helpful", "eval/rating_accuracy/helpful"} <= keys


def test_with_ratings_switched_off_the_same_project_has_nothing_to_train_on(rating_only):
    run = reward_run_create(project=rating_only, overrides={**TINY, "rating_loss_weight": 0.0}, enqueue=False)
    with pytest.raises(ValueError, match="No pairs to train on"):
        run_reward_training(run.pk, backbone_factory=tiny_bert_factory)
