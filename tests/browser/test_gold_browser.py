"""Gold items look exactly like any other task in the browser."""

import re

import pytest
from playwright.sync_api import expect

from annotate_app.models import Task
from annotate_app.services.gold import comparison_mark_gold
from tests.factories import make_project, member

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

STRUCTURE_JS = """() => Array.from(document.querySelectorAll('body *'))
    .map(e => e.tagName + '.' + e.className + '#' + e.id + '[' + Array.from(e.attributes)
        .map(a => a.name).filter(n => !['value', 'action', 'href', 'title'].includes(n)).sort().join(',') + ']')"""


def test_gold_task_has_no_marker_in_the_page(page, login):
    project = make_project(comparisons=2, overlap_k=1, gold_rate=1.0, shuffle_sides=False)
    gold = project.comparisons.get(external_id="c1")
    comparison_mark_gold(comparison=gold, expected={"helpful": "B", "harmless": "tie"})
    annotator = member(project)

    login(page, annotator, next=f"/projects/{project.slug}/label/")
    gold_task = Task.objects.get(annotator=annotator)
    assert gold_task.comparison_id == gold.pk  # gold_rate 1: the gold item comes first
    gold_html = page.content()
    gold_structure = page.evaluate(STRUCTURE_JS)

    for key in ("4", "4", "4"):
        page.keyboard.press(key)
    with page.expect_navigation():
        page.keyboard.press("Enter")
    expect(page.locator("#response-A")).to_have_text("First answer to 0.")
    assert Task.objects.filter(annotator=annotator).count() == 2
    ordinary_html = page.content()

    assert not re.search("gold|expected", gold_html, re.IGNORECASE)
    assert page.evaluate(STRUCTURE_JS) == gold_structure
    assert ordinary_html.count("<fieldset") == gold_html.count("<fieldset")
