"""A researcher generates comparisons from the base policy on the generations page: the worker samples and pairs
them, the page follows the generation to its end under the CSP, and a new pair shows where it came from."""

import pytest
from playwright.sync_api import expect

from annotate_app.models import Generation, Role, RunStatus
from tests.factories import make_project, member

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_researcher_generates_comparisons_from_the_dashboard(strict_page, live_server, login, training_worker,
                                                              tiny_policy):
    page = strict_page
    project = make_project(comparisons=6, overlap_k=1, gold_rate=0)
    researcher = member(project, Role.RESEARCHER)
    login(page, researcher, next=f"/projects/{project.slug}/dashboard/")
    page.click("#generations-link")
    form = page.locator("#generation-form")
    form.locator("select[name=pairing]").select_option("random")
    form.locator("input[name=samples]").fill("2")
    form.locator("input[name=n_prompts]").fill("4")
    form.locator("input[name=max_new_tokens]").fill("4")
    form.locator("details.advanced > summary").click()
    form.locator("select[name=policy]").select_option(tiny_policy)
    form.locator("input[name=include_heldout_prompts]").check()
    page.click("#generation-button")
    page.wait_for_url(f"{live_server.url}/projects/{project.slug}/generations/")

    generation = Generation.objects.get()
    row = page.locator(f'#generations tr[data-generation="{generation.pk}"]')
    # The page asks the API until the generation ends, then reloads with its counts.
    expect(row.locator(".status")).to_have_text("succeeded", timeout=60_000)
    generation.refresh_from_db()
    assert generation.status == RunStatus.SUCCEEDED and generation.created_count > 0
    expect(row.locator(".created")).to_have_text(str(generation.created_count))
    expect(row.locator(".step")).to_have_text("4 / 4")
    generated = project.comparisons.filter(import_batch=generation.import_batch).first()
    page.goto(f"{live_server.url}/projects/{project.slug}/comparisons/{generated.pk}/")
    expect(page.locator("article[data-side=A] h2")).to_have_text("Response A (left) · base")
