"""Shared test setup: service detection (skip locally, fail in CI) and clients."""

import os

import pytest
from rest_framework.test import APIClient

REQUIRE_SERVICES = os.environ.get("REQUIRE_SERVICES") == "1" or os.environ.get("CI") == "true"


def require(available: bool, message: str) -> None:
    """Skip when a service or file is missing, or fail when REQUIRE_SERVICES=1 (CI)."""
    if available:
        return
    if REQUIRE_SERVICES:
        pytest.fail(f"{message} (REQUIRE_SERVICES=1: this must not be skipped)")
    pytest.skip(message)


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture
def api():
    return APIClient()
