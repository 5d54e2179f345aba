"""Dashboard, run page and run comparison page (server side; the live curves are a browser test)."""

import pytest

from annotate_app.models import RewardModelRun, Role, RunStatus
from annotate_app.services.policy_runs import policy_run_create
from annotate_app.services.reward_runs import reward_run_create
from annotate_app.services.snapshots import snapshot_create
from tests.factories import labelled_project, local_model, logged_in_client, make_user, member

pytestmark = pytest.mark.django_db


@pytest.fixture
def project():
    return labelled_project()


def _form(**values):
    data = {"data": "latest", "mode": "frozen", "epochs": "2", "learning_rate": "0.001", "batch_size": "8",
            "max_length": "64", "w_helpful": "0.5", "w_harmless": "2", "w_honest": "1", "backbone": "",
            "pooling": "auto"}
    data.update(values)
    return data


def test_dashboard_form_queues_a_run_with_the_chosen_settings(project, django_capture_on_commit_callbacks):
    client = logged_in_client(member(project, Role.RESEARCHER))
    with django_capture_on_commit_callbacks() as callbacks:
        response = client.post(f"/projects/{project.slug}/dashboard/",
                               _form(use_margin="on", max_steps="30", pooling="response"))
    run = RewardModelRun.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/projects/{project.slug}/reward-runs/{run.pk}/"
    assert len(callbacks) == 1
    config = run.config
    assert (config["mode"], config["epochs"], config["max_steps"], config["use_margin"]) == ("frozen", 2, 30, True)
    assert config["pooling"] == "response" and config["backbone_gguf_file"] is None
    assert config["loss_weights"] == {"helpful": 0.5, "harmless": 2.0, "honest": 1.0}
    page = client.get(response["Location"]).content.decode()
    assert f"Snapshot {run.snapshot_id}" in page and run.snapshot.sha256 in page and "Cancel" in page


def test_dashboard_form_sets_the_rating_loss_weight_or_leaves_the_default(project):
    client = logged_in_client(member(project, Role.RESEARCHER))
    client.post(f"/projects/{project.slug}/dashboard/", _form(rating_loss_weight="0.25"))
    client.post(f"/projects/{project.slug}/dashboard/", _form())
    weights = [run.config["rating_loss_weight"] for run in RewardModelRun.objects.order_by("pk")]
    assert weights == [0.25, 1.0]
    refused = client.post(f"/projects/{project.slug}/dashboard/", _form(rating_loss_weight="-1"))
    assert refused.status_code == 200 and RewardModelRun.objects.count() == 2
    assert "rating_loss_weight" in refused.context["form"].errors


def test_dashboard_form_selects_response_pooling_by_default(project):
    client = logged_in_client(member(project, Role.RESEARCHER))
    page = client.get(f"/projects/{project.slug}/dashboard/").content.decode()
    assert '<option value="response" selected>' in page


def test_dashboard_trains_on_an_existing_snapshot(project):
    snapshot = snapshot_create(project=project, format="jsonl")
    client = logged_in_client(member(project, Role.ADMIN))
    client.post(f"/projects/{project.slug}/dashboard/", _form(data=str(snapshot.pk)))
    assert RewardModelRun.objects.get().snapshot == snapshot


def test_dashboard_passes_a_gguf_backbone_file(project, settings, tmp_path):
    local_model(settings, tmp_path, "smollm2", "m.gguf")
    client = logged_in_client(member(project, Role.RESEARCHER))
    client.post(f"/projects/{project.slug}/dashboard/", _form(backbone="smollm2", backbone_gguf_file="m.gguf"))
    config = RewardModelRun.objects.get().config
    assert (config["backbone"], config["backbone_gguf_file"]) == ("smollm2", "m.gguf")


def test_dashboard_turns_the_chat_template_on_when_ticked(project):
    client = logged_in_client(member(project, Role.RESEARCHER))
    client.post(f"/projects/{project.slug}/dashboard/", _form(chat_template="on"))
    client.post(f"/projects/{project.slug}/dashboard/", _form())
    assert [run.config["chat_template"] for run in RewardModelRun.objects.order_by("pk")] == [True, False]


def test_dashboard_trains_lora_adapters_at_the_rank_given(project):
    client = logged_in_client(member(project, Role.RESEARCHER))
    client.post(f"/projects/{project.slug}/dashboard/", _form(mode="multi_head", lora_r="16"))
    client.post(f"/projects/{project.slug}/dashboard/", _form(mode="multi_head", lora_r=""))
    assert [run.config["lora_r"] for run in RewardModelRun.objects.order_by("pk")] == [16, 0]


