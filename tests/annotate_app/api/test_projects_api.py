"""Projects, members and imports over REST; roles and scoping."""

import gzip

import pytest
from django.contrib.auth.models import Group
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command

from annotate_app.models import Comparison, Membership, Role
from tests.factories import jsonl, make_project, make_user, member, native_line

pytestmark = pytest.mark.django_db


def _admin_user():
    user = make_user()
    user.groups.add(Group.objects.get(name="admin"))
    return user


def test_admin_group_creates_a_project_with_default_objectives(api):
    api.force_authenticate(_admin_user())
    response = api.post("/api/v1/projects/", {"name": "Safety study", "overlap_k": 2}, format="json")
    assert response.status_code == 201
    body = response.json()
    assert body["slug"] == "safety-study" and body["overlap_k"] == 2
    assert [o["key"] for o in body["objectives"]] == ["helpful", "harmless", "honest"]
    assert all(o["guideline"] for o in body["objectives"])


def test_custom_objectives_and_options(api):
    api.force_authenticate(_admin_user())
    payload = {"name": "Style", "objectives": [{"key": "concise", "name": "Concision"}], "shuffle_sides": False,
               "ask_likert": True, "ask_flags": True, "lease_minutes": 5}
    body = api.post("/api/v1/projects/", payload, format="json").json()
    assert [o["key"] for o in body["objectives"]] == ["concise"]
    options = (body["shuffle_sides"], body["ask_likert"], body["ask_flags"], body["lease_minutes"])
    assert options == (False, True, True, 5)


@pytest.mark.parametrize(
    "payload, fragment",
    [
        ({}, "name"),
        ({"name": "x", "overlap_k": 0}, "overlap_k"),
        ({"name": "x", "lease_minutes": 0}, "lease_minutes"),
        ({"name": "x", "slug": "not a slug"}, "slug"),
        ({"name": "x", "objectives": []}, "at least one objective"),
        ({"name": "x", "objectives": [{"key": "Bad Key", "name": "n"}]}, "key"),
    ],
)
def test_bad_project_input_is_400(api, payload, fragment):
    api.force_authenticate(_admin_user())
    response = api.post("/api/v1/projects/", payload, format="json")
    assert response.status_code == 400 and fragment in response.json()["detail"]


def test_duplicate_slug_is_400(api):
    api.force_authenticate(_admin_user())
    api.post("/api/v1/projects/", {"name": "Same"}, format="json")
    response = api.post("/api/v1/projects/", {"name": "Same"}, format="json")
    assert response.status_code == 400 and "slug" in response.json()["detail"]


def test_annotator_cannot_create_projects(api):
    project = make_project()
    api.force_authenticate(member(project, Role.ANNOTATOR))
    response = api.post("/api/v1/projects/", {"name": "Mine"}, format="json")
    assert response.status_code == 403 and "admin group" in response.json()["detail"]


def test_project_list_shows_only_member_projects(api):
    mine, _ = make_project(), make_project()
    api.force_authenticate(member(mine, Role.ANNOTATOR))
    assert [p["slug"] for p in api.get("/api/v1/projects/").json()["results"]] == [mine.slug]


def test_non_member_gets_404_for_project_detail_import_and_members(api):
    project = make_project()
    api.force_authenticate(make_user())
    assert api.get(f"/api/v1/projects/{project.slug}/").status_code == 404
    upload = SimpleUploadedFile("a.jsonl", jsonl([native_line(1)]))
    assert api.post(f"/api/v1/projects/{project.slug}/comparisons/import", {"file": upload}).status_code == 404
    assert api.post(f"/api/v1/projects/{project.slug}/members/", {"username": "x", "role": "admin"}).status_code == 404


@pytest.mark.parametrize("role", [Role.ANNOTATOR, Role.RESEARCHER])
def test_only_project_admins_import_and_manage_members(api, role):
    project = make_project()
    api.force_authenticate(member(project, role))
    upload = SimpleUploadedFile("a.jsonl", jsonl([native_line(1)]))
    response = api.post(f"/api/v1/projects/{project.slug}/comparisons/import", {"file": upload})
    assert response.status_code == 403 and "admin" in response.json()["detail"]
    other = make_user()
    response = api.post(f"/api/v1/projects/{project.slug}/members/", {"username": other.username, "role": "admin"})
    assert response.status_code == 403
    assert not Comparison.objects.exists()


