"""annotation_edit: an annotator fixes an earlier submission; the old values are kept, nothing else moves."""

import hashlib

import pytest
from django.core.exceptions import ValidationError

from annotate_app.models import Annotation, AnnotationRevision, Comparison, Judgment, Role, Snapshot, Task, TaskStatus
from annotate_app.selectors.annotations import annotation_as_shown, annotation_previous
from annotate_app.selectors.queue import annotator_progress
from annotate_app.services.annotations import JudgmentInput, annotation_edit
from annotate_app.services.projects import membership_remove
from annotate_app.services.snapshots import snapshot_create, snapshot_path
from tests.factories import annotate, make_project, member

pytestmark = pytest.mark.django_db

TIES = {"helpful": JudgmentInput(choice="tie"), "harmless": JudgmentInput(choice="tie"),
        "honest": JudgmentInput(choice="tie")}


def _submitted(*, swapped: bool, **project_options):
    """A project with one submitted annotation (helpful: A slightly better, canonical), shown ``swapped``."""
    project = make_project(comparisons=2, overlap_k=1, gold_rate=0, **project_options)
    user = member(project)
    task = annotate(project, user, {"helpful": -1})
    Task.objects.filter(pk=task.pk).update(shown_swapped=swapped)
    return project, user, Annotation.objects.get(task=task)


def _stored(annotation):
    judgments = annotation.judgments.select_related("objective")
    return {j.objective.key: (j.choice, j.strength, j.rationale) for j in judgments}


def test_an_edit_stores_canonical_values_and_keeps_the_old_ones():
    project, user, annotation = _submitted(swapped=True, ask_flags=True)
    shown = dict(TIES, helpful=JudgmentInput(choice="A", strength=3, rationale="left one is right"))

    revision = annotation_edit(annotation=annotation, user=user, judgments=shown, flags_a=["unsafe"])

    # Shown A was canonical B.
    assert _stored(annotation) == {"helpful": ("B", 3, "left one is right"), "harmless": ("tie", None, ""),
                                   "honest": ("tie", None, "")}
    annotation.refresh_from_db()
    assert (annotation.flags_a, annotation.flags_b) == ([], ["unsafe"])
    assert revision.editor == user and revision.annotation == annotation
    assert revision.previous == {
        "judgments": {
            "helpful": {"choice": "A", "strength": 1, "rationale": "", "likert_a": None, "likert_b": None},
            "harmless": {"choice": "tie", "strength": None, "rationale": "", "likert_a": None, "likert_b": None},
            "honest": {"choice": "tie", "strength": None, "rationale": "", "likert_a": None, "likert_b": None},
        },
        "flags_a": [], "flags_b": [],
    }
    assert Judgment.objects.filter(annotation=annotation).count() == 3


def test_each_edit_adds_a_revision_and_an_unchanged_save_adds_none():
    _, user, annotation = _submitted(swapped=False)
    first = dict(TIES, honest=JudgmentInput(choice="B", strength=2))
    annotation_edit(annotation=annotation, user=user, judgments=first)
    assert annotation_edit(annotation=annotation, user=user, judgments=first) is None
    annotation_edit(annotation=annotation, user=user, judgments=TIES)
    previous = [r.previous["judgments"]["honest"]["choice"] for r in AnnotationRevision.objects.order_by("pk")]
    assert previous == ["tie", "B"]
    assert _stored(annotation)["honest"] == ("tie", None, "")


def test_an_edit_moves_no_queue_counter_and_the_task_stays_submitted():
    project, user, annotation = _submitted(swapped=False)
    comparison_counts = Comparison.objects.values_list("pk", "slots_held", "submitted_count", "is_full")
    before = (list(comparison_counts), annotator_progress(project=project, user=user))

    edited = dict(TIES, helpful=JudgmentInput(choice="B", strength=1))
    annotation_edit(annotation=annotation, user=user, judgments=edited)

    assert (list(comparison_counts), annotator_progress(project=project, user=user)) == before
    assert Task.objects.get(pk=annotation.task_id).status == TaskStatus.SUBMITTED


def test_snapshots_already_built_stay_as_they_were():
    project, user, annotation = _submitted(swapped=False)
    snapshot = snapshot_create(project=project, format="jsonl")
    path = snapshot_path(snapshot)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()

    edited = dict(TIES, helpful=JudgmentInput(choice="B", strength=3))
    annotation_edit(annotation=annotation, user=user, judgments=edited)

    assert hashlib.sha256(path.read_bytes()).hexdigest() == digest == Snapshot.objects.get(pk=snapshot.pk).sha256
    assert Snapshot.objects.count() == 1
    assert '"score": 3.0' in snapshot_path(snapshot_create(project=project, format="jsonl")).read_text()


def test_only_the_annotator_edits_and_only_while_a_member():
    project, user, annotation = _submitted(swapped=False)
    admin = member(project, Role.ADMIN)
    with pytest.raises(PermissionError):
        annotation_edit(annotation=annotation, user=admin, judgments=TIES)
    membership_remove(project=project, user=user)
    with pytest.raises(PermissionError):
        annotation_edit(annotation=annotation, user=user, judgments=TIES)
    assert not AnnotationRevision.objects.exists()
    assert _stored(annotation)["helpful"] == ("A", 1, "")


@pytest.mark.parametrize(("judgments", "flags_b", "field"), [
    ({"helpful": JudgmentInput(choice="tie")}, None, "judgments"),
    (dict(TIES, helpful=JudgmentInput(choice="A", strength=5)), None, "helpful"),
    (TIES, ["not_a_flag"], "flags_b"),
])
def test_bad_edits_are_rejected_naming_the_field_and_change_nothing(judgments, flags_b, field):
    _, user, annotation = _submitted(swapped=False, ask_flags=True)
    with pytest.raises(ValidationError) as raised:
        annotation_edit(annotation=annotation, user=user, judgments=judgments, flags_b=flags_b)
    assert field in raised.value.message_dict
    assert not AnnotationRevision.objects.exists()
    assert _stored(annotation)["helpful"] == ("A", 1, "")


def test_back_walks_the_users_submissions_newest_first_as_they_saw_them():
    project = make_project(comparisons=3, overlap_k=2, gold_rate=0)
    user, other = member(project), member(project)
    tasks = [annotate(project, user, {"helpful": -2}) for _ in range(2)]
    annotate(project, other, {"helpful": 1})
    Task.objects.filter(pk=tasks[1].pk).update(shown_swapped=True)

    latest = annotation_previous(project=project, user=user)
    assert latest.task_id == tasks[1].pk
    assert annotation_as_shown(latest)["choice_helpful"] == "2"  # canonical A clearly, shown on the right
    earlier = annotation_previous(project=project, user=user, before=latest.pk)
    assert earlier.task_id == tasks[0].pk
    assert annotation_previous(project=project, user=user, before=earlier.pk) is None
