"""The run page draws the reward-model report with Chart.js under the Content-Security-Policy."""

import pytest
from playwright.sync_api import expect

from annotate_app.models import Role
from tests.browser.charts import labels_js, points_js
from tests.factories import make_project, member, reported_reward_run

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_report_charts_draw_every_figure_with_no_policy_violation(strict_page, live_server, login):
    page = strict_page
    project = make_project(comparisons=2, overlap_k=1, gold_rate=0)
    run = reported_reward_run(project)
    problems = []
    # What the policy refuses, and any script error (a missing favicon's 404 is neither).
    page.on("console", lambda m: problems.append(m.text) if "Content Security Policy" in m.text else None)
    page.on("pageerror", lambda error: problems.append(str(error)))

    login(page, member(project, Role.RESEARCHER), next=f"/projects/{project.slug}/reward-runs/{run.pk}/")
    page.wait_for_load_state("networkidle")
    expect(page.locator('#report-table tr[data-objective="harmless"]')).to_contain_text("[0.095, 0.905] n=2")

    # Reliability: the diagonal (2 points) and a line per objective through its non-empty bins.
    filled = {key: sum(1 for row in figures["calibration"]["bins"] if row["count"])
              for key, figures in run.report["objectives"].items()}
    assert page.evaluate(labels_js("report-reliability")) == ["perfectly calibrated", "Helpfulness", "Harmlessness"]
    assert page.evaluate(points_js("report-reliability")) == 2 + sum(filled.values())
    # Accuracy: an interval and a point per objective; agreement: three bars per objective; length: two.
    assert page.evaluate(points_js("report-accuracy")) == 4
    assert page.evaluate(labels_js("report-agreement")) == [
        "model–annotators", "model, pairs two annotators judged", "annotator–annotator (ceiling)"]
    assert page.evaluate(points_js("report-length")) == 4
    # The between-head correlation cells are coloured by their value (−1 red … 1 blue).
    colours = page.evaluate("""() => Array.from(document.querySelectorAll('#head-correlation td'))
        .map(cell => cell.style.backgroundColor)""")
    assert len(colours) == 4 and all(colours)
    assert problems == []
