"""Snapshots and gold items over REST: roles, validation, download and sha256."""

import hashlib

import pytest
from django.core.management import call_command

from annotate_app.models import Comparison, Role, Snapshot
from tests.factories import annotate, make_project, make_user, member

pytestmark = pytest.mark.django_db


@pytest.fixture
def project():
    project = make_project(comparisons=2, overlap_k=1, gold_rate=0)
    user = member(project)
    annotate(project, user, {"helpful": -2, "harmless": 1})
    annotate(project, user, {"helpful": 3})
    return project


def _url(project, tail=""):
    return f"/api/v1/projects/{project.slug}/snapshots/{tail}"


@pytest.mark.parametrize("role", [Role.ADMIN, Role.RESEARCHER])
def test_create_list_manifest_download(api, project, role):
    api.force_authenticate(member(project, role))
    created = api.post(_url(project), {"format": "trl", "objective": "helpful", "margin": True}, format="json")
    assert created.status_code == 201
    body = created.json()
    assert body["status"] == "ready" and body["manifest"]["objectives"]["helpful"]["pairs"] == 2
    assert [s["id"] for s in api.get(_url(project)).json()["results"]] == [body["id"]]
    detail = api.get(_url(project, f"{body['id']}/")).json()
    assert detail["manifest"]["filters"]["margin"] is True
    download = api.get(_url(project, f"{body['id']}/download"))
    content = b"".join(download.streaming_content)
    assert download.status_code == 200 and hashlib.sha256(content).hexdigest() == body["sha256"]
    assert download["X-Content-SHA256"] == body["sha256"]
    assert "attachment" in download["Content-Disposition"]


def test_annotator_gets_403_and_non_member_404(api, project):
    call_command("export_dataset", project.slug, "--format", "jsonl", "-o", "/dev/null")
    snapshot = Snapshot.objects.get()
    api.force_authenticate(member(project, Role.ANNOTATOR))
    for response in (api.get(_url(project)), api.post(_url(project), {"format": "jsonl"}, format="json"),
                     api.get(_url(project, f"{snapshot.pk}/")), api.get(_url(project, f"{snapshot.pk}/download"))):
        assert response.status_code == 403 and "detail" in response.json()
    api.force_authenticate(make_user())
    assert api.get(_url(project)).status_code == 404
    assert api.get(_url(project, f"{snapshot.pk}/download")).status_code == 404


def test_snapshot_of_another_project_is_404(api, project):
    other = make_project()
    api.force_authenticate(member(other, Role.ADMIN))
    call_command("export_dataset", project.slug, "--format", "csv", "-o", "/dev/null")
    snapshot = Snapshot.objects.get()
    assert api.get(f"/api/v1/projects/{other.slug}/snapshots/{snapshot.pk}/").status_code == 404


@pytest.mark.parametrize(
    "payload, fragment",
    [
        ({}, "format"),
        ({"format": "xlsx"}, "format"),
        ({"format": "trl"}, "objective"),
        ({"format": "jsonl", "objective": "style"}, "objective"),
        ({"format": "jsonl", "objectives": ["style"]}, "objectives"),
        ({"format": "jsonl", "min_annotations": 0}, "min_annotations"),
        ({"format": "jsonl", "min_agreement": 2}, "min_agreement"),
        ({"format": "jsonl", "gold_threshold": -1}, "gold_threshold"),
    ],
)
def test_bad_snapshot_requests_are_400(api, project, payload, fragment):
    api.force_authenticate(member(project, Role.ADMIN))
    response = api.post(_url(project), payload, format="json")
    assert response.status_code == 400 and fragment in response.json()["detail"]
    assert not Snapshot.objects.exists()


def test_download_before_ready_is_409(api, project, settings):
    settings.MORM_EXPORT_BACKGROUND_ROWS = 1
    api.force_authenticate(member(project, Role.RESEARCHER))
    body = api.post(_url(project), {"format": "csv"}, format="json")
    assert body.status_code == 202 and body.json()["status"] == "queued"
    response = api.get(_url(project, f"{body.json()['id']}/download"))
    assert response.status_code == 409 and "queued" in response.json()["detail"]


def test_admin_marks_and_unmarks_gold(api, project):
    comparison = project.comparisons.first()
    url = f"/api/v1/projects/{project.slug}/comparisons/{comparison.pk}/gold"
    api.force_authenticate(member(project, Role.ADMIN))
    assert api.put(url, {"expected": {"helpful": "A", "honest": "tie"}}, format="json").status_code == 200
    comparison.refresh_from_db()
    assert comparison.is_gold and comparison.gold_expected == {"helpful": "A", "honest": "tie"}
    assert api.delete(url).status_code == 204
    comparison.refresh_from_db()
    assert not comparison.is_gold


@pytest.mark.parametrize(
    "payload, fragment",
    [({}, "expected"), ({"expected": {}}, "expected"), ({"expected": {"helpful": "C"}}, "expected"),
     ({"expected": {"style": "A"}}, "Unknown objective")],
)
def test_bad_gold_input_is_400(api, project, payload, fragment):
    comparison = project.comparisons.first()
    api.force_authenticate(member(project, Role.ADMIN))
    response = api.put(f"/api/v1/projects/{project.slug}/comparisons/{comparison.pk}/gold", payload, format="json")
    assert response.status_code == 400 and fragment in response.json()["detail"]
    assert not Comparison.objects.filter(is_gold=True).exists()


@pytest.mark.parametrize("role", [Role.ANNOTATOR, Role.RESEARCHER])
def test_only_admins_mark_gold(api, project, role):
    comparison = project.comparisons.first()
    api.force_authenticate(member(project, role))
    url = f"/api/v1/projects/{project.slug}/comparisons/{comparison.pk}/gold"
    assert api.put(url, {"expected": {"helpful": "A"}}, format="json").status_code == 403
    assert api.delete(url).status_code == 403
