"""Export and gold pages."""

import pytest
from django.core.management import call_command

from annotate_app.models import Role, Snapshot, SnapshotStatus
from tests.factories import annotate, logged_in_client, make_project, make_user, member

pytestmark = pytest.mark.django_db



@pytest.fixture
def project():
    project = make_project(comparisons=2, overlap_k=1, gold_rate=0)
    annotate(project, member(project), {"helpful": -1})
    return project


@pytest.mark.parametrize("role", [Role.ADMIN, Role.RESEARCHER])
def test_export_page_creates_a_snapshot_and_lists_it(project, role):
    client = logged_in_client(member(project, role))
    response = client.post(f"/projects/{project.slug}/exports/", {
        "format": "trl", "objective": "helpful", "min_annotations": "1", "min_agreement": "0", "margin": "on",
        "include_imported": "on"}, follow=True)
    snapshot = Snapshot.objects.get()
    assert snapshot.status == SnapshotStatus.READY and snapshot.filters["margin"] is True
    html = response.content.decode()
    assert f"Snapshot {snapshot.pk} is ready" in html and snapshot.sha256[:12] in html
    assert f"/api/v1/projects/{project.slug}/snapshots/{snapshot.pk}/download" in html


def test_export_page_shows_service_errors_on_the_form(project):
    client = logged_in_client(member(project, Role.ADMIN))
    response = client.post(f"/projects/{project.slug}/exports/", {"format": "trl", "min_annotations": "1",
                                                                  "min_agreement": "0"})
    assert response.status_code == 200 and "holds one objective" in response.content.decode()
    assert not Snapshot.objects.exists()


def test_queued_export_shows_progress_and_refreshes(project, settings):
    settings.MORM_EXPORT_BACKGROUND_ROWS = 1
    client = logged_in_client(member(project, Role.RESEARCHER))
    response = client.post(f"/projects/{project.slug}/exports/", {"format": "csv", "min_annotations": "1",
                                                                  "min_agreement": "0"}, follow=True)
    html = response.content.decode()
    assert "queued" in html and "<progress" in html and 'http-equiv="refresh"' in html


def test_export_page_is_403_for_annotators_and_404_for_outsiders(project):
    annotator = logged_in_client(member(project, Role.ANNOTATOR))
    assert annotator.get(f"/projects/{project.slug}/exports/").status_code == 403
    assert logged_in_client(make_user()).get(f"/projects/{project.slug}/exports/").status_code == 404


def test_gold_page_marks_and_unmarks(project):
    client = logged_in_client(member(project, Role.ADMIN))
    comparison = project.comparisons.get(external_id="c1")
    client.post(f"/projects/{project.slug}/gold/", {"comparison": "c1", "expected_helpful": "B"})
    comparison.refresh_from_db()
    assert comparison.is_gold and comparison.gold_expected == {"helpful": "B"}
    assert "helpful: B" in client.get(f"/projects/{project.slug}/gold/").content.decode()
    client.post(f"/projects/{project.slug}/gold/{comparison.pk}/remove/")
    comparison.refresh_from_db()
    assert not comparison.is_gold


@pytest.mark.parametrize(
    "data, message",
    [({"comparison": "nope", "expected_helpful": "A"}, "No comparison with that id"),
     ({"comparison": "c1"}, "at least one objective")],
)
def test_gold_page_rejects_bad_input(project, data, message):
    client = logged_in_client(member(project, Role.ADMIN))
    response = client.post(f"/projects/{project.slug}/gold/", data)
    assert message in response.content.decode()
    assert not project.comparisons.filter(is_gold=True).exists()


def test_gold_page_is_admin_only(project):
    assert logged_in_client(member(project, Role.RESEARCHER)).get(f"/projects/{project.slug}/gold/").status_code == 403


def test_django_admin_shows_snapshots_read_only_and_project_label_quality(project):
    call_command("export_dataset", project.slug, "--format", "jsonl", "-o", "/dev/null")
    snapshot = Snapshot.objects.get()
    client = logged_in_client(make_user(is_staff=True, is_superuser=True))
    page = client.get(f"/admin/annotate_app/snapshot/{snapshot.pk}/change/").content.decode()
    assert snapshot.sha256 in page and 'name="_save"' not in page
    assert client.get("/admin/annotate_app/snapshot/add/").status_code == 403
    assert client.post(f"/admin/annotate_app/snapshot/{snapshot.pk}/delete/").status_code == 403
    quality = client.get(f"/admin/annotate_app/project/{project.pk}/change/").content.decode()
    assert "Krippendorff α" in quality
