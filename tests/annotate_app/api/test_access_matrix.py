"""Every API endpoint asked by every kind of caller: who gets in (2xx) and who gets 401, 403 or 404.

Callers: anonymous; a signed-in non-member; the annotator holding the task under test; a
second annotator of the project (someone else's task); a researcher; a project admin; a
superuser. Non-members get 404 for anything in a project (a guessed slug reveals nothing),
members whose role is not enough 403, and a task is anyone else's 404.
"""

from dataclasses import dataclass

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import resolve

from annotate_app.models import RewardModelRun, Role, RunStatus
from annotate_app.services.generations import generation_create
from annotate_app.services.gold import comparison_mark_gold
from annotate_app.services.policy_runs import policy_run_create
from annotate_app.services.policy_sweeps import policy_sweep_create
from annotate_app.services.projects import membership_set
from annotate_app.services.queue import task_next_for
from annotate_app.services.reward_runs import reward_run_create
from annotate_app.services.runs import run_cancel
from annotate_app.services.snapshots import snapshot_create
from annotate_app.services.webhooks import webhook_create
from tests.factories import annotate, jsonl, make_project, native_line

pytestmark = pytest.mark.django_db

ROLES = ["anonymous", "non_member", "annotator", "second_annotator", "researcher", "admin", "superuser"]
PROJECT_ROLES = {"annotator": Role.ANNOTATOR, "second_annotator": Role.ANNOTATOR, "researcher": Role.RESEARCHER,
                 "admin": Role.ADMIN}
MEMBERS = {"annotator", "second_annotator", "researcher", "admin", "superuser"}
DATA = {"researcher", "admin", "superuser"}
ADMINS = {"admin", "superuser"}
TIES = {"judgments": {key: {"choice": "tie"} for key in ("helpful", "harmless", "honest")}}


@dataclass
class World:
    slug: str
    task: int
    snapshot: int
    reward_run: int  # queued: detail, metrics, cancel
    done_run: int  # succeeded: what a new PPO run trains against
    policy_run: int
    gold: int
    plain: int
    annotation: int  # the researcher's
    webhook: int
    generation: int  # queued: detail, cancel
    sweep: int  # its one run cancelled, so it takes no slot of the run quota


def _user(name: str, **extra):
    # No password: hashing one per test would cost more than every request of the matrix.
    return get_user_model().objects.create_user(username=name, **extra)


@pytest.fixture
def world() -> World:
    project = make_project(comparisons=4, overlap_k=2, gold_rate=0)
    users = {name: _user(name) for name in PROJECT_ROLES}
    for name, role in PROJECT_ROLES.items():
        membership_set(project=project, user=users[name], role=role)
    # A label, so snapshots have something in them.
    annotation = annotate(project, users["researcher"], {"helpful": 1}).annotation.pk
    task = task_next_for(project=project, user=users["annotator"])
    snapshot = snapshot_create(project=project, format="jsonl")
    done_run = reward_run_create(project=project, snapshot=snapshot, enqueue=False)
    RewardModelRun.objects.filter(pk=done_run.pk).update(status=RunStatus.SUCCEEDED)
    done_run.refresh_from_db()
    reward_run = reward_run_create(project=project, snapshot=snapshot, enqueue=False)
    policy_run = policy_run_create(project=project, reward_run=done_run, enqueue=False)
    gold, plain = project.comparisons.order_by("-id")[:2]
    comparison_mark_gold(comparison=gold, expected={"helpful": "A"})
    webhook = webhook_create(project=project, url="https://93.184.215.14/hook", events=["snapshot.created"])
    generation = generation_create(project=project, enqueue=False)
    sweep = policy_sweep_create(project=project, reward_run=done_run, grid={"values": {"helpful": [1]}})
    run_cancel(run=sweep.runs.get())
    return World(project.slug, task.pk, snapshot.pk, reward_run.pk, done_run.pk, policy_run.pk, gold.pk, plain.pk,
                 annotation, webhook.pk, generation.pk, sweep.pk)


def _caller(role: str):
    if role == "anonymous":
        return None
    if role == "non_member":
        return _user("outsider")
    if role == "superuser":
        return _user("root", is_staff=True, is_superuser=True)
    return get_user_model().objects.get(username=role)


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str  # under /api/v1/, with {slug}, {task}, ... filled from the World
    success: int
    allowed: frozenset[str]
    body: object = None  # a dict, or a callable of the World

    @property
    def scope(self) -> str:
        """Whose thing it is: a task or annotation (its annotator's), a project's, or nobody's (global)."""
        if "{task}" in self.path or "{annotation}" in self.path:
            return "task"
        return "project" if "{slug}" in self.path else "global"

    def expected(self, role: str) -> int:
        if role in self.allowed:
            return self.success
        if role == "anonymous":
            return 401
        if self.scope == "task" or (self.scope == "project" and role == "non_member"):
            return 404
        return 403


