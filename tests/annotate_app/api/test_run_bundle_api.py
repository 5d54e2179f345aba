"""Export for training over REST and on the run page: the bundle as a .tar.gz download, errors naming the field."""

import io
import json
import tarfile

import pytest

from annotate_app.models import Role
from annotate_app.services.reward_runs import reward_run_create
from tests.factories import logged_in_client, make_project, member, succeeded_reward_run, trained_reward_run

pytestmark = pytest.mark.django_db


def _url(project, run_id):
    return f"/api/v1/projects/{project.slug}/reward-runs/{run_id}/bundle"


def _members(response) -> dict:
    archive = tarfile.open(fileobj=io.BytesIO(b"".join(response.streaming_content)), mode="r:gz")
    return {member.name: member for member in archive.getmembers()} | {"_archive": archive}


def test_a_researcher_downloads_a_verl_bundle_with_the_weights_asked(api):
    run = trained_reward_run()
    api.force_authenticate(member(run.project, Role.RESEARCHER))
    response = api.post(_url(run.project, run.pk), {"target": "verl", "weights": {"harmless": 2}}, format="json")
    assert response.status_code == 200 and response["Content-Type"] == "application/gzip"
    name = f"morm-{run.project.slug}-run{run.pk}-verl"
    assert f'filename="{name}.tar.gz"' in response["Content-Disposition"]
    members = _members(response)
    assert {f"{name}/data/train.parquet", f"{name}/morm_reward.py", f"{name}/model/heads.safetensors"} <= set(members)
    weights = json.load(members["_archive"].extractfile(f"{name}/weights.json"))
    assert weights["weights"] == {"helpful": 0.4, "harmless": 2.0, "honest": 0.15}


@pytest.mark.parametrize(("body", "field"), [
    ({"target": "deepspeed-chat"}, "target"),
    ({}, "target"),
    ({"target": "trl", "weights": {"funny": 1}}, "weights"),
    ({"target": "trl", "weights": {"helpful": "lots"}}, "weights"),
    ({"target": "trl", "reward_url": "http://rm:8000/get_reward"}, "reward_url"),
    ({"target": "openrlhf", "reward_url": "not a url"}, "reward_url"),
    ({"target": "trl", "prompts": "elsewhere"}, "prompts"),
])
def test_bad_bodies_are_400_naming_the_field(api, body, field):
    project = make_project(comparisons=2)
    run = succeeded_reward_run(project)
    api.force_authenticate(member(project, Role.ADMIN))
    response = api.post(_url(project, run.pk), body, format="json")
    assert response.status_code == 400 and response.json()["detail"].startswith(f"{field}:")


def test_a_run_that_has_not_succeeded_is_400_and_one_of_another_project_404(api):
    project = make_project(comparisons=2)
    api.force_authenticate(member(project, Role.RESEARCHER))
    queued = reward_run_create(project=project, enqueue=False)
    response = api.post(_url(project, queued.pk), {"target": "trl"}, format="json")
    assert response.status_code == 400 and "reward_run:" in response.json()["detail"]
    other = succeeded_reward_run(make_project(comparisons=2))
    assert api.post(_url(project, other.pk), {"target": "trl"}, format="json").status_code == 404


def test_a_model_over_the_size_limit_is_400_pointing_to_the_command(api, settings):
    run = trained_reward_run()
    settings.MORM_BUNDLE_MAX_MODEL_BYTES = 1000
    api.force_authenticate(member(run.project, Role.ADMIN))
    response = api.post(_url(run.project, run.pk), {"target": "trl"}, format="json")
    assert response.status_code == 400 and "export_bundle" in response.json()["detail"]


@pytest.mark.parametrize("role", [Role.ANNOTATOR, None])
def test_annotators_and_outsiders_get_no_bundle(api, role):
    project = make_project(comparisons=2)
    run = succeeded_reward_run(project)
    api.force_authenticate(member(project, role) if role else member(make_project(), Role.ADMIN))
    assert api.post(_url(project, run.pk), {"target": "trl"}, format="json").status_code in (403, 404)


def test_the_run_page_offers_export_for_a_succeeded_run_only_and_downloads_it():
    run = trained_reward_run()
    client = logged_in_client(member(run.project, Role.RESEARCHER))
    page = client.get(f"/projects/{run.project.slug}/reward-runs/{run.pk}/").content.decode()
    assert 'id="export-bundle"' in page
    url = f"/projects/{run.project.slug}/reward-runs/{run.pk}/bundle/"
    response = client.post(url, {"target": "openrlhf", "weights": "harmless=1", "prompts": "project"})
    assert response.status_code == 200 and response["Content-Type"] == "application/gzip"
    assert any(name.endswith("/reward_func.py") for name in _members(response))
    back = client.post(url, {"target": "openrlhf", "weights": "funny=1"}, follow=True)
    assert "weights: Unknown objective: funny" in back.content.decode()

    queued = reward_run_create(project=run.project, enqueue=False)
    assert 'id="export-bundle"' not in client.get(
        f"/projects/{run.project.slug}/reward-runs/{queued.pk}/").content.decode()
