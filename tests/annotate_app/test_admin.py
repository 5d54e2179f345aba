"""The Django admin: runs, snapshots and metric points listed; immutable rows read-only; texts as meant."""

import html

import pytest

from annotate_app.models import MetricPoint, PolicyRun, RewardModelRun, RunStatus
from annotate_app.services.policy_runs import policy_run_create
from annotate_app.services.reward_runs import reward_run_create
from annotate_app.services.rounds import round_start
from annotate_app.services.snapshots import snapshot_create
from tests.factories import labelled_project, logged_in_client, make_user, succeeded_reward_run

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client():
    return logged_in_client(make_user(is_staff=True, is_superuser=True))


@pytest.fixture
def runs():
    """A queued reward run with a metric point, a succeeded one, and a queued PPO run on the latter."""
    project = labelled_project()
    queued = reward_run_create(project=project, enqueue=False)
    MetricPoint.objects.create(reward_run=queued, step=1, key="train/loss", value=0.5)
    policy = policy_run_create(project=project, reward_run=succeeded_reward_run(project), enqueue=False)
    return queued, policy


@pytest.mark.parametrize("model", ["rewardmodelrun", "policyrun", "snapshot", "metricpoint", "policysample"])
def test_runs_snapshots_and_metric_points_are_listed(admin_client, runs, model):
    snapshot_create(project=runs[0].project, format="jsonl")
    assert admin_client.get(f"/admin/annotate_app/{model}/").status_code == 200


def test_a_run_cannot_be_added_or_its_config_changed_in_the_admin(admin_client, runs):
    run, _ = runs
    assert admin_client.get("/admin/annotate_app/rewardmodelrun/add/").status_code == 403
    page = admin_client.get(f"/admin/annotate_app/rewardmodelrun/{run.pk}/change/").content.decode()
    assert 'name="config"' not in page and 'name="status"' not in page
    admin_client.post(f"/admin/annotate_app/rewardmodelrun/{run.pk}/change/", {"config": "{}", "status": "failed"})
    refreshed = RewardModelRun.objects.get(pk=run.pk)
    assert refreshed.config == run.config and refreshed.status == RunStatus.QUEUED


def test_unfinished_runs_are_not_deleted_but_cancelled_through_the_service(admin_client, runs):
    run, policy = runs
    assert admin_client.get(f"/admin/annotate_app/rewardmodelrun/{run.pk}/delete/").status_code == 403
    response = admin_client.post(
        "/admin/annotate_app/policyrun/", {"action": "cancel_runs", "_selected_action": [policy.pk]}, follow=True
    )
    assert "Cancel asked for 1 run" in response.content.decode()
    assert PolicyRun.objects.get(pk=policy.pk).status == RunStatus.CANCELLED  # queued: cancelled at once


def test_metric_points_and_snapshots_are_read_only(admin_client, runs):
    point = MetricPoint.objects.get()
    snapshot = snapshot_create(project=runs[0].project, format="csv")
    for model, pk in (("metricpoint", point.pk), ("snapshot", snapshot.pk)):
        page = admin_client.get(f"/admin/annotate_app/{model}/{pk}/change/").content.decode()
        assert 'name="_save"' not in page and "readonly" in page  # viewable, no save button
    assert admin_client.get("/admin/annotate_app/metricpoint/add/").status_code == 403
    assert admin_client.post(f"/admin/annotate_app/metricpoint/{point.pk}/delete/", {"post": "yes"}).status_code == 403
    assert MetricPoint.objects.filter(pk=point.pk).exists()


def test_admin_texts_read_as_meant(admin_client, runs):
    index = admin_client.get("/admin/").content.decode()
    assert "Import batches" in index and "Import batchs" not in index
    comparison = runs[0].project.comparisons.first()
    page = html.unescape(admin_client.get(f"/admin/annotate_app/comparison/{comparison.pk}/change/").content.decode())
    assert '{"helpful": "A", "harmless": "tie"}' in page and '{"": ' not in page


def test_rounds_are_listed_and_read_only(admin_client, sent):
    current = round_start(project=labelled_project())
    listing = admin_client.get("/admin/annotate_app/round/").content.decode()
    assert f"/admin/annotate_app/round/{current.pk}/change/" in listing
    page = admin_client.get(f"/admin/annotate_app/round/{current.pk}/change/").content.decode()
    assert 'name="_save"' not in page and admin_client.get("/admin/annotate_app/round/add/").status_code == 403
