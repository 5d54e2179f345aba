"""A reward-model run's report over REST: what the worker stored, null before, 404 for runs not visible."""

import pytest

from annotate_app.models import Role
from tests.factories import make_project, make_user, member, reported_reward_run, succeeded_reward_run

pytestmark = pytest.mark.django_db


@pytest.fixture
def project():
    return make_project(comparisons=2, overlap_k=1, gold_rate=0)


def _url(project, run_id):
    return f"/api/v1/projects/{project.slug}/reward-runs/{run_id}/report"


def test_the_report_the_worker_stored_comes_back_whole(api, project):
    run = reported_reward_run(project)
    api.force_authenticate(member(project, Role.RESEARCHER))
    body = api.get(_url(project, run.pk)).json()
    assert body == {"run": run.pk, "status": "succeeded", "report": run.report}
    harmless = body["report"]["objectives"]["harmless"]
    assert (harmless["accuracy"]["hits"], harmless["accuracy"]["n"]) == (1, 2)
    assert harmless["agreement"]["annotator_annotator"] == {"rate": 0.0, "low": 0.0, "high": pytest.approx(0.65762),
                                                           "hits": 0, "n": 2}


def test_a_run_without_a_report_answers_null(api, project):
    run = succeeded_reward_run(project)
    api.force_authenticate(member(project, Role.ADMIN))
    assert api.get(_url(project, run.pk)).json() == {"run": run.pk, "status": "succeeded", "report": None}


def test_runs_not_visible_are_not_found(api, project):
    run = succeeded_reward_run(project)
    api.force_authenticate(make_user())
    response = api.get(_url(project, run.pk))
    assert response.status_code == 404 and "detail" in response.json()
    other = make_project()
    api.force_authenticate(member(other, Role.ADMIN))
    assert api.get(_url(other, run.pk)).status_code == 404
    api.force_authenticate(member(project, Role.RESEARCHER))
    assert api.get(_url(project, 999999)).status_code == 404


def test_the_schema_documents_the_report_shape(api):
    schema = api.get("/api/v1/schema/?format=json").json()
    operation = schema["paths"]["/api/v1/projects/{slug}/reward-runs/{run_id}/report"]["get"]
    assert {"200", "404"} <= set(operation["responses"])
    components = schema["components"]["schemas"]
    assert {"ece", "bins"} <= set(components["Calibration"]["properties"])
    assert {"model_annotator", "annotator_annotator"} <= set(components["Agreement"]["properties"])
