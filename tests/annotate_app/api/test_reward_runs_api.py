"""Reward-model runs over REST: create (queued), list, detail, metrics since a step, cancel; roles."""

import pytest

from annotate_app.models import MetricPoint, RewardModelRun, Role, RunStatus, Snapshot
from annotate_app.services.snapshots import snapshot_create
from rm_worker.runtime import MetricsWriter
from tests.factories import annotate, follow_next, make_project, make_user, member

pytestmark = pytest.mark.django_db


@pytest.fixture
def project():
    project = make_project(comparisons=3, overlap_k=1, gold_rate=0)
    user = member(project)
    for score in (-2, 1, 3):
        annotate(project, user, {"harmless": score})
    return project


def _url(project, tail=""):
    return f"/api/v1/projects/{project.slug}/reward-runs/{tail}"


def test_create_makes_a_snapshot_of_the_latest_labels_and_queues_on_commit(api, project,
                                                                            django_capture_on_commit_callbacks):
    api.force_authenticate(member(project, Role.RESEARCHER))
    with django_capture_on_commit_callbacks() as callbacks:
        response = api.post(_url(project), {"config": {"mode": "frozen", "epochs": 2,
                                                       "loss_weights": {"harmless": 2.0}}}, format="json")
    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "queued" and body["config"]["mode"] == "frozen" and body["config"]["epochs"] == 2
    assert body["config"]["objectives"] == ["helpful", "harmless", "honest"]
    snapshot = Snapshot.objects.get()
    assert body["snapshot"] == snapshot.pk and body["snapshot_sha256"] == snapshot.sha256
    assert len(callbacks) == 1


def test_create_on_an_existing_snapshot(api, project):
    snapshot = snapshot_create(project=project, format="jsonl")
    api.force_authenticate(member(project, Role.ADMIN))
    body = api.post(_url(project), {"snapshot": snapshot.pk}, format="json").json()
    assert body["snapshot"] == snapshot.pk and Snapshot.objects.count() == 1


@pytest.mark.parametrize(
    "payload, fragment",
    [
        ({"config": {"mode": "giant"}}, "mode"),
        ({"config": {"learning_rate": -1}}, "learning_rate"),
        ({"config": {"batch_size": 0}}, "batch_size"),
        ({"config": {"rating_loss_weight": -0.5}}, "rating_loss_weight"),
        ({"config": {"wings": 2}}, "Unknown setting"),
        ({"config": {"objectives": ["style"]}}, "style"),
        ({"config": {"loss_weights": {"style": 1.0}}}, "style"),
        ({"config": "fast"}, "config"),
        ({"snapshot": 999999}, "No Snapshot matches"),
        ({"init_heads_run": 999999}, 'init_heads_run: Invalid pk "999999"'),
        ({"init_heads_run": "first"}, "init_heads_run"),
    ],
)
def test_bad_run_requests_are_rejected(api, project, payload, fragment):
    api.force_authenticate(member(project, Role.RESEARCHER))
    response = api.post(_url(project), payload, format="json")
    assert response.status_code in (400, 404) and fragment in response.json()["detail"]
    assert not RewardModelRun.objects.exists()


def test_create_starting_heads_from_a_succeeded_run(api, project):
    api.force_authenticate(member(project, Role.RESEARCHER))
    first = RewardModelRun.objects.get(pk=api.post(_url(project), {}, format="json").json()["id"])
    response = api.post(_url(project), {"init_heads_run": first.pk}, format="json")
    assert response.status_code == 400 and "heads come from a succeeded one" in response.json()["detail"]
    first.status = RunStatus.SUCCEEDED
    first.save()
    body = api.post(_url(project), {"init_heads_run": first.pk, "config": {"mode": "multi_head"}}, format="json").json()
    assert body["config"]["init_heads_from"].endswith(f"reward_runs/{first.pk}/model")
    assert body["init_heads_run"] == first.pk
    assert api.get(_url(project, f"{first.pk}/")).json()["init_heads_run"] is None


def test_a_csv_snapshot_cannot_be_trained_on(api, project):
    snapshot = snapshot_create(project=project, format="csv")
    api.force_authenticate(member(project, Role.RESEARCHER))
    response = api.post(_url(project), {"snapshot": snapshot.pk}, format="json")
    assert response.status_code == 400 and "jsonl" in response.json()["detail"]