def test_dashboard_starts_heads_from_a_succeeded_run(project):
    client = logged_in_client(member(project, Role.RESEARCHER))
    probe = reward_run_create(project=project, overrides={"mode": "frozen"}, enqueue=False)
    option = f'<option value="{probe.pk}">Run {probe.pk} · frozen'
    assert option not in client.get(f"/projects/{project.slug}/dashboard/").content.decode()  # still queued
    RewardModelRun.objects.filter(pk=probe.pk).update(status="succeeded")
    assert option in client.get(f"/projects/{project.slug}/dashboard/").content.decode()
    client.post(f"/projects/{project.slug}/dashboard/", _form(mode="multi_head", init_heads_run=str(probe.pk)))
    run = RewardModelRun.objects.exclude(pk=probe.pk).get()
    assert run.config["init_heads_from"].endswith(f"reward_runs/{probe.pk}/model")
    assert run.init_heads_run == probe
    page = client.get(f"/projects/{project.slug}/reward-runs/{run.pk}/").content.decode()
    link = f'<a href="/projects/{project.slug}/reward-runs/{probe.pk}/">Run {probe.pk}</a>'
    assert f"Heads started from\n    {link}" in page
    probe_page = client.get(f"/projects/{project.slug}/reward-runs/{probe.pk}/").content.decode()
    assert "Heads started from" not in probe_page


@pytest.mark.parametrize("values, message", [
    ({"w_harmless": "-1"}, "greater than or equal to 0"),
    ({"w_helpful": "0", "w_harmless": "0", "w_honest": "0"}, "positive weight"),
    ({"mode": "giant"}, "Select a valid choice"),
    ({"pooling": "max"}, "Select a valid choice"),
    ({"data": "999"}, "Select a valid choice"),
    ({"init_heads_run": "999"}, "Select a valid choice"),
    ({"lora_r": "-4"}, "greater than or equal to 0"),
    ({"lora_r": "8", "mode": "frozen"}, "frozen mode trains no backbone weights"),
])
def test_dashboard_rejects_bad_settings(project, values, message):
    client = logged_in_client(member(project, Role.RESEARCHER))
    response = client.post(f"/projects/{project.slug}/dashboard/", _form(**values))
    assert response.status_code == 200 and message in response.content.decode()
    assert not RewardModelRun.objects.exists()


def test_cancel_button_and_compare_page(project):
    researcher = member(project, Role.RESEARCHER)
    first = reward_run_create(project=project, enqueue=False)
    second = reward_run_create(project=project, overrides={"mode": "frozen"}, enqueue=False)
    client = logged_in_client(researcher)
    client.post(f"/projects/{project.slug}/reward-runs/{first.pk}/cancel/")
    first.refresh_from_db()
    assert first.status == "cancelled"
    page = client.get(f"/projects/{project.slug}/reward-runs/compare/?runs={first.pk}&runs={second.pk}")
    html = page.content.decode()
    assert f"Run {first.pk}" in html and f"Run {second.pk}" in html and "chart.umd.min.js" in html


def test_run_pages_list_every_setting_as_json(project, settings, tmp_path):
    local_model(settings, tmp_path, "m<b>")  # a folder name is the operator's, but the page still escapes it
    reward_run = reward_run_create(
        project=project, overrides={"chat_template": True, "backbone": "m<b>", "loss_weights": {"helpful": 0.5}},
        enqueue=False,
    )
    client = logged_in_client(member(project, Role.RESEARCHER))
    html = client.get(f"/projects/{project.slug}/reward-runs/{reward_run.pk}/").content.decode()
    table = html[html.index('<details id="run-config">'):]
    assert "<th>chat_template</th><td><code>true</code>" in table
    assert "<th>max_steps</th><td><code>null</code>" in table
    assert "<th>loss_weights</th><td><code>{&quot;helpful&quot;: 0.5}</code>" in table
    assert "&quot;m&lt;b&gt;&quot;" in table and "m<b>" not in html

    RewardModelRun.objects.filter(pk=reward_run.pk).update(status=RunStatus.SUCCEEDED)
    reward_run.refresh_from_db()
    policy_run = policy_run_create(project=project, reward_run=reward_run, overrides={"steps": 3}, enqueue=False)
    html = client.get(f"/projects/{project.slug}/policy-runs/{policy_run.pk}/").content.decode()
    table = html[html.index('<details id="run-config">'):]
    assert "<th>steps</th><td><code>3</code>" in table and "<th>scalarization</th>" in table


@pytest.mark.parametrize("path", ["dashboard/", "reward-runs/compare/"])
def test_dashboard_pages_are_for_admins_and_researchers(project, path):
    assert logged_in_client(member(project, Role.ANNOTATOR)).get(f"/projects/{project.slug}/{path}").status_code == 403
    assert logged_in_client(make_user()).get(f"/projects/{project.slug}/{path}").status_code == 404


def test_chart_js_is_served_from_static_not_a_cdn(project):
    run = reward_run_create(project=project, enqueue=False)
    client = logged_in_client(member(project, Role.RESEARCHER))
    html = client.get(f"/projects/{project.slug}/reward-runs/{run.pk}/").content
    assert b"/static/vendor/chartjs/chart.umd.min.js" in html and b"cdn" not in html.lower()
