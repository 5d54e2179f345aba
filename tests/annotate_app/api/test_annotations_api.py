"""GET/PUT /api/v1/annotations/{id}: one's own annotation as seen, and editing it."""

import pytest

from annotate_app.models import Annotation, AnnotationRevision, Role, Task, TaskStatus
from annotate_app.services.projects import membership_remove
from tests.factories import annotate, make_project, member

pytestmark = pytest.mark.django_db

TIES = {"helpful": {"choice": "tie"}, "harmless": {"choice": "tie"}, "honest": {"choice": "tie"}}


@pytest.fixture
def submitted(api):
    """The annotator's annotation (canonical helpful: A clearly), shown swapped; the client is the annotator."""
    project = make_project(comparisons=2, overlap_k=1, gold_rate=0, ask_flags=True)
    user = member(project, Role.ANNOTATOR)
    task = annotate(project, user, {"helpful": -2})
    Task.objects.filter(pk=task.pk).update(shown_swapped=True)
    api.force_authenticate(user)
    return project, user, Annotation.objects.get(task=task)


def test_get_shows_the_annotation_in_the_side_order_seen(api, submitted):
    project, _, annotation = submitted
    body = api.get(f"/api/v1/annotations/{annotation.pk}").json()
    assert body["annotation_id"] == annotation.pk and body["project"] == project.slug and body["revisions"] == 0
    helpful = next(j for j in body["judgments"] if j["objective"] == "helpful")
    assert (helpful["choice"], helpful["strength"]) == ("B", 2)


def test_put_edits_in_shown_orientation_and_keeps_the_old_values(api, submitted):
    _, _, annotation = submitted
    edit = {"judgments": dict(TIES, honest={"choice": "A", "strength": 3, "rationale": "left is right"}),
            "flags_a": ["unsafe"]}
    response = api.put(f"/api/v1/annotations/{annotation.pk}", edit, format="json")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["revisions"] == 1 and body["flags_a"] == ["unsafe"]
    honest = next(j for j in body["judgments"] if j["objective"] == "honest")
    assert (honest["choice"], honest["strength"], honest["rationale"]) == ("A", 3, "left is right")
    stored = {j.objective.key: (j.choice, j.strength) for j in annotation.judgments.select_related("objective")}
    assert stored == {"helpful": ("tie", None), "harmless": ("tie", None), "honest": ("B", 3)}  # canonical
    annotation.refresh_from_db()
    assert annotation.flags_b == ["unsafe"]
    assert AnnotationRevision.objects.get().previous["judgments"]["helpful"]["choice"] == "A"
    assert Task.objects.get(pk=annotation.task_id).status == TaskStatus.SUBMITTED


@pytest.mark.parametrize(("body", "field"), [
    ({"judgments": {"helpful": {"choice": "tie"}}}, "judgments"),
    ({"judgments": dict(TIES, helpful={"choice": "A", "strength": 9})}, "helpful"),
    ({"judgments": dict(TIES, helpful={"choice": "maybe"})}, "choice"),
    ({"judgments": TIES, "flags_b": ["nope"]}, "flags_b"),
    ({"flags_a": []}, "judgments"),
])
def test_bad_edits_get_400_naming_the_field(api, submitted, body, field):
    _, _, annotation = submitted
    response = api.put(f"/api/v1/annotations/{annotation.pk}", body, format="json")
    assert response.status_code == 400
    assert field in response.json()["detail"]
    assert not AnnotationRevision.objects.exists()


def test_someone_elses_or_a_former_members_annotation_is_not_found(api, submitted):
    project, user, annotation = submitted
    api.force_authenticate(member(project, Role.ADMIN))
    assert api.get(f"/api/v1/annotations/{annotation.pk}").status_code == 404
    api.force_authenticate(user)
    membership_remove(project=project, user=user)
    assert api.get(f"/api/v1/annotations/{annotation.pk}").status_code == 404
    assert api.put(f"/api/v1/annotations/{annotation.pk}", {"judgments": TIES}, format="json").status_code == 404
    assert not AnnotationRevision.objects.exists()


@pytest.mark.parametrize("annotation_id", ["0", str(2**63), "9" * 40])
def test_an_annotation_id_out_of_range_is_not_found(api, submitted, annotation_id):
    assert api.get(f"/api/v1/annotations/{annotation_id}").status_code == 404
    assert api.put(f"/api/v1/annotations/{annotation_id}", {"judgments": TIES}, format="json").status_code == 404