def test_metrics_since_a_step_and_cancel(api, project):
    api.force_authenticate(member(project, Role.RESEARCHER))
    run = RewardModelRun.objects.get(pk=api.post(_url(project), {}, format="json").json()["id"])
    writer = MetricsWriter(run, batch_size=1000, interval=3600)
    writer.log(1, {"train/loss/harmless": 0.7})
    writer.log(2, {"train/loss/harmless": 0.6, "eval/accuracy/harmless": 0.5})
    writer.progress(2, 10)
    assert MetricPoint.objects.count() == 0  # buffered until a flush
    writer.flush()
    body = api.get(_url(project, f"{run.pk}/metrics")).json()
    assert body["step"] == 2 and body["total_steps"] == 10
    assert body["metrics"]["train/loss/harmless"] == [[1, 0.7], [2, 0.6]]
    later = api.get(_url(project, f"{run.pk}/metrics?since=1")).json()["metrics"]
    assert later == {"train/loss/harmless": [[2, 0.6]], "eval/accuracy/harmless": [[2, 0.5]]}
    assert api.get(_url(project, f"{run.pk}/metrics?since=two")).status_code == 400
    cancelled = api.post(_url(project, f"{run.pk}/cancel")).json()
    assert cancelled["status"] == RunStatus.CANCELLED and cancelled["cancel_requested"] is True
    assert [r["id"] for r in api.get(_url(project)).json()["results"]] == [run.pk]
    assert api.get(_url(project, f"{run.pk}/")).json()["status"] == "cancelled"


def test_roles_and_scoping(api, project):
    api.force_authenticate(member(project, Role.RESEARCHER))
    run_id = api.post(_url(project), {}, format="json").json()["id"]
    api.force_authenticate(member(project, Role.ANNOTATOR))
    assert api.get(_url(project)).status_code == 403
    assert api.post(_url(project), {}, format="json").status_code == 403
    assert api.post(_url(project, f"{run_id}/cancel")).status_code == 403
    api.force_authenticate(make_user())
    assert api.get(_url(project, f"{run_id}/")).status_code == 404
    other = make_project()
    api.force_authenticate(member(other, Role.ADMIN))
    assert api.get(f"/api/v1/projects/{other.slug}/reward-runs/{run_id}/").status_code == 404


def _steps(chunk):
    return sorted({step for points in chunk["metrics"].values() for step, _ in points})


def test_metrics_come_in_bounded_chunks_of_whole_steps(api, project, settings):
    settings.MORM_METRICS_CHUNK_POINTS = 5
    api.force_authenticate(member(project, Role.RESEARCHER))
    run = RewardModelRun.objects.get(pk=api.post(_url(project), {}, format="json").json()["id"])
    writer = MetricsWriter(run, batch_size=1000, interval=3600)
    logged = {}
    for step in range(1, 8):
        values = {"train/loss/harmless": 1 / step, "train/loss/honest": 2 / step}
        if step % 3 == 0:
            values["eval/accuracy/harmless"] = step / 10
        writer.log(step, values)
        for key, value in values.items():
            logged.setdefault(key, []).append([step, value])
    writer.flush()
    chunks = follow_next(api, _url(project, f"{run.pk}/metrics?since=-1"))
    assert [_steps(chunk) for chunk in chunks] == [[1, 2], [3, 4], [5, 6], [7]]
    assert all(sum(map(len, chunk["metrics"].values())) <= 5 for chunk in chunks)
    assert chunks[0]["next"].endswith(f"/reward-runs/{run.pk}/metrics?since=2")
    merged = {}
    for chunk in chunks:
        for key, points in chunk["metrics"].items():
            merged.setdefault(key, []).extend(points)
    assert merged == logged
    assert follow_next(api, _url(project, f"{run.pk}/metrics")) == chunks
    settings.MORM_METRICS_CHUNK_POINTS = 5000
    whole = api.get(_url(project, f"{run.pk}/metrics?since=2")).json()
    assert whole["next"] is None and _steps(whole) == [3, 4, 5, 6, 7]


def test_a_step_with_more_points_than_a_chunk_comes_whole(api, project, settings):
    settings.MORM_METRICS_CHUNK_POINTS = 2
    api.force_authenticate(member(project, Role.RESEARCHER))
    run = RewardModelRun.objects.get(pk=api.post(_url(project), {}, format="json").json()["id"])
    writer = MetricsWriter(run, batch_size=1000, interval=3600)
    writer.log(1, {"train/loss/helpful": 0.9, "train/loss/harmless": 0.8, "train/loss/honest": 0.7})
    writer.log(2, {"train/loss/helpful": 0.5})
    writer.flush()
    chunks = follow_next(api, _url(project, f"{run.pk}/metrics?since=0"))
    assert [_steps(chunk) for chunk in chunks] == [[1], [2]]
    assert len(chunks[0]["metrics"]) == 3 and chunks[-1]["next"] is None
