"""The run pages' server side: progress from the start, the stage, Cancelling…, flash messages, weights, the
objectives every chart colours by."""

import json
import re
from datetime import timedelta

import pytest
from django.template import Context, Template
from django.utils import timezone

from annotate_app.models import PolicyRun, RewardModelRun, Role, RunStatus
from annotate_app.services.reward_runs import reward_run_create
from tests.factories import labelled_project, logged_in_client, member

pytestmark = pytest.mark.django_db


@pytest.fixture
def project():
    return labelled_project()


def _form(**values):
    return {"data": "latest", "mode": "multi_head", "epochs": "1", "learning_rate": "0.001", "batch_size": "8",
            "max_length": "64", "w_helpful": "1", "w_harmless": "1", "w_honest": "1", "backbone": "",
            "pooling": "auto", **values}


def _json_script(html: str, element_id: str):
    found = re.search(rf'<script id="{element_id}" type="application/json">(.*?)</script>', html, re.S)
    return json.loads(found.group(1))


def test_a_queued_run_shows_its_total_steps_and_the_queued_message_once(project):
    client = logged_in_client(member(project, Role.RESEARCHER))
    response = client.post(f"/projects/{project.slug}/dashboard/", _form(max_steps="30"), follow=True)
    run = RewardModelRun.objects.get()
    html = response.content.decode()
    assert '<span id="step">0 / 30</span>' in html
    # Tagged so the page removes it once the run has left the queue (run_charts.js).
    assert re.search(rf'class="message run-queued[^"]*">Reward model run {run.pk} queued.', html)
    assert "queued." not in client.get(f"/projects/{project.slug}/reward-runs/{run.pk}/").content.decode()


def test_a_run_without_a_known_total_shows_a_question_mark(project):
    run = reward_run_create(project=project, enqueue=False)
    html = logged_in_client(member(project, Role.RESEARCHER)).get(
        f"/projects/{project.slug}/reward-runs/{run.pk}/").content.decode()
    assert '<span id="step">0 / ?</span>' in html


def test_a_running_run_shows_its_stage_and_a_requested_cancel(project):
    run = reward_run_create(project=project, overrides={"max_steps": 30}, enqueue=False)
    RewardModelRun.objects.filter(pk=run.pk).update(status=RunStatus.RUNNING, stage="loading backbone",
                                                    cancel_requested=True)
    client = logged_in_client(member(project, Role.RESEARCHER))
    html = client.get(f"/projects/{project.slug}/reward-runs/{run.pk}/").content.decode()
    assert "loading backbone…" in html
    assert '<strong id="status">cancelling…</strong>' in html
    assert re.search(r'id="cancel" disabled>Cancelling…</button>', html)
    body = client.get(f"/api/v1/projects/{project.slug}/reward-runs/{run.pk}/metrics").json()
    assert (body["stage"], body["cancel_requested"], body["eta_seconds"], body["total_steps"]) == (
        "loading backbone", True, None, 30)


def test_the_metrics_api_gives_the_eta_of_a_running_run(project):
    run = reward_run_create(project=project, overrides={"max_steps": 30}, enqueue=False)
    RewardModelRun.objects.filter(pk=run.pk).update(status=RunStatus.RUNNING, step=10, seconds_per_step=2.0,
                                                    step_at=timezone.now() - timedelta(seconds=5))
    body = logged_in_client(member(project, Role.RESEARCHER)).get(
        f"/api/v1/projects/{project.slug}/reward-runs/{run.pk}/metrics").json()
    # 20 steps left at 2 s, less the 5 s already spent on step 11 (less the moment the request took).
    assert 30.0 < body["eta_seconds"] <= 35.0


def test_weights_read_as_objective_and_two_decimals_in_the_objectives_order():
    template = Template("{% load morm_format %}{{ w|weights }} | {{ w|weights:order }}")
    rendered = template.render(Context({"w": {"honest": 0.15, "helpful": 0.4, "harmless": 0.45},
                                        "order": ["helpful", "harmless", "honest"]}))
    assert rendered == "honest 0.15 · helpful 0.40 · harmless 0.45 | helpful 0.40 · harmless 0.45 · honest 0.15"


def test_chart_pages_give_the_objectives_in_project_order(project):
    objectives = list(project.objectives.values_list("key", "name"))
    project.objectives.filter(key=objectives[0][0]).update(order=99)  # the first goes last
    expected = [{"key": key, "name": name} for key, name in objectives[1:] + objectives[:1]]
    run = reward_run_create(project=project, enqueue=False)
    client = logged_in_client(member(project, Role.RESEARCHER))
    for path in (f"reward-runs/{run.pk}/", f"reward-runs/compare/?runs={run.pk}", "policy-runs/compare/", "stats/"):
        html = client.get(f"/projects/{project.slug}/{path}").content.decode()
        assert _json_script(html, "chart-objectives") == expected, path
        assert "js/palette.js" in html, path


def test_the_stats_page_draws_the_label_distributions(project):
    html = logged_in_client(member(project, Role.RESEARCHER)).get(f"/projects/{project.slug}/stats/").content.decode()
    distribution = _json_script(html, "label-distribution")
    assert distribution["scale_points"] == ["-3", "-2", "-1", "0", "1", "2", "3"]
    harmless = next(o for o in distribution["objectives"] if o["key"] == "harmless")
    assert sum(harmless["counts"]) == 1 and 'id="chart-distribution"' in html and "js/stats_charts.js" in html


def test_ppo_weights_read_as_objective_and_two_decimals_on_the_dashboard_and_the_run_page(project):
    weights = {"helpful": 0.4, "harmless": 0.45, "honest": 0.15}
    run = PolicyRun.objects.create(
        project=project, reward_run=reward_run_create(project=project, enqueue=False), total_steps=10,
        config={"scalarization": "static", "weights": weights, "steps": 10, "objectives": list(weights)})
    client = logged_in_client(member(project, Role.RESEARCHER))
    shown = "helpful 0.40 · harmless 0.45 · honest 0.15"
    assert f"static: {shown}" in client.get(f"/projects/{project.slug}/dashboard/").content.decode()
    page = client.get(f"/projects/{project.slug}/policy-runs/{run.pk}/").content.decode()
    assert f'<span id="weights">{shown}</span>' in page and "{&#x27;helpful&#x27;" not in page
