"""A researcher fine-tunes a policy with PPO from the dashboard and compares finished runs."""

import pytest
from playwright.sync_api import expect

from annotate_app.models import PolicyRun, Role, RunStatus
from annotate_app.services.reward_runs import reward_run_create
from rm_worker.reward_runner import run_reward_training
from tests.browser.test_dashboard_browser import training_worker  # noqa: F401  (fixture)
from tests.factories import annotate, make_project, member
from tests.tiny_models import make_tokenizer, tiny_bert_factory, tiny_causal_lm

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

POINTS_JS = """() => { const chart = Chart.getChart('chart-reward-normalized');
    return chart ? chart.data.datasets.reduce((n, d) => n + d.data.length, 0) : 0; }"""


@pytest.fixture
def tiny_policy(settings, tmp_path):
    """A tiny causal Llama saved as the model "tiny-policy" under a model root of the operator's."""
    path = tmp_path / "models" / "tiny-policy"
    tiny_causal_lm().save_pretrained(path)
    make_tokenizer("decoder").save_pretrained(path)
    settings.MORM_MODEL_DIRS = [path.parent, *settings.MORM_MODEL_DIRS]
    return path.name


def test_researcher_runs_ppo_from_the_dashboard_and_compares_runs(page, live_server, login, training_worker,  # noqa: F811
                                                                  tiny_policy):
    project = make_project(comparisons=10, overlap_k=1, gold_rate=0)
    annotator = member(project)
    for i in range(10):
        annotate(project, annotator, {"harmless": 2 if i % 2 else -2, "helpful": 1, "honest": -1})
    reward_run = reward_run_create(project=project, enqueue=False,
                                   overrides={"max_steps": 4, "eval_every": 2, "batch_size": 2, "max_length": 32})
    assert run_reward_training(reward_run.pk, backbone_factory=tiny_bert_factory) == RunStatus.SUCCEEDED
    researcher = member(project, Role.RESEARCHER)

    login(page, researcher, next=f"/projects/{project.slug}/dashboard/")
    form = page.locator("#ppo-form")
    form.locator("select[name=reward_run]").select_option(str(reward_run.pk))
    form.locator("select[name=policy]").select_option(tiny_policy)
    form.locator("input[name=steps]").fill("120")  # long enough to be watched while it runs
    form.locator("input[name=batch_size]").fill("2")
    form.locator("input[name=max_new_tokens]").fill("6")
    form.locator("select[name=scalarization]").select_option("constrained")
    form.locator("select[name=constraint_objective]").select_option("harmless")
    form.locator("input[name=constraint_threshold]").fill("0.5")
    page.click("#ppo-button")
    page.wait_for_url(f"{live_server.url}/projects/{project.slug}/policy-runs/*/")

    expect(page.locator("#status")).to_have_text("running", timeout=120_000)
    page.wait_for_function(f"({POINTS_JS})() > 0", timeout=120_000)
    seen = page.evaluate(POINTS_JS)
    labels = page.evaluate("() => Chart.getChart('chart-reward-normalized').data.datasets.map(d => d.label)")
    assert sorted(labels) == ["harmless", "helpful", "honest"]
    page.wait_for_function(f"({POINTS_JS})() > {seen}", timeout=120_000)

    # The page reloads once when the run ends, showing before/after on held-out prompts and samples.
    expect(page.locator("#status")).to_have_text("succeeded", timeout=600_000)
    run = PolicyRun.objects.get()
    assert run.eval_after and run.eval_before
    expect(page.locator("#before-after tr[data-objective=harmless] td").nth(2)).not_to_have_text("—")
    expect(page.locator("#samples tbody tr").first).not_to_contain_text("No samples yet")
    # After the reload the charts fill again from the first metrics fetch.
    page.wait_for_function("""() => { const chart = Chart.getChart('chart-weights');
        return chart && chart.data.datasets.some(d => d.label === 'ppo/lagrange_multiplier'); }""")

    page.goto(f"{live_server.url}/projects/{project.slug}/policy-runs/compare/?x=helpful&y=harmless")
    expect(page.locator("#tradeoff-table")).to_contain_text(f"PPO run {run.pk}")
    datasets = page.evaluate("() => Chart.getChart('tradeoff').data.datasets.map(d => d.label)")
    assert datasets[0] == "reference policy" and f"run {run.pk}" in datasets[1]
