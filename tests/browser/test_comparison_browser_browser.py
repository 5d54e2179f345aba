"""The comparison browser in Chromium, under the app's Content-Security-Policy: filter, open, mark gold."""

import pytest
from playwright.sync_api import expect

from annotate_app.models import Comparison, Role
from tests.factories import annotate, make_project, member

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_an_admin_filters_opens_a_comparison_and_marks_the_shown_side_gold(strict_page, login):
    page = strict_page
    errors = []
    page.on("console", lambda m: errors.append(m.text) if "Content Security Policy" in m.text else None)
    project = make_project(comparisons=3, overlap_k=1, gold_rate=0)
    annotate(project, member(project), {"helpful": -2})  # c0: labeled, the others not
    admin = member(project, Role.ADMIN)

    login(page, admin, next="/")
    page.get_by_role("link", name="Comparisons").click()
    expect(page.locator("#comparisons tbody tr")).to_have_count(3)
    page.select_option("select[name=status]", "unlabeled")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("#comparisons tbody tr")).to_have_count(2)
    expect(page.locator("#comparisons")).not_to_contain_text("Question number 0?")

    page.locator("#comparisons tbody tr").first.get_by_role("link").click()
    expect(page.locator("#response-A")).to_have_text("First answer to 1.")  # canonical: A on the left
    expect(page.locator("body")).to_contain_text("Canonical orientation")
    page.locator("fieldset[data-objective=helpful]").get_by_label("B (right) is better").check()
    page.locator("fieldset[data-objective=harmless]").get_by_label("Tie").check()
    page.get_by_role("button", name="Mark as gold").click()
    expect(page.locator(".message")).to_contain_text("is now a gold item")
    expect(page.locator("fieldset[data-objective=helpful]").get_by_label("B (right) is better")).to_be_checked()

    comparison = Comparison.objects.get(project=project, external_id="c1")
    assert comparison.is_gold and comparison.gold_expected == {"helpful": "B", "harmless": "tie"}
    assert errors == []
