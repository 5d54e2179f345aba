"""Schemathesis against the OpenAPI schema, on a live server, for every role.

For each operation, generated requests (valid ones, invalid ones, and ones on random ids) go to a
live server over the test database, with a token of the role. A response fails when it is a 5xx,
when its status code or content type is not documented for the operation, or when its body does
not match the documented schema.

Bounded for CI: ``MORM_SCHEMATHESIS_EXAMPLES`` examples per operation and role (default 6), derandomized
so a run is reproducible; raise it locally for a longer probe. Postgres only: it is the database that
refuses what SQLite stores (NUL bytes), so it finds more. Queued runs are never sent to a broker here
(the quota caps how many queue); no training starts.
"""

import os
import re
from collections import Counter
from dataclasses import dataclass, field

import hypothesis
import pytest
import requests
import schemathesis
from django.db import connection
from hypothesis import strategies as st
from rest_framework.authtoken.models import Token

from annotate_app.models import RewardModelRun, Role, RunStatus
from annotate_app.services.generations import generation_create
from annotate_app.services.policy_runs import policy_run_create
from annotate_app.services.queue import task_next_for
from annotate_app.services.reward_runs import reward_run_create
from annotate_app.services.snapshots import snapshot_create
from tests.conftest import require
from tests.factories import annotate, make_project, make_user, member

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

EXAMPLES = int(os.environ.get("MORM_SCHEMATHESIS_EXAMPLES", 6))
ROLES = ["anonymous", Role.ANNOTATOR, Role.RESEARCHER, Role.ADMIN, "superuser"]
CHECKS = [schemathesis.checks.not_a_server_error, schemathesis.checks.status_code_conformance,
          schemathesis.checks.content_type_conformance, schemathesis.checks.response_schema_conformance]


@dataclass
class World:
    """The seeded project and the ids its paths can name."""

    slug: str
    ids: dict[str, int]
    policy_run: int
    tokens: dict[str, str] = field(default_factory=dict)

    def path_parameters(self, path: str) -> dict:
        names = re.findall(r"{(\w+)}", path)
        known = {"slug": self.slug, **self.ids}
        if "policy-runs" in path:
            known["run_id"] = self.policy_run
        return {name: known[name] for name in names if name in known}


def _seed() -> World:
    project = make_project(comparisons=6, overlap_k=1, gold_rate=0)
    users = {"superuser": make_user(is_superuser=True)}
    for role in (Role.ANNOTATOR, Role.RESEARCHER, Role.ADMIN):
        users[role] = member(project, role)
    labeller = member(project)
    for score in (-2, 1, 3):
        annotate(project, labeller, {"harmless": score})
    snapshot = snapshot_create(project=project, format="jsonl")
    done = reward_run_create(project=project, snapshot=snapshot, enqueue=False)
    RewardModelRun.objects.filter(pk=done.pk).update(status=RunStatus.SUCCEEDED)
    done.refresh_from_db()
    policy = policy_run_create(project=project, reward_run=done, enqueue=False)
    task = task_next_for(project=project, user=users[Role.ANNOTATOR])
    world = World(slug=project.slug, policy_run=policy.pk,
                  ids={"run_id": done.pk, "snapshot_id": snapshot.pk, "task_id": task.pk,
                       "comparison_id": project.comparisons.first().pk,
                       "generation_id": generation_create(project=project, enqueue=False).pk})
    world.tokens = {role: Token.objects.create(user=user).key for role, user in users.items()}
    return world


@dataclass
class Report:
    operations: int = 0
    requests: int = 0
    statuses: Counter = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)


def _describe(failure: BaseException) -> str:
    """Each check that failed: its title and the first line of its message."""
    failures = failure.exceptions if isinstance(failure, BaseExceptionGroup) else (failure,)
    return "; ".join(f"{getattr(one, 'title', type(one).__name__)}: {str(getattr(one, 'message', one)).strip()[:300]}"
                     for one in failures)


def _fuzz(schema, base_url: str, headers: dict, world: World) -> Report:
    report = Report()
    for result in schema.get_all_operations():
        operation = result.ok()
        report.operations += 1
        known = world.path_parameters(operation.path)
        strategy = st.one_of(
            operation.as_strategy(path_parameters=known),
            operation.as_strategy(generation_mode=schemathesis.GenerationMode.NEGATIVE, path_parameters=known),
            operation.as_strategy(),
        )
        seen: set[str] = set()

        @hypothesis.settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
                             phases=[hypothesis.Phase.generate], suppress_health_check=list(hypothesis.HealthCheck))
        @hypothesis.given(case=strategy)
        def probe(case):
            response = case.call(base_url=base_url, headers=headers, timeout=60)
            report.requests += 1
            report.statuses[response.status_code] += 1
            try:
                case.validate_response(response, checks=CHECKS, headers=headers)
            except (AssertionError, BaseExceptionGroup) as failure:
                # One line per operation and status: the first request that showed it, to reproduce.
                key = f"{operation.label} -> {response.status_code}"
                if key not in seen:
                    seen.add(key)
                    curl = case.as_curl_command(headers=headers)
                    report.failures.append(f"{key}: {_describe(failure)}\n    {curl}")

        probe()
    return report


@pytest.fixture
def no_broker(monkeypatch):
    """Runs queue in the database only: nothing reaches a broker, so no worker trains."""
    sent = []
    monkeypatch.setattr("celery.app.task.Task.apply_async", lambda task, *args, **kwargs: sent.append(task.name))
    return sent


@pytest.mark.parametrize("role", ROLES)
def test_every_response_is_documented_and_none_is_a_server_error(live_server, settings, no_broker, role):
    require(connection.vendor == "postgresql", "schemathesis runs on Postgres (set DATABASE_URL)")
    settings.MORM_MAX_ACTIVE_RUNS_PER_PROJECT = 3
    world = _seed()
    raw = requests.get(f"{live_server.url}/api/v1/schema/", headers={"Accept": "application/vnd.oai.openapi+json"},
                       timeout=60).json()
    schema = schemathesis.openapi.from_dict(raw)
    headers = {} if role == "anonymous" else {"Authorization": f"Token {world.tokens[role]}"}

    report = _fuzz(schema, live_server.url, headers, world)

    print(f"schemathesis as {role}: {report.operations} operations, {report.requests} requests, "
          f"{len(report.failures)} failures; statuses {dict(sorted(report.statuses.items()))}")
    assert report.operations >= 30 and report.requests >= report.operations
    assert not report.failures, f"{len(report.failures)} failures as {role}:\n" + "\n".join(report.failures)
