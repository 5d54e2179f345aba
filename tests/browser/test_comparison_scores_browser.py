"""A comparison's head scores in Chromium, under the CSP: pick a run, ask for its scores, read them once stored."""

import pytest
from playwright.sync_api import expect

from annotate_app.models import Role
from annotate_app.services.comparison_scores import comparison_scores_record
from tests.factories import labelled_project, member, reported_reward_run

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_researcher_picks_a_run_asks_for_its_scores_and_reads_them(strict_page, login, sent):
    page = strict_page
    project = labelled_project()
    comparison, run = project.comparisons.order_by("id").first(), reported_reward_run(project)

    login(page, member(project, Role.RESEARCHER), next=f"/projects/{project.slug}/comparisons/{comparison.pk}/")
    page.select_option("#reward-scores select[name=run]", str(run.pk))
    page.get_by_role("button", name="Show").click()
    page.get_by_role("button", name=f"Score with run {run.pk}").click()
    expect(page.locator(".message")).to_contain_text("is queued for a training worker")
    assert sent == [("rm_worker.score_comparisons", run.pk, [comparison.pk])]

    # What the worker stores once it has scored both responses with the run's model.
    comparison_scores_record(run=run, rewards={comparison.pk: {key: {"a": 1.0, "b": 0.0}
                                                               for key in run.config["objectives"]}})
    page.reload()
    scores = page.locator("#comparison-scores")
    expect(scores.locator("tbody tr")).to_have_count(len(run.config["objectives"]))
    expect(scores.locator("tbody tr").first).to_contain_text("0.731")  # σ(1.0 − 0.0)
    expect(page.get_by_role("button", name=f"Score with run {run.pk}")).to_have_count(0)
