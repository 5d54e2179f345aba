"""The per-project cap on queued + running runs (MORM_MAX_ACTIVE_RUNS_PER_PROJECT): reward-model and
PPO runs count together; REST answers 429, the dashboard a form error, the commands a CommandError."""

import threading
import time

import pytest
from django.core.management import CommandError, call_command
from django.db import connection, connections, transaction

from annotate_app.forms import PolicyRunForm, RewardRunForm
from annotate_app.models import PolicyRun, RewardModelRun, Role, Snapshot
from annotate_app.services.reward_runs import reward_run_create
from annotate_app.services.runs import RunQuotaExceeded
from annotate_app.services.snapshots import snapshot_create
from tests.conftest import require
from tests.factories import annotate, labelled_project, logged_in_client, make_project, member, succeeded_reward_run

pytestmark = pytest.mark.django_db


@pytest.fixture
def project():
    return labelled_project()


def _runs() -> int:
    return RewardModelRun.objects.count() + PolicyRun.objects.count()


def test_rest_refuses_the_run_over_the_quota_with_429_until_one_ends(api, project, settings):
    settings.MORM_MAX_ACTIVE_RUNS_PER_PROJECT = 2
    done = succeeded_reward_run(project)  # finished runs do not count
    api.force_authenticate(member(project, Role.RESEARCHER))
    url = f"/api/v1/projects/{project.slug}/"
    first = api.post(url + "reward-runs/", {}, format="json")
    assert first.status_code == 202
    assert api.post(url + "policy-runs/", {"reward_run": done.pk}, format="json").status_code == 202
    runs, snapshots = _runs(), Snapshot.objects.count()

    for kind, body in (("reward-runs/", {}), ("policy-runs/", {"reward_run": done.pk})):
        refused = api.post(url + kind, body, format="json")
        assert refused.status_code == 429
        assert refused.json() == {"detail": f"Project {project.slug} already has 2 runs queued or running "
                                            "(the limit is 2); wait for one to finish or cancel one."}
    assert (_runs(), Snapshot.objects.count()) == (runs, snapshots)  # nothing written, not even a snapshot

    assert api.post(url + f"reward-runs/{first.json()['id']}/cancel").status_code == 200
    assert api.post(url + "reward-runs/", {}, format="json").status_code == 202


def test_the_quota_is_per_project(api, project, settings):
    settings.MORM_MAX_ACTIVE_RUNS_PER_PROJECT = 1
    other = make_project(comparisons=2, overlap_k=1, gold_rate=0)
    annotate(other, member(other), {"harmless": 1})
    reward_run_create(project=other, enqueue=False)
    api.force_authenticate(member(project, Role.RESEARCHER))
    assert api.post(f"/api/v1/projects/{project.slug}/reward-runs/", {}, format="json").status_code == 202


def _unbound_values(form) -> dict:
    """What a browser posts for a form left at its initial values."""
    return {name: "" if form[name].value() is None else form[name].value() for name in form.fields}


def test_the_dashboard_forms_show_the_quota_as_a_form_error(project, settings):
    settings.MORM_MAX_ACTIVE_RUNS_PER_PROJECT = 2
    done = succeeded_reward_run(project)
    reward_run_create(project=project, enqueue=False)
    reward_run_create(project=project, enqueue=False)
    runs = _runs()
    client = logged_in_client(member(project, Role.RESEARCHER))
    reward_form = {**_unbound_values(RewardRunForm(project=project)), "data": "latest"}
    ppo_form = {**_unbound_values(PolicyRunForm(project=project)), "reward_run": str(done.pk)}

    for path, data in (("dashboard/", reward_form), ("policy-runs/start/", ppo_form)):
        response = client.post(f"/projects/{project.slug}/{path}", data)
        assert response.status_code == 200, path
        assert "already has 2 runs queued or running (the limit is 2)" in response.content.decode(), path
    assert _runs() == runs


def test_the_commands_refuse_with_a_command_error(project, settings):
    settings.MORM_MAX_ACTIVE_RUNS_PER_PROJECT = 1
    done = succeeded_reward_run(project)
    reward_run_create(project=project, enqueue=False)
    runs = _runs()
    with pytest.raises(CommandError, match=r"already has 1 runs queued or running \(the limit is 1\)"):
        call_command("train_rm", project.slug)
    with pytest.raises(CommandError, match=r"the limit is 1"):
        call_command("run_ppo", project.slug, "--reward-run", str(done.pk))
    assert _runs() == runs


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_creates_at_once_cannot_both_take_the_last_slot(settings):
    """A holds the last slot in an open transaction; B, started meanwhile, must wait for A's
    commit on the project row lock and then be refused (without the lock B sees no run and passes)."""
    require(connection.vendor == "postgresql", "concurrency test needs Postgres (set DATABASE_URL)")
    settings.MORM_MAX_ACTIVE_RUNS_PER_PROJECT = 1
    project = make_project(comparisons=2, overlap_k=1, gold_rate=0)
    annotate(project, member(project), {"harmless": 1})
    snapshot = snapshot_create(project=project, format="jsonl")
    a_created, a_release = threading.Event(), threading.Event()
    outcome: dict[str, object] = {}

    def create_a():
        try:
            with transaction.atomic():
                reward_run_create(project=project, snapshot=snapshot, enqueue=False)
                a_created.set()
                assert a_release.wait(timeout=60)
            outcome["a"] = "created"
        except BaseException as error:  # reported below; a thread's exception is otherwise lost
            outcome["a"] = error
        finally:
            a_created.set()
            connections.close_all()

    def create_b():
        outcome["b_pid"] = connection.cursor().connection.info.backend_pid
        try:
            reward_run_create(project=project, snapshot=snapshot, enqueue=False)
            outcome["b"] = "created"
        except RunQuotaExceeded as error:
            outcome["b"] = error
        finally:
            connections.close_all()

    a, b = threading.Thread(target=create_a), threading.Thread(target=create_b)
    a.start()
    assert a_created.wait(timeout=60) and "a" not in outcome
    b.start()
    # B must end up waiting on A's lock (or, if it does not lock, finish on its own): poll for either.
    waiting = False
    with connection.cursor() as cursor:
        for _ in range(600):
            if not b.is_alive():
                break
            if "b_pid" in outcome:
                cursor.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", [outcome["b_pid"]])
                row = cursor.fetchone()
                if row and row[0] == "Lock":
                    waiting = True
                    break
            time.sleep(0.05)
    b_finished_while_a_held_the_slot = "b" in outcome
    a_release.set()
    a.join(timeout=60)
    b.join(timeout=60)
    assert waiting and not b_finished_while_a_held_the_slot, outcome
    assert outcome["a"] == "created"
    assert isinstance(outcome["b"], RunQuotaExceeded)
    assert RewardModelRun.objects.filter(project=project).count() == 1
