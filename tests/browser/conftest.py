"""Browser tests: Debian's Chromium driven by sync Playwright against pytest-django's live_server.

Playwright's sync API keeps an asyncio event loop running in the test thread (from the first
launch until the session ends), so Django's async-safety check would reject ORM calls made by
the tests themselves. Allowing them is the documented workaround for Playwright + Django; the
live server answers requests in its own thread either way.
"""

import os
import threading
from pathlib import Path

import pytest
from celery.contrib.testing.worker import start_worker

from config.celery_app import app
from rm_worker import runtime
from tests.conftest import require
from tests.tiny_models import save_tiny_model

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
    page = _new_page(browser, bypass_csp=True)
    yield page
    page.context.close()


@pytest.fixture
def strict_page(browser):
    """A fresh page under the app's Content-Security-Policy, as a user's browser sees it."""
    page = _new_page(browser)
    yield page
    page.context.close()


def _new_page(browser, **context_options):
    """A page in a context of its own (own cookies): closing ``page.context`` closes both."""
    page = browser.new_context(**context_options).new_page()
    page.set_default_timeout(15_000)
    return page


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


@pytest.fixture
def training_worker(settings, tmp_path):
    """A real Celery worker thread consuming both queues over kombu's in-memory transport."""
    settings.MORM_ARTIFACTS_DIR = tmp_path / "artifacts"
    saved = {key: app.conf[key] for key in ("broker_url", "result_backend")}
    app.conf.update(broker_url="memory://", result_backend="cache+memory://")
    # Drop connections made with the old broker settings.
    app._pool = None
    app.amqp._producer_pool = None
    with start_worker(app, pool="solo", perform_ping_check=False, queues=["default", "training"],
                      shutdown_timeout=30):
        yield
    app.conf.update(saved)
    app._pool = None
    app.amqp._producer_pool = None


class StepGate:
    """Holds a training run before each step until the test lets it go on (``rm_worker.runtime.before_step``).

    ``allow(n)`` lets the run take n more steps, ``open()`` lets it run to its end. Before it
    waits, the gate flushes the run's metrics writer, so the page can show every step taken.
    A run held longer than ``timeout`` seconds fails (a test that lost track of it).
    """

    def __init__(self, timeout: float = 120):
        self.timeout = timeout
        self._condition = threading.Condition()
        self._allowed = 0
        self._taken = 0
        self._open = False

    def __call__(self, writer) -> None:
        """Runs in the worker before each step."""
        if not self._may_step():
            writer.flush()  # the page can show every step taken while the run waits
        with self._condition:
            if not self._condition.wait_for(self._may_step, self.timeout):
                raise TimeoutError(f"step gate: held {self.timeout} s after {self._taken} steps")
            self._taken += 1

    def _may_step(self) -> bool:
        return self._open or self._taken < self._allowed

    def allow(self, steps: int) -> None:
        with self._condition:
            self._allowed += steps
            self._condition.notify_all()

    def open(self) -> None:
        with self._condition:
            self._open = True
            self._condition.notify_all()


@pytest.fixture
def step_gate(training_worker, monkeypatch):
    """Training runs on ``training_worker`` take a step only when the test allows it; the cancel
    poll asks the database before every step, so a cancel takes effect at the next one."""
    gate = StepGate()
    monkeypatch.setattr(runtime, "before_step", gate)
    monkeypatch.setattr(runtime, "CANCEL_POLL_SECONDS", 0.0)
    yield gate
    gate.open()  # a test that failed mid-run must not leave the worker waiting at the gate


def _operator_model(settings, tmp_path, name: str, kind: str) -> str:
    """A tiny model saved as ``name`` under a model root of the operator's (first in MORM_MODEL_DIRS)."""
    root = tmp_path / "models"
    save_tiny_model(root / name, kind)
    if root not in settings.MORM_MODEL_DIRS:
        settings.MORM_MODEL_DIRS = [root, *settings.MORM_MODEL_DIRS]
    return name


@pytest.fixture
def tiny_backbone(settings, tmp_path):
    """A tiny BERT the dashboard offers as the backbone "tiny-bert"."""
    return _operator_model(settings, tmp_path, "tiny-bert", "encoder")


@pytest.fixture
def tiny_policy(settings, tmp_path):
    """A tiny causal Llama the dashboard offers as the policy "tiny-policy"."""
    return _operator_model(settings, tmp_path, "tiny-policy", "decoder")
