"""The settings page and the Rounds page in Chromium under the CSP: an admin turns the loop on, a researcher reads
two rounds charted per objective."""

import pytest
from playwright.sync_api import expect

from annotate_app.models import PolicyRun, RewardModelRun, Role, RunStatus
from annotate_app.services.policy_runs import policy_run_create
from annotate_app.services.rounds import round_eval_record, round_start
from tests.browser.charts import labels_js, points_js
from tests.factories import labelled_project, member

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _errors(page) -> list[str]:
    seen = []
    page.on("console", lambda m: seen.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda error: seen.append(str(error)))
    return seen


def _measured_round(project, accuracy: float, reward: float):
    current = round_start(project=project)
    RewardModelRun.objects.filter(pk=current.reward_run_id).update(status=RunStatus.SUCCEEDED)
    current.refresh_from_db()
    current.policy_run = policy_run_create(project=project, reward_run=current.reward_run, enqueue=False)
    current.save(update_fields=["policy_run"])
    PolicyRun.objects.filter(pk=current.policy_run_id).update(
        status=RunStatus.SUCCEEDED, eval_after={"harmless": {"raw": reward, "normalized": reward}})
    round_eval_record(round_id=current.pk, accuracy={"harmless": accuracy, "helpful": None, "honest": None}, pairs=3)


def test_an_admin_turns_the_loop_on_and_the_rounds_are_charted(strict_page, live_server, login):
    page = strict_page
    project = labelled_project()
    errors = _errors(page)
    login(page, member(project, Role.ADMIN), next=f"/projects/{project.slug}/settings/")
    page.fill("input[name=retrain_every]", "25")
    page.fill("textarea[name=retrain_config]", '{"mode": "frozen", "learning_rate": -1}')
    page.click("#settings-save")
    expect(page.locator("#settings-form")).to_contain_text("learning_rate: Input should be greater than 0")
    page.fill("textarea[name=retrain_config]", '{"mode": "frozen"}')
    page.click("#settings-save")
    expect(page.locator("body")).to_contain_text("Settings saved.")
    project.refresh_from_db()
    assert (project.retrain_every, project.retrain_config) == (25, {"mode": "frozen"})

    _measured_round(project, accuracy=0.6, reward=0.1)
    _measured_round(project, accuracy=0.8, reward=0.4)
    page.goto(f"{live_server.url}/projects/{project.slug}/rounds/")
    page.wait_for_load_state("networkidle")
    expect(page.locator("#rounds tbody tr[data-round]")).to_have_count(2)
    assert page.evaluate(f"({points_js('chart-round-accuracy')})()") == 6  # 3 objectives × 2 rounds
    assert page.evaluate(f"({labels_js('chart-round-reward')})()") == ["Helpfulness", "Harmlessness", "Honesty"]
    assert page.evaluate("Chart.getChart('chart-round-accuracy').data.datasets[1].data") == [0.6, 0.8]
    assert errors == []
