"""Fixtures shared by the service tests."""

import pytest

from annotate_app.services import dispatch


@pytest.fixture
def sent(monkeypatch):
    """The Celery tasks the services send (by name, after commit), as ``(name, *args)``."""
    tasks = []

    class Broker:
        def send_task(self, name, args):
            tasks.append((name, *args))

    monkeypatch.setattr(dispatch, "current_app", Broker())
    return tasks
