"""The dashboard's weight-sweep form, and the trade-off page's Pareto front and hypervolume (server side)."""

import json

import pytest

from annotate_app.forms import PolicySweepForm
from annotate_app.models import PolicyRun, PolicySweep, Role, RunStatus
from annotate_app.services.policy_runs import policy_run_create
from annotate_app.services.policy_sweeps import policy_sweep_create
from tests.factories import labelled_project, logged_in_client, member, succeeded_reward_run

pytestmark = pytest.mark.django_db


@pytest.fixture
def project(settings):
    settings.MORM_MAX_ACTIVE_RUNS_PER_PROJECT = 10
    return labelled_project()


def _sweep_form(project, reward_run, **values) -> dict:
    """What a browser posts for the sweep form left at its initial values, with ``values`` (unprefixed names)."""
    form = PolicySweepForm(project=project)
    data = {name: "" if form[name].value() is None else form[name].value() for name in form.fields}
    data.update(reward_run=str(reward_run.pk), **values)
    return {form.add_prefix(name): value for name, value in data.items()}


def test_the_dashboard_form_queues_a_sweep_as_one_group_and_shows_it(project, sent, django_capture_on_commit_callbacks):
    reward_run = succeeded_reward_run(project)
    client = logged_in_client(member(project, Role.RESEARCHER))
    dashboard = client.get(f"/projects/{project.slug}/dashboard/").content.decode()
    assert 'id="sweep-form"' in dashboard and 'name="sweep-simplex_step"' in dashboard
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/projects/{project.slug}/policy-sweeps/start/", _sweep_form(
            project, reward_run, name="helpful vs harmless", values_helpful="0.2, 0.8", values_harmless="0.5 1",
            steps="3"))
    sweep = PolicySweep.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/projects/{project.slug}/policy-runs/compare/?sweep={sweep.pk}"
    runs = list(sweep.runs.order_by("pk"))
    assert [(run.config["weights"]["helpful"], run.config["weights"]["harmless"]) for run in runs] == [
        (0.2, 0.5), (0.2, 1.0), (0.8, 0.5), (0.8, 1.0)]
    assert {run.config["weights"]["honest"] for run in runs} == {0.15}  # the form's weight, as no values were given
    assert {run.config["steps"] for run in runs} == {3} and sweep.name == "helpful vs harmless"
    assert sent == [("rm_worker.run_ppo", run.pk) for run in runs] and len(set(sent.group_ids)) == 1
    page = client.get(response["Location"]).content.decode()
    assert "Weight sweep" in page and f"Sweep {sweep.pk} · helpful vs harmless" in page
    assert all(f"PPO run {run.pk}" in page for run in runs)
    dashboard = client.get(f"/projects/{project.slug}/dashboard/").content.decode()
    assert dashboard.count(f'compare/?sweep={sweep.pk}">sweep {sweep.pk}</a>') == 4  # in the PPO runs' table


@pytest.mark.parametrize(
    "values, error",
    [
        ({}, "Give a simplex step, or values for at least one objective."),
        ({"simplex_step": "0.5", "values_helpful": "1"}, "Give a simplex step or values per objective, not both."),
        ({"values_helpful": "0.2, lots"}, "Write numbers separated by commas"),
        ({"simplex_step": "0.3"}, "simplex_step: expected a step that divides 1"),
        ({"simplex_step": "-1"}, "Ensure this value is greater than or equal to 0."),
        ({"values_helpful": "0, 1, 2, 3, 4, 5", "values_harmless": "0, 1, 2, 3, 4"}, "30 weight vectors"),
        ({"simplex_step": "0.5", "steps": "0"}, "Ensure this value is greater than or equal to 1."),
        ({"simplex_step": "0.5", "name": "n" * 201}, "Ensure this value has at most 200 characters"),
    ],
)
def test_bad_sweep_input_is_a_form_error_and_queues_nothing(project, values, error):
    reward_run = succeeded_reward_run(project)
    client = logged_in_client(member(project, Role.RESEARCHER))
    response = client.post(f"/projects/{project.slug}/policy-sweeps/start/", _sweep_form(project, reward_run,
                                                                                         **values))
    assert response.status_code == 200 and error in response.content.decode()
    assert not PolicyRun.objects.exists() and not PolicySweep.objects.exists()


def test_a_sweep_over_the_quota_is_a_form_error(project, settings):
    settings.MORM_MAX_ACTIVE_RUNS_PER_PROJECT = 2
    reward_run = succeeded_reward_run(project)
    client = logged_in_client(member(project, Role.RESEARCHER))
    response = client.post(f"/projects/{project.slug}/policy-sweeps/start/",
                           _sweep_form(project, reward_run, simplex_step="0.5"))
    assert response.status_code == 200 and "so 6 more do not fit" in response.content.decode()
    assert not PolicyRun.objects.exists()


