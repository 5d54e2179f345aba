"""One full round of the loop in Chromium, under the CSP, with a real Celery worker and tiny models: a researcher
generates comparisons from the base policy, an annotator labels them in the browser, and the second label starts
a round by itself (snapshot + reward-model run), which the Rounds page shows finished."""

import pytest
from playwright.sync_api import expect

from annotate_app.models import Comparison, Project, RewardModelRun, Role, Round, RoundTrigger, RunStatus
from tests.factories import annotate, make_project, member

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.mark.slow
def test_generate_label_two_in_the_browser_and_the_reward_model_retrains_by_itself(
        browser, login, live_server, training_worker, tiny_backbone, tiny_policy):
    # Three labeled comparisons (their prompts are what the policy answers), all at their overlap: the queue
    # holds only what the generation adds.
    project = make_project(comparisons=3, overlap_k=1, gold_rate=0)
    earlier = member(project)
    for _ in range(3):
        annotate(project, earlier, {"harmless": 1, "helpful": -1, "honest": 0})
    Project.objects.filter(pk=project.pk).update(retrain_every=2, retrain_config={
        "backbone": tiny_backbone, "max_steps": 2, "eval_every": 1, "batch_size": 2, "max_length": 32})

    researcher = browser.new_context().new_page()
    login(researcher, member(project, Role.RESEARCHER), next=f"/projects/{project.slug}/generations/")
    researcher.select_option("select[name=pairing]", "random")
    researcher.fill("input[name=samples]", "2")
    researcher.fill("input[name=n_prompts]", "2")
    researcher.fill("input[name=max_new_tokens]", "6")
    researcher.click("#generation-form details.advanced > summary")
    researcher.select_option("select[name=policy]", tiny_policy)
    researcher.click("#generation-button")
    row = researcher.locator("#generations tbody tr").first
    expect(row.locator(".status")).to_have_text("succeeded", timeout=60_000)
    expect(row.locator(".created")).to_have_text("2")
    generated = list(Comparison.objects.filter(project=project, metadata__generated_by__isnull=False))
    assert len(generated) == 2

    annotator_page = browser.new_context().new_page()
    login(annotator_page, member(project), next=f"/projects/{project.slug}/label/")
    for _ in range(2):
        expect(annotator_page.locator("#judgment-form")).to_be_visible()
        for digit in ("2", "4", "6"):  # one judgment per objective: A clearly, tie, B slightly
            annotator_page.keyboard.press(digit)
        with annotator_page.expect_navigation():
            annotator_page.keyboard.press("Enter")
    expect(annotator_page.locator("#queue-empty")).to_contain_text("You labeled 2 comparisons")

    # The second label crossed retrain_every: the worker started round 1 and trained its reward model.
    researcher.goto(f"{live_server.url}/projects/{project.slug}/rounds/")
    for _ in range(60):
        current = Round.objects.filter(project=project).select_related("reward_run").first()
        if current and current.reward_run and current.reward_run.status in (RunStatus.SUCCEEDED, RunStatus.FAILED):
            break
        researcher.wait_for_timeout(1000)
    assert current.trigger == RoundTrigger.AUTO and current.reward_run.status == RunStatus.SUCCEEDED, current
    researcher.reload()
    expect(researcher.locator("body")).to_contain_text(f"Run {current.reward_run.pk} · succeeded")
    # Trained on the labels of the browser: the snapshot holds the two generated comparisons, labeled.
    assert current.reward_run.snapshot_id == current.snapshot_id
    assert RewardModelRun.objects.filter(project=project).count() == 1
