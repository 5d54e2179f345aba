"""A researcher fine-tunes a policy with PPO from the dashboard and compares finished runs."""

import pytest
from playwright.sync_api import expect

from annotate_app.models import PolicyRun, Role, RunStatus
from annotate_app.services.reward_runs import reward_run_create
from rm_worker.reward_runner import run_reward_training
from tests.browser.charts import labels_js, points_js
from tests.factories import annotate, make_project, member
from tests.tiny_models import tiny_bert_factory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

REWARD_POINTS_JS = points_js("chart-reward-normalized")
# Samples are stored every 5 steps (sample_every) and at the last.
STEPS = 6


@pytest.mark.slow
def test_researcher_runs_ppo_from_the_dashboard_and_compares_runs(page, live_server, login, step_gate, tiny_policy):
    project = make_project(comparisons=10, overlap_k=1, gold_rate=0)
    annotator = member(project)
    for i in range(10):
        annotate(project, annotator, {"harmless": 2 if i % 2 else -2, "helpful": 1, "honest": -1})
    reward_run = reward_run_create(project=project, enqueue=False,
                                   overrides={"max_steps": 4, "eval_every": 2, "batch_size": 2, "max_length": 32})
    step_gate.allow(4)  # the reward model's own steps, trained here in the test's thread
    assert run_reward_training(reward_run.pk, backbone_factory=tiny_bert_factory) == RunStatus.SUCCEEDED
    researcher = member(project, Role.RESEARCHER)

    login(page, researcher, next=f"/projects/{project.slug}/dashboard/")
    form = page.locator("#ppo-form")
    form.locator("select[name=reward_run]").select_option(str(reward_run.pk))
    form.locator("select[name=policy]").select_option(tiny_policy)
    form.locator("input[name=steps]").fill(str(STEPS))
    form.locator("details.advanced > summary").click()
    form.locator("input[name=batch_size]").fill("2")
    form.locator("input[name=max_new_tokens]").fill("6")
    form.locator("select[name=scalarization]").select_option("constrained")
    form.locator("select[name=constraint_objective]").select_option("harmless")
    form.locator("input[name=constraint_threshold]").fill("0.5")
    page.click("#ppo-button")
    page.wait_for_url(f"{live_server.url}/projects/{project.slug}/policy-runs/*/")

    # The run is held before each step until allowed: the page follows it step by step.
    expect(page.locator("#status")).to_have_text("running", timeout=60_000)
    step_gate.allow(2)
    expect(page.locator("#step")).to_have_text(f"2 / {STEPS}", timeout=60_000)
    page.wait_for_function(f"({REWARD_POINTS_JS})() === 6")  # one point per objective and step
    # Legends name the objectives, in the project's order.
    assert page.evaluate(labels_js("chart-reward-normalized")) == ["Helpfulness", "Harmlessness", "Honesty"]
    expect(page.locator("#samples tbody tr")).to_have_count(0)  # none stored before step 5
    step_gate.allow(3)
    expect(page.locator("#step")).to_have_text(f"5 / {STEPS}")
    page.wait_for_function(f"({REWARD_POINTS_JS})() === 15")
    # Step 5's samples appear while the run still runs.
    expect(page.locator("#samples tbody tr").first.locator("td").first).to_have_text("5")
    expect(page.locator("#status")).to_have_text("running")
    step_gate.open()

    # The page reloads once when the run ends, showing before/after on held-out prompts and samples.
    expect(page.locator("#status")).to_have_text("succeeded", timeout=120_000)
    run = PolicyRun.objects.get()
    assert run.eval_after and run.eval_before
    expect(page.locator("#before-after tr[data-objective=harmless] td").nth(2)).not_to_have_text("—")
    expect(page.locator("#samples tbody tr").first).not_to_contain_text("No samples yet")
    # After the reload the charts fill again from the first metrics fetch.
    page.wait_for_function("""() => { const chart = Chart.getChart('chart-weights');
        return chart && chart.data.datasets.some(d => d.label === 'Lagrange multiplier λ'); }""")

    page.goto(f"{live_server.url}/projects/{project.slug}/policy-runs/compare/?x=helpful&y=harmless")
    expect(page.locator("#tradeoff-table")).to_contain_text(f"PPO run {run.pk}")
    datasets = page.evaluate("() => Chart.getChart('tradeoff').data.datasets.map(d => d.label)")
    assert datasets[0] == "reference policy" and f"run {run.pk}" in datasets[1]
