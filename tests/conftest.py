"""Shared test setup: service detection (skip locally, fail in CI) and clients."""

import importlib
import os
import socket
from pathlib import Path
from uuid import uuid4

import pytest
from celery import Celery
from celery.result import AsyncResult
from django.apps import apps
from django.db.models.signals import post_migrate
from rest_framework.test import APIClient

from annotate_app.services import dispatch

REQUIRE_SERVICES = os.environ.get("REQUIRE_SERVICES") == "1" or os.environ.get("CI") == "true"


def _role_groups_back_after_a_flush(sender, **kwargs):
    """A transactional test (``transaction=True``, ``live_server``) empties every table after it, the role groups
    that migration 0002 made included; the flush then sends post_migrate, and this puts them back. Django orders
    transactional tests last, but pytest-xdist sends whole modules to each process, so tests that need the groups
    can come after one there."""
    if sender.name == "annotate_app":
        role_groups = importlib.import_module("annotate_app.migrations.0002_role_groups")
        role_groups.create_groups(kwargs.get("apps", apps), None)


post_migrate.connect(_role_groups_back_after_a_flush, dispatch_uid="tests-role-groups-after-flush")


def require(available: bool, message: str) -> None:
    """Skip when a service or file is missing, or fail when REQUIRE_SERVICES=1 (CI)."""
    if available:
        return
    if REQUIRE_SERVICES:
        pytest.fail(f"{message} (REQUIRE_SERVICES=1: this must not be skipped)")
    pytest.skip(message)


def require_redis() -> None:
    """Skip, or fail in CI, unless a Redis server answers on 127.0.0.1:6379."""
    try:
        socket.create_connection(("127.0.0.1", 6379), timeout=2).close()
        up = True
    except OSError:
        up = False
    require(up, "Redis is not reachable on 127.0.0.1:6379")


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    """API rate-limit counts (Django's cache) start from zero in every test: every test client
    calls from 127.0.0.1, and user ids come round again from test to test."""
    from django.core.cache import cache

    cache.clear()


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """Tests make thousands of users and logins: Django's default PBKDF2 (a million rounds, about
    0.3 s a password on a 2-core machine) was most of the suite's time. test_auth_api keeps a
    login under the configured hashers."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _files_in_tmp(settings, tmp_path):
    """Snapshots, run folders and other files a test writes land in its own folder (run ids repeat
    across test databases, so a shared var/artifacts would mix the runs of parallel test processes)."""
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.MORM_ARTIFACTS_DIR = tmp_path / "artifacts"


@pytest.fixture(autouse=True)
def _no_run_quota(settings):
    """Tests queue as many runs as they need (pages of runs); the quota's own tests set a limit."""
    settings.MORM_MAX_ACTIVE_RUNS_PER_PROJECT = 10**6


@pytest.fixture
def api():
    return APIClient()


SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def shared_data_file(name: str):
    """A file from ../shared/data (beside the repo); skip, or fail in CI, when absent."""
    path = SHARED_DATA / name
    require(path.is_file(), f"../shared/data not present ({path} is missing): real-data test skipped")
    return path


class SentTasks(list):
    """``(name, *args)`` per task sent; ``group_ids`` holds each one's Celery group id (None when sent alone)."""

    def __init__(self):
        super().__init__()
        self.group_ids = []


@pytest.fixture
def sent(monkeypatch):
    """The Celery tasks the web sends by name (after commit), as ``(name, *args)``; nothing reaches a broker.
    A group's tasks are sent one by one (``SentTasks.group_ids`` tells them apart)."""
    tasks = SentTasks()

    class Broker(Celery):
        def send_task(self, name, args, kwargs=None, **options):  # options: countdown (webhook retries), group_id
            tasks.append((name, *args))
            tasks.group_ids.append(options.get("group_id"))
            return AsyncResult(options.get("task_id") or str(uuid4()), app=self)

    monkeypatch.setattr(dispatch, "current_app", Broker("web-under-test", broker="memory://", set_as_current=False))
    return tasks
