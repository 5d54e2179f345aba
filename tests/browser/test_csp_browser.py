"""The Content-Security-Policy breaks nothing: the labeling and run pages run their scripts with no violation."""

import time

import pytest
from playwright.sync_api import expect

from annotate_app.models import RewardModelRun, Role, RunStatus
from annotate_app.services.policy_runs import policy_run_create
from annotate_app.services.reward_runs import reward_run_create
from rm_worker.runtime import MetricsWriter
from tests.browser.charts import points_js
from tests.factories import annotate, make_project, member

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

POINTS_JS = points_js("chart-loss")

INLINE_SCRIPT_JS = """() => { const s = document.createElement('script');
    s.textContent = 'window.inlineRan = true'; document.body.appendChild(s); return window.inlineRan === true; }"""


def _violations(page) -> list[str]:
    """Collect what Chromium reports about the policy (it logs each refused script, style or frame)."""
    seen = []
    page.on("console", lambda m: seen.append(m.text) if "Content Security Policy" in m.text else None)
    page.on("pageerror", lambda error: seen.append(str(error)))
    return seen


def _run_with_metrics(project) -> RewardModelRun:
    run = reward_run_create(project=project, enqueue=False)
    writer = MetricsWriter(run, batch_size=10_000, interval=3600)
    for step in range(1, 6):
        writer.log(step, {f"train/loss/{key}": 1 / step for key in ("helpful", "harmless", "honest")})
    writer.progress(5, 5)
    writer.flush()
    RewardModelRun.objects.filter(pk=run.pk).update(status=RunStatus.SUCCEEDED)
    run.refresh_from_db()
    return run


def _wait_until(page, predicate_js: str, timeout_s: float = 15) -> None:
    """Poll ``predicate_js`` through page.evaluate (wait_for_function uses eval, which the policy refuses)."""
    deadline = time.monotonic() + timeout_s
    while not page.evaluate(predicate_js):
        assert time.monotonic() < deadline, f"still false after {timeout_s} s: {predicate_js}"
        page.wait_for_timeout(100)


def test_labeling_and_run_pages_report_no_csp_violation(strict_page, live_server, login):
    page = strict_page
    project = make_project(comparisons=3, overlap_k=1, gold_rate=0)
    annotate(project, member(project), {"harmless": 1})
    violations = _violations(page)

    login(page, member(project), next=f"/projects/{project.slug}/label/")
    page.keyboard.press("1")  # label.js answers keys: its script runs under the policy
    expect(page.locator("input[name=choice_helpful]").nth(0)).to_be_checked()

    run = _run_with_metrics(project)
    policy = policy_run_create(project=project, reward_run=run, enqueue=False)
    page.context.clear_cookies()
    p = f"/projects/{project.slug}"
    login(page, member(project, Role.RESEARCHER), next=f"{p}/reward-runs/{run.pk}/")
    _wait_until(page, f"() => ({POINTS_JS})() === 15")
    for path in (f"{p}/reward-runs/compare/?runs={run.pk}", f"{p}/policy-runs/{policy.pk}/",
                 f"{p}/policy-runs/compare/?runs={policy.pk}", f"{p}/dashboard/"):
        response = page.goto(f"{live_server.url}{path}")
        assert "script-src 'self'" in response.headers["content-security-policy"]
        page.wait_for_load_state("networkidle")
    assert violations == []

    # The check can fail: an inline script is refused, and Chromium says so on the console.
    with page.expect_console_message(lambda message: "Content Security Policy" in message.text):
        assert page.evaluate(INLINE_SCRIPT_JS) is False
    assert any("inline script" in text for text in violations)