EVERYONE = frozenset(ROLES)
SIGNED_IN = EVERYONE - {"anonymous"}
E = Endpoint
ENDPOINTS = [
    E("get", "schema/", 200, EVERYONE),
    E("get", "docs/", 200, EVERYONE),
    E("get", "me", 200, SIGNED_IN),
    E("get", "projects/", 200, SIGNED_IN),
    E("post", "projects/", 201, frozenset({"superuser"}), {"name": "New one"}),
    E("get", "projects/{slug}/", 200, MEMBERS),
    E("patch", "projects/{slug}/", 200, ADMINS, {"description": "Changed"}),
    E("get", "projects/{slug}/members/", 200, ADMINS),
    E("post", "projects/{slug}/members/", 200, ADMINS, {"username": "second_annotator", "role": "researcher"}),
    E("post", "projects/{slug}/comparisons/import", 201, ADMINS,
      lambda w: {"file": SimpleUploadedFile("more.jsonl", jsonl([native_line(100)]))}),
    E("get", "projects/{slug}/imports/", 200, ADMINS),
    E("get", "projects/{slug}/stats", 200, DATA),
    E("get", "projects/{slug}/snapshots/", 200, DATA),
    E("post", "projects/{slug}/snapshots/", 201, DATA, {"format": "jsonl"}),
    E("get", "projects/{slug}/snapshots/{snapshot}/", 200, DATA),
    E("get", "projects/{slug}/snapshots/{snapshot}/download", 200, DATA),
    E("put", "projects/{slug}/comparisons/{plain}/gold", 200, ADMINS, {"expected": {"honest": "B"}}),
    E("delete", "projects/{slug}/comparisons/{gold}/gold", 204, ADMINS),
    E("get", "projects/{slug}/reward-runs/", 200, DATA),
    E("post", "projects/{slug}/reward-runs/", 202, DATA, lambda w: {"snapshot": w.snapshot}),
    E("get", "projects/{slug}/reward-runs/{reward_run}/", 200, DATA),
    E("get", "projects/{slug}/reward-runs/{reward_run}/metrics", 200, DATA),
    E("post", "projects/{slug}/reward-runs/{reward_run}/cancel", 200, DATA),
    E("get", "projects/{slug}/reward-runs/{reward_run}/report", 200, DATA),
    # The succeeded run has no model folder: an OpenRLHF bundle for a served model needs none.
    E("post", "projects/{slug}/reward-runs/{done_run}/bundle", 200, DATA,
      {"target": "openrlhf", "reward_url": "http://rm.internal:8000/get_reward"}),
    E("get", "projects/{slug}/policy-runs/", 200, DATA),
    E("post", "projects/{slug}/policy-runs/", 202, DATA, lambda w: {"reward_run": w.done_run, "config": {"steps": 1}}),
    E("get", "projects/{slug}/policy-sweeps/", 200, DATA),
    E("get", "projects/{slug}/policy-sweeps/{sweep}/", 200, DATA),
    E("post", "projects/{slug}/policy-sweeps/", 202, DATA,
      lambda w: {"reward_run": w.done_run, "grid": {"simplex_step": 1, "objectives": ["helpful"]}}),
    E("get", "projects/{slug}/policy-runs/{policy_run}/", 200, DATA),
    E("get", "projects/{slug}/policy-runs/{policy_run}/metrics", 200, DATA),
    E("get", "projects/{slug}/policy-runs/{policy_run}/samples", 200, DATA),
    E("post", "projects/{slug}/policy-runs/{policy_run}/cancel", 200, DATA),
    E("get", "projects/{slug}/webhooks/", 200, ADMINS),
    E("post", "projects/{slug}/webhooks/", 201, ADMINS,
      {"url": "https://93.184.215.14/other", "events": ["annotation.created"]}),
    E("get", "projects/{slug}/webhooks/{webhook}/", 200, ADMINS),
    E("patch", "projects/{slug}/webhooks/{webhook}/", 200, ADMINS, {"active": False}),
    E("delete", "projects/{slug}/webhooks/{webhook}/", 204, ADMINS),
    E("get", "projects/{slug}/webhooks/{webhook}/deliveries/", 200, ADMINS),
    E("get", "projects/{slug}/generations/", 200, DATA),
    E("post", "projects/{slug}/generations/", 202, DATA, {"config": {"n_prompts": 2}}),
    E("get", "projects/{slug}/generations/{generation}/", 200, DATA),
    E("post", "projects/{slug}/generations/{generation}/cancel", 200, DATA),
    E("get", "projects/{slug}/rounds/", 200, DATA),
    E("post", "projects/{slug}/rounds/", 202, DATA),
    E("get", "projects/{slug}/tasks/next", 200, MEMBERS),
    # Tasks are scoped to their annotator: anyone else's is not found, whatever their role.
    E("post", "tasks/{task}/submit", 201, frozenset({"annotator"}), TIES),
    E("post", "tasks/{task}/skip", 200, frozenset({"annotator"})),
    E("get", "annotations/{annotation}", 200, frozenset({"researcher"})),
    E("put", "annotations/{annotation}", 200, frozenset({"researcher"}), TIES),
]


def _call(api, endpoint: Endpoint, world: World):
    body = endpoint.body(world) if callable(endpoint.body) else endpoint.body
    form = "multipart" if body and any(hasattr(v, "read") for v in body.values()) else "json"
    return getattr(api, endpoint.method)(f"/api/v1/{endpoint.path.format(**vars(world))}", body, format=form)


def test_the_matrix_asks_every_api_route(world):
    from annotate_app.api.urls import urlpatterns

    asked = {resolve(f"/api/v1/{e.path.format(**vars(world))}").url_name for e in ENDPOINTS}
    # auth/token/ is for everyone by design; test_auth_api covers it.
    assert asked == {p.name for p in urlpatterns if p.name} - {"api-token"}


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: f"{e.method} {e.path}")
def test_who_may_call_what(api, world, endpoint, role):
    caller = _caller(role)
    if caller is not None:
        api.force_authenticate(caller)
    response = _call(api, endpoint, world)
    assert response.status_code == endpoint.expected(role), (role, response.content[:300])
    if response.status_code >= 400:
        assert "detail" in response.json()
