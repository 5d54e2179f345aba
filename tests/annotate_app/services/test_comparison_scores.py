"""Asking for a comparison's scores by a reward-model run: queued by name after commit, once per pair."""

import pytest
from django.core.exceptions import ValidationError

from annotate_app.models import ComparisonScore, RewardModelRun, RunStatus
from annotate_app.services.comparison_scores import comparison_scores_record, comparison_scores_request
from annotate_app.services.reward_runs import reward_run_create
from tests.factories import labelled_project, make_project, succeeded_reward_run

pytestmark = pytest.mark.django_db


def test_unscored_comparisons_are_queued_after_commit_and_scored_ones_are_not(
        sent, django_capture_on_commit_callbacks):
    project = labelled_project()
    run = succeeded_reward_run(project)
    first, second = project.comparisons.order_by("id")[:2]
    comparison_scores_record(run=run, rewards={first.pk: {"helpful": {"a": 0.5, "b": -0.5}}})
    with django_capture_on_commit_callbacks(execute=True):
        assert comparison_scores_request(run=run, comparisons=[first, second]) == [second.pk]
        assert sent == []  # nothing before commit
    assert sent == [("rm_worker.score_comparisons", run.pk, [second.pk])]
    with django_capture_on_commit_callbacks(execute=True):
        assert comparison_scores_request(run=run, comparisons=[first]) == []
    assert len(sent) == 1  # everything asked for is scored: nothing sent


def test_recording_twice_keeps_the_first_scores(sent):
    project = labelled_project()
    run = succeeded_reward_run(project)
    comparison = project.comparisons.first()
    assert comparison_scores_record(run=run, rewards={comparison.pk: {"helpful": {"a": 1.0, "b": 0.0}}}) == 1
    comparison_scores_record(run=run, rewards={comparison.pk: {"helpful": {"a": 9.0, "b": 9.0}}})
    assert ComparisonScore.objects.get().rewards == {"helpful": {"a": 1.0, "b": 0.0}}


@pytest.mark.parametrize("status", [RunStatus.QUEUED, RunStatus.RUNNING, RunStatus.FAILED, RunStatus.CANCELLED])
def test_a_run_that_has_not_succeeded_is_refused(sent, status, django_capture_on_commit_callbacks):
    project = labelled_project()
    run = reward_run_create(project=project, enqueue=False)
    RewardModelRun.objects.filter(pk=run.pk).update(status=status)
    run.refresh_from_db()
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(ValidationError) as error:
        comparison_scores_request(run=run, comparisons=[project.comparisons.first()])
    assert f"is {status}" in error.value.message_dict["run"][0] and sent == []


def test_a_run_of_another_project_is_refused(sent, django_capture_on_commit_callbacks):
    run = succeeded_reward_run(labelled_project())
    elsewhere = make_project(comparisons=1).comparisons.get()
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(ValidationError) as error:
        comparison_scores_request(run=run, comparisons=[elsewhere])
    assert "another project" in error.value.message_dict["run"][0] and sent == []