def test_admin_adds_a_member_and_changes_their_role(api):
    project = make_project()
    api.force_authenticate(member(project, Role.ADMIN))
    newcomer = make_user()
    url = f"/api/v1/projects/{project.slug}/members/"
    assert api.post(url, {"username": newcomer.username, "role": "annotator"}).json()["role"] == "annotator"
    assert api.post(url, {"username": newcomer.username, "role": "researcher"}).json()["role"] == "researcher"
    assert Membership.objects.get(project=project, user=newcomer).role == "researcher"
    assert not newcomer.groups.exists()  # a project role grants nothing outside the project
    assert api.post(url, {"username": "ghost", "role": "admin"}).status_code == 400
    assert "role" in api.post(url, {"username": newcomer.username, "role": "owner"}).json()["detail"]


def test_import_by_rest_reports_counts_and_is_idempotent(api):
    project = make_project()
    api.force_authenticate(member(project, Role.ADMIN))
    url = f"/api/v1/projects/{project.slug}/comparisons/import"
    data = gzip.compress(jsonl([native_line(i, labels={"honest": "B"}) for i in range(4)]))
    first = api.post(url, {"file": SimpleUploadedFile("pairs.jsonl.gz", data), "format": "auto"})
    assert first.status_code == 201
    assert {k: first.json()[k] for k in ("created", "skipped", "labels")} == {"created": 4, "skipped": 0, "labels": 4}
    again = api.post(url, {"file": SimpleUploadedFile("pairs.jsonl.gz", data)})
    assert {k: again.json()[k] for k in ("created", "skipped")} == {"created": 0, "skipped": 4}


@pytest.mark.parametrize("format", ["auto", "trl"])
def test_trl_import_without_objective_is_400_naming_the_field(api, format):
    project = make_project()
    api.force_authenticate(member(project, Role.ADMIN))
    upload = SimpleUploadedFile("pairs.jsonl", jsonl([{"prompt": "p", "chosen": "good", "rejected": "bad"}]))
    response = api.post(f"/api/v1/projects/{project.slug}/comparisons/import", {"file": upload, "format": format})
    assert response.status_code == 400
    assert "field 'objective'" in response.json()["detail"] and "--objective" in response.json()["detail"]
    assert not Comparison.objects.exists() and not project.import_batches.exists()


def test_import_batch_reports_the_detected_format(api):
    project = make_project()
    api.force_authenticate(member(project, Role.ADMIN))
    upload = SimpleUploadedFile("pairs.jsonl", jsonl([{"prompt": "p", "chosen": "good", "rejected": "bad"}]))
    response = api.post(
        f"/api/v1/projects/{project.slug}/comparisons/import", {"file": upload, "objective": "helpful"}
    )
    assert response.status_code == 201 and response.json()["labels"] == 1
    assert project.import_batches.get().format == "trl"


@pytest.mark.parametrize(
    "content, form, fragment",
    [
        (jsonl([native_line(1), {"prompt": "x"}]), {}, "line 2"),
        (b"not json\n", {}, "line 1"),
        (jsonl([native_line(1)]), {"format": "csv"}, "format"),
        (jsonl([{"prompt": "p", "chosen": "a", "rejected": "b"}]), {"objective": "style"}, "objective"),
        (b"", {}, "file"),
    ],
)
def test_bad_imports_are_400_and_import_nothing(api, content, form, fragment):
    project = make_project()
    api.force_authenticate(member(project, Role.ADMIN))
    response = api.post(
        f"/api/v1/projects/{project.slug}/comparisons/import", {"file": SimpleUploadedFile("f.jsonl", content), **form}
    )
    assert response.status_code == 400 and fragment in response.json()["detail"]
    assert not Comparison.objects.exists()


def test_missing_file_is_400(api):
    project = make_project()
    api.force_authenticate(member(project, Role.ADMIN))
    response = api.post(f"/api/v1/projects/{project.slug}/comparisons/import", {"format": "auto"})
    assert response.status_code == 400 and "file" in response.json()["detail"]


def test_upload_over_the_limit_is_413(api, settings):
    settings.MORM_MAX_UPLOAD_BYTES = 50
    project = make_project()
    api.force_authenticate(member(project, Role.ADMIN))
    upload = SimpleUploadedFile("big.jsonl", jsonl([native_line(i) for i in range(3)]))
    response = api.post(f"/api/v1/projects/{project.slug}/comparisons/import", {"file": upload})
    assert response.status_code == 413 and "limited to" in response.json()["detail"]


def test_openapi_schema_lists_the_endpoints(api):
    api.force_authenticate(make_user())
    response = api.get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    for path in ["/api/v1/projects/{slug}/tasks/next", "/api/v1/tasks/{task_id}/submit",
                 "/api/v1/tasks/{task_id}/skip", "/api/v1/projects/{slug}/comparisons/import"]:
        assert path in paths


def test_openapi_schema_generates_without_warnings():
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", "/dev/null")
