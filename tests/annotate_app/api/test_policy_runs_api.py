"""PPO runs over REST: create against a succeeded reward model, validation, samples, cancel; roles."""

import pytest

from annotate_app.models import PolicyRun, PolicySample, Role
from annotate_app.services.reward_runs import reward_run_create
from tests.factories import labelled_project, make_project, make_user, member, succeeded_reward_run

pytestmark = pytest.mark.django_db


@pytest.fixture
def project():
    return labelled_project()


def _url(project, tail=""):
    return f"/api/v1/projects/{project.slug}/policy-runs/{tail}"


def test_create_queues_with_default_weights_and_the_reward_models_directory(api, project,
                                                                             django_capture_on_commit_callbacks):
    reward_run = succeeded_reward_run(project)
    api.force_authenticate(member(project, Role.RESEARCHER))
    with django_capture_on_commit_callbacks() as callbacks:
        response = api.post(_url(project), {"reward_run": reward_run.pk, "config": {"steps": 3}}, format="json")
    assert response.status_code == 202
    config = response.json()["config"]
    assert config["steps"] == 3 and config["objectives"] == ["helpful", "harmless", "honest"]
    assert config["reward_model_dir"].endswith(f"reward_runs/{reward_run.pk}/model")
    assert config["scalarization"] == "static"
    assert len(callbacks) == 1


@pytest.mark.parametrize(
    "config, fragment",
    [
        ({"scalarization": "pareto"}, "scalarization"),
        ({"steps": 0}, "steps"),
        ({"weights": {"style": 1.0}}, "style"),
        ({"scalarization": "constrained"}, "constraint_objective"),
        ({"kl_estimator": "k9"}, "kl_estimator"),
        ({"spin": 1}, "Unknown setting"),
    ],
)
def test_bad_ppo_settings_are_400(api, project, config, fragment):
    reward_run = succeeded_reward_run(project)
    api.force_authenticate(member(project, Role.RESEARCHER))
    response = api.post(_url(project), {"reward_run": reward_run.pk, "config": config}, format="json")
    assert response.status_code == 400 and fragment in response.json()["detail"]
    assert not PolicyRun.objects.exists()


def test_unfinished_reward_model_is_refused(api, project):
    queued = reward_run_create(project=project, enqueue=False)
    api.force_authenticate(member(project, Role.RESEARCHER))
    response = api.post(_url(project), {"reward_run": queued.pk}, format="json")
    assert response.status_code == 400 and "succeeded" in response.json()["detail"]
    unknown = api.post(_url(project), {"reward_run": 999999}, format="json")
    assert unknown.status_code == 400 and 'reward_run: Invalid pk "999999"' in unknown.json()["detail"]
    assert api.post(_url(project), {}, format="json").status_code == 400


def test_samples_metrics_detail_and_cancel(api, project):
    reward_run = succeeded_reward_run(project)
    api.force_authenticate(member(project, Role.ADMIN))
    run_id = api.post(_url(project), {"reward_run": reward_run.pk}, format="json").json()["id"]
    PolicySample.objects.create(policy_run_id=run_id, step=5, prompt="<b>hi</b>", response="hello",
                                rewards={"harmless": 0.5}, normalized={"harmless": 1.0}, combined=0.45)
    samples = api.get(_url(project, f"{run_id}/samples")).json()["results"]
    assert samples == [{"step": 5, "prompt": "<b>hi</b>", "response": "hello", "rewards": {"harmless": 0.5},
                        "normalized": {"harmless": 1.0}, "combined": 0.45}]
    assert api.get(_url(project, f"{run_id}/metrics")).json()["metrics"] == {}
    assert api.post(_url(project, f"{run_id}/cancel")).json()["status"] == "cancelled"
    assert api.get(_url(project, f"{run_id}/")).json()["status"] == "cancelled"
    assert [r["id"] for r in api.get(_url(project)).json()["results"]] == [run_id]


def test_policy_runs_are_for_admins_and_researchers_of_the_project(api, project):
    reward_run = succeeded_reward_run(project)
    api.force_authenticate(member(project, Role.ANNOTATOR))
    assert api.get(_url(project)).status_code == 403
    assert api.post(_url(project), {"reward_run": reward_run.pk}, format="json").status_code == 403
    api.force_authenticate(make_user())
    assert api.get(_url(project)).status_code == 404
    other = make_project()
    api.force_authenticate(member(other, Role.ADMIN))
    response = api.post(f"/api/v1/projects/{other.slug}/policy-runs/", {"reward_run": reward_run.pk}, format="json")
    assert response.status_code == 400 and f'reward_run: Invalid pk "{reward_run.pk}"' in response.json()["detail"]
    assert not PolicyRun.objects.exists()
