"""The loop's rounds over REST: list them, start one now."""

import pytest

from annotate_app.models import Role, Round
from annotate_app.services.rounds import round_eval_record
from tests.factories import labelled_project, member

pytestmark = pytest.mark.django_db


@pytest.fixture
def project():
    return labelled_project()


def test_a_researcher_starts_a_round_and_lists_the_rounds(api, project, sent):
    api.force_authenticate(member(project, Role.RESEARCHER))
    response = api.post(f"/api/v1/projects/{project.slug}/rounds/")
    assert response.status_code == 202, response.content
    started = Round.objects.get(project=project)
    assert response.json()["number"] == 1 and response.json()["trigger"] == "manual"
    assert response.json()["reward_run"] == started.reward_run_id and response.json()["policy_run"] is None
    round_eval_record(round_id=started.pk, accuracy={"harmless": 0.5, "helpful": None}, pairs=2)
    body = api.get(f"/api/v1/projects/{project.slug}/rounds/").json()
    assert [row["number"] for row in body["results"]] == [1] and body["next"] is None
    assert body["results"][0]["eval_accuracy"] == {"harmless": 0.5, "helpful": None}


def test_a_second_round_waits_for_the_first_reward_run(api, project, sent):
    api.force_authenticate(member(project, Role.ADMIN))
    api.post(f"/api/v1/projects/{project.slug}/rounds/")
    response = api.post(f"/api/v1/projects/{project.slug}/rounds/")
    assert response.status_code == 400 and "still queued" in response.json()["detail"]
    assert Round.objects.count() == 1


def test_a_full_run_quota_is_a_429(api, project, sent, settings):
    settings.MORM_MAX_ACTIVE_RUNS_PER_PROJECT = 0
    api.force_authenticate(member(project, Role.ADMIN))
    assert api.post(f"/api/v1/projects/{project.slug}/rounds/").status_code == 429
    assert not Round.objects.exists()
