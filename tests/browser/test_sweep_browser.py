"""A weight sweep in Chromium, under the CSP: queue it from the dashboard, read its runs' Pareto front once finished."""

import pytest
from playwright.sync_api import expect

from annotate_app.models import PolicyRun, Role, RunStatus
from tests.factories import labelled_project, member, succeeded_reward_run

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

FRONT_JS = "() => Chart.getChart('tradeoff').data.datasets.find(d => d.label === 'Pareto front').data"


def test_a_researcher_queues_a_sweep_and_reads_its_front(strict_page, live_server, login, sent, settings):
    settings.MORM_MAX_ACTIVE_RUNS_PER_PROJECT = 10
    page = strict_page
    project = labelled_project()
    reward_run = succeeded_reward_run(project)

    login(page, member(project, Role.RESEARCHER), next=f"/projects/{project.slug}/dashboard/")
    form = page.locator("#sweep-form")
    form.locator("select[name=sweep-reward_run]").select_option(str(reward_run.pk))
    form.locator("input[name=sweep-name]").fill("halves")
    form.locator("input[name=sweep-simplex_step]").fill("0.5")
    form.locator("input[name=sweep-steps]").fill("2")
    page.click("#sweep-button")
    page.wait_for_url(f"{live_server.url}/projects/{project.slug}/policy-runs/compare/?sweep=*")
    expect(page.locator(".message")).to_contain_text("queued: 6 PPO runs")
    expect(page.locator("#sweep-runs tbody tr")).to_have_count(6)
    assert len(sent) == 6 and len(set(sent.group_ids)) == 1  # one Celery group

    # What the workers would record: here each run's held-out reward is its weight, the reference policy's 0.
    for run in PolicyRun.objects.all():
        weights = run.config["weights"]
        PolicyRun.objects.filter(pk=run.pk).update(
            status=RunStatus.SUCCEEDED,
            eval_after={key: {"raw": w, "normalized": w} for key, w in weights.items()},
            eval_before={key: {"raw": 0.0, "normalized": 0.0} for key in weights},
        )
    page.reload()
    # On helpful × harmless the front is (0, 1), (0.5, 0.5), (1, 0); only (0.5, 0.5) is above the reference.
    assert page.evaluate(FRONT_JS) == [{"x": 0, "y": 1}, {"x": 0.5, "y": 0.5}, {"x": 1, "y": 0}]
    expect(page.locator("#hypervolume-area")).to_have_text("0.2500")
    expect(page.locator("#tradeoff-table tr.front")).to_have_count(3)
