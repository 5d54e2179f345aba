"""Browser tests: Debian's Chromium driven by sync Playwright against pytest-django's live_server.

Playwright's sync API keeps an asyncio event loop running in the test thread (from the first
launch until the session ends), so Django's async-safety check would reject ORM calls made by
the tests themselves. Allowing them is the documented workaround for Playwright + Django; the
live server answers requests in its own thread either way.
"""

import os
from pathlib import Path

import pytest

from tests.conftest import require

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def browser():
    require(CHROMIUM.exists(), "Debian's chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    """A fresh page in its own context (own cookies), closed after the test.

    It bypasses the app's Content-Security-Policy: Playwright's ``wait_for_function`` compiles
    its predicate with eval, which the policy forbids. ``strict_page`` keeps the policy
    (test_csp_browser shows the pages work under it).
    """
    context = browser.new_context(bypass_csp=True)
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


@pytest.fixture
def strict_page(browser):
    """A fresh page under the app's Content-Security-Policy, as a user's browser sees it."""
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


@pytest.fixture
def login(live_server):
    """log_in(page, user, next=path): log in through the real login form, land on ``next``."""

    def log_in(page, user, next: str = "/", password: str = "pw-for-tests"):
        page.goto(f"{live_server.url}/accounts/login/?next={next}")
        page.fill("input[name=username]", user.get_username())
        page.fill("input[name=password]", password)
        page.press("input[name=password]", "Enter")
        page.wait_for_url(f"{live_server.url}{next}")
        return page

    return log_in
