"""Every chart of the app draws an objective in one colour (static/js/palette.js), names it as the project
does, and counts steps in whole numbers."""

import pytest

from annotate_app.models import RewardModelRun, Role, RunStatus
from annotate_app.services.reward_runs import reward_run_create
from rm_worker.runtime import MetricsWriter
from tests.factories import annotate, make_project, member

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

COLOURS_JS = "(id) => Object.fromEntries(Chart.getChart(id).data.datasets.map(d => [d.label, d.borderColor]))"
BAR_COLOURS_JS = "(id) => Object.fromEntries(Chart.getChart(id).data.datasets.map(d => [d.label, d.backgroundColor]))"
NAMES = ["Helpfulness", "Harmlessness", "Honesty"]


def _run_with_two_steps(project) -> RewardModelRun:
    run = reward_run_create(project=project, enqueue=False)
    writer = MetricsWriter(run, batch_size=10_000, interval=3600)
    for step in (1, 2):
        # Logged in another order than the project's, and accuracy for two objectives only.
        writer.log(step, {f"train/loss/{key}": 1 / step for key in ("honest", "harmless", "helpful")})
        writer.log(step, {f"eval/accuracy/{key}": 0.5 for key in ("harmless", "honest")})
    writer.progress(2, 2)
    writer.flush()
    RewardModelRun.objects.filter(pk=run.pk).update(status=RunStatus.SUCCEEDED)
    return run


def test_an_objective_has_one_colour_and_its_name_in_every_chart(page, live_server, login):
    project = make_project(comparisons=2, overlap_k=1, gold_rate=0)
    annotate(project, member(project), {"harmless": 1, "helpful": -2, "honest": 0})
    run = _run_with_two_steps(project)
    login(page, member(project, Role.RESEARCHER), next=f"/projects/{project.slug}/reward-runs/{run.pk}/")
    page.wait_for_function("() => Chart.getChart('chart-accuracy')?.data.datasets.length === 2")
    loss = page.evaluate(COLOURS_JS, "chart-loss")
    accuracy = page.evaluate(COLOURS_JS, "chart-accuracy")
    assert list(loss) == NAMES  # the project's order, whatever order they were logged in
    assert len(set(loss.values())) == 3
    assert accuracy == {name: loss[name] for name in ("Harmlessness", "Honesty")}
    # Two steps: ticks at whole steps only.
    ticks = page.evaluate("() => Chart.getChart('chart-loss').scales.x.ticks.map(t => t.value)")
    assert ticks and all(value == int(value) for value in ticks)

    page.goto(f"{live_server.url}/projects/{project.slug}/reward-runs/compare/?runs={run.pk}")
    page.wait_for_function("() => !document.getElementById('compare-charts').hasAttribute('aria-busy')")
    compared = page.evaluate(COLOURS_JS, "chart-loss")
    assert compared == {f"run {run.pk} · {name}": colour for name, colour in loss.items()}

    page.goto(f"{live_server.url}/projects/{project.slug}/stats/")
    page.wait_for_function("() => Chart.getChart('chart-distribution')")
    assert page.evaluate(BAR_COLOURS_JS, "chart-distribution") == loss
    counts = page.evaluate("() => Chart.getChart('chart-distribution').data.datasets.map(d => d.data)")
    assert [sum(c) for c in counts] == [1, 1, 1]