def test_annotators_may_not_sweep_or_see_the_trade_offs(project):
    reward_run = succeeded_reward_run(project)
    client = logged_in_client(member(project, Role.ANNOTATOR))
    response = client.post(f"/projects/{project.slug}/policy-sweeps/start/",
                           _sweep_form(project, reward_run, simplex_step="1"))
    assert response.status_code == 403 and not PolicyRun.objects.exists()
    assert client.get(f"/projects/{project.slug}/policy-runs/compare/").status_code == 403


def _finish(run: PolicyRun, after: tuple[float, float, float], before=(0.0, 0.0, 0.0)) -> PolicyRun:
    """Mark ``run`` succeeded with held-out mean normalized rewards (helpful, harmless, honest)."""
    keys = ("helpful", "harmless", "honest")
    PolicyRun.objects.filter(pk=run.pk).update(
        status=RunStatus.SUCCEEDED,
        eval_after={key: {"raw": value, "normalized": value} for key, value in zip(keys, after)},
        eval_before={key: {"raw": value, "normalized": value} for key, value in zip(keys, before)},
    )
    return run


def test_the_trade_off_page_draws_the_front_and_states_its_hypervolume(project):
    reward_run = succeeded_reward_run(project)
    sweep = policy_sweep_create(project=project, reward_run=reward_run, grid={"values": {"helpful": [1, 2, 3]}})
    a, b, c = sweep.runs.order_by("pk")
    # On helpful × harmless: a (1, 3), b (2, 2), d (3, 1) make a staircase of area 6; c (1, 1) is dominated.
    _finish(a, (1, 3, 2)), _finish(b, (2, 2, 1)), _finish(c, (1, 1, 1))
    d = _finish(policy_run_create(project=project, reward_run=reward_run, enqueue=False), (3, 1, 1))
    client = logged_in_client(member(project, Role.RESEARCHER))

    html = client.get(f"/projects/{project.slug}/policy-runs/compare/?x=helpful&y=harmless").content.decode()
    assert all(f'<tr data-run="{run.pk}" class="front">' in html for run in (a, b, d))
    assert f'<tr data-run="{c.pk}">' in html
    front = json.loads(html.split('id="tradeoff-front" type="application/json">')[1].split("</script>")[0])
    assert front == [{"x": 1, "y": 3}, {"x": 2, "y": 2}, {"x": 3, "y": 1}]
    assert '<strong id="hypervolume-area">6.0000</strong>' in html
    # In three dimensions, a also reaches honest 2: the slab 0..1 holds the staircase (6), 1..2 a's 1×3 box.
    assert '<strong id="hypervolume-all">9.0000</strong>' in html
    assert "(helpful 0.000,\n    harmless 0.000)" in html and "js/tradeoff_chart.js" in html and "<script>" not in html

    # The sweep alone: a and b on the front, areas 2·2 + 1·1 and (5) + 1·3 in three dimensions.
    html = client.get(f"/projects/{project.slug}/policy-runs/compare/?x=helpful&y=harmless&sweep={sweep.pk}"
                      ).content.decode()
    assert f'data-run="{d.pk}"' not in html
    assert '<strong id="hypervolume-area">5.0000</strong>' in html and '"hypervolume-all">8.0000<' in html


def test_the_reference_point_is_the_lowest_reference_policy_reward(project):
    reward_run = succeeded_reward_run(project)
    _finish(policy_run_create(project=project, reward_run=reward_run, enqueue=False), (1, 1, 1), before=(0, 0, 0))
    _finish(policy_run_create(project=project, reward_run=reward_run, enqueue=False), (2, 0.5, 1), before=(0, -1, 0))
    html = logged_in_client(member(project, Role.RESEARCHER)).get(
        f"/projects/{project.slug}/policy-runs/compare/?x=helpful&y=harmless").content.decode()
    # Above (0, -1): boxes 1×2 and 2×1.5 overlapping in 1×1.5: 2 + 3 - 1.5.
    assert "(helpful 0.000,\n    harmless -1.000)" in html and '"hypervolume-area">3.5000<' in html


def test_no_finished_runs_no_hypervolume_and_an_unknown_sweep_is_404(project):
    client = logged_in_client(member(project, Role.RESEARCHER))
    html = client.get(f"/projects/{project.slug}/policy-runs/compare/").content.decode()
    assert "No finished PPO runs yet." in html and 'id="hypervolume"' not in html
    assert client.get(f"/projects/{project.slug}/policy-runs/compare/?sweep=999999").status_code == 404
    assert client.get(f"/projects/{project.slug}/policy-runs/compare/?sweep=x").status_code == 200
