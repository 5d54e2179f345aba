"""The API docs page: Swagger UI served by the app itself renders the operations under the CSP."""

from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from tests.factories import make_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize("path", ["/api/v1/docs/", "/api/v1/docs"])
def test_docs_page_renders_the_operations_from_the_apps_own_files(strict_page, live_server, login, path):
    page = strict_page
    problems, hosts = [], set()
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on("request", lambda request: hosts.add(urlsplit(request.url).netloc))
    login(page, make_user(), next=path)

    operation = page.locator(".opblock-summary-path", has_text="/api/v1/projects/{slug}/tasks/next")
    expect(operation.first).to_be_visible()
    assert page.locator(".opblock").count() > 20  # every operation, not one
    operation.first.click()  # an operation opens to show its parameters and responses
    expect(page.locator(".opblock-body .parameters-container").first).to_be_visible()
    assert hosts == {urlsplit(live_server.url).netloc}  # no CDN: every file came from the app
    assert problems == []  # no script or style refused by the Content-Security-Policy
