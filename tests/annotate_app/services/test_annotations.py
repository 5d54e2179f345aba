"""annotation_submit / task_skip: orientation, idempotency, and every rejected input."""

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from annotate_app.models import Annotation, Judgment, Role, Task
from annotate_app.services.annotations import JudgmentInput, TaskConflict, annotation_submit, task_skip
from annotate_app.services.queue import task_next_for
from tests.factories import make_project, member
from tests.queue_checks import ALL_TIES

pytestmark = pytest.mark.django_db



def _leased(**project_options):
    project = make_project(comparisons=2, **project_options)
    user = member(project, Role.ANNOTATOR)
    return project, user, task_next_for(project=project, user=user)


def test_a_task_shown_swapped_stores_the_mirrored_choice():
    _, user, task = _leased()
    Task.objects.filter(pk=task.pk).update(shown_swapped=True)
    task.refresh_from_db()
    shown = {
        "helpful": JudgmentInput(choice="A", strength=3, likert_a=6, likert_b=2),
        "harmless": JudgmentInput(choice="B", strength=1),
        "honest": JudgmentInput(choice="tie"),
    }
    task.project.ask_likert = True
    task.project.save()
    annotation_submit(task=task, user=user, judgments=shown, flags_a=[], flags_b=[])
    stored = {j.objective.key: j for j in Judgment.objects.filter(annotation__task=task)}
    assert (stored["helpful"].choice, stored["helpful"].strength) == ("B", 3)
    assert (stored["helpful"].likert_a, stored["helpful"].likert_b) == (2, 6)
    assert (stored["harmless"].choice, stored["harmless"].strength) == ("A", 1)
    assert stored["honest"].choice == "tie" and stored["honest"].strength is None


def test_a_task_shown_in_order_stores_the_choice_as_is():
    _, user, task = _leased(shuffle_sides=False)
    assert task.shown_swapped is False
    annotation_submit(task=task, user=user, judgments={**ALL_TIES, "helpful": JudgmentInput(choice="A", strength=2)})
    helpful = Judgment.objects.get(annotation__task=task, objective__key="helpful")
    assert (helpful.choice, helpful.strength, helpful.signed_score) == ("A", 2, -2)


def test_swapped_flags_are_stored_on_the_canonical_side():
    _, user, task = _leased(ask_flags=True)
    Task.objects.filter(pk=task.pk).update(shown_swapped=True)
    task.refresh_from_db()
    annotation_submit(task=task, user=user, judgments=ALL_TIES, flags_a=["unsafe"], flags_b=[])
    annotation = Annotation.objects.get(task=task)
    assert (annotation.flags_a, annotation.flags_b) == ([], ["unsafe"])


def test_resubmitting_the_same_content_returns_the_same_annotation_and_creates_nothing():
    _, user, task = _leased()
    first = annotation_submit(task=task, user=user, judgments=ALL_TIES, time_spent_ms=10)
    again = annotation_submit(task=task, user=user, judgments=ALL_TIES, time_spent_ms=20)
    assert (first.created, again.created) == (True, False)
    assert again.annotation.pk == first.annotation.pk
    assert Annotation.objects.count() == 1 and Judgment.objects.count() == 3


def test_resubmitting_other_content_is_a_conflict_and_changes_nothing():
    _, user, task = _leased()
    annotation_submit(task=task, user=user, judgments=ALL_TIES)
    with pytest.raises(TaskConflict, match="already submitted with other judgments"):
        annotation_submit(task=task, user=user, judgments={k: JudgmentInput("A", 1) for k in ALL_TIES})
    assert Annotation.objects.count() == 1 and Judgment.objects.count() == 3
    assert {j.choice for j in Judgment.objects.all()} == {"tie"}


@pytest.mark.parametrize(
    "judgments, message",
    [
        ({"helpful": JudgmentInput("tie")}, "Missing a judgment"),
        ({**ALL_TIES, "style": JudgmentInput("tie")}, "Unknown objective"),
        ({**ALL_TIES, "helpful": JudgmentInput("maybe")}, "choice must be"),
        ({**ALL_TIES, "helpful": JudgmentInput("tie", strength=2)}, "A tie has no strength"),
        ({**ALL_TIES, "helpful": JudgmentInput("A")}, "strength must be"),
        ({**ALL_TIES, "helpful": JudgmentInput("B", strength=5)}, "strength must be"),
        ({**ALL_TIES, "helpful": JudgmentInput("B", strength=1, likert_a=3)}, "does not ask for Likert"),
    ],
)
def test_bad_judgments_are_rejected(judgments, message):
    _, user, task = _leased()
    with pytest.raises(ValidationError, match=message):
        annotation_submit(task=task, user=user, judgments=judgments)
    assert Annotation.objects.count() == 0


def test_likert_out_of_range_is_rejected():
    _, user, task = _leased(ask_likert=True)
    with pytest.raises(ValidationError, match="between 1 and 7"):
        annotation_submit(task=task, user=user, judgments={**ALL_TIES, "honest": JudgmentInput("tie", likert_b=9)})


@pytest.mark.parametrize(
    "options, flags_a, message",
    [({"ask_flags": False}, ["unsafe"], "does not ask for flags"), ({"ask_flags": True}, ["rude"], "Unknown flag")],
)
def test_bad_flags_are_rejected(options, flags_a, message):
    _, user, task = _leased(**options)
    with pytest.raises(ValidationError, match=message):
        annotation_submit(task=task, user=user, judgments=ALL_TIES, flags_a=flags_a)


@pytest.mark.parametrize("time_spent_ms", [-5, 2**31])
def test_time_spent_outside_the_columns_range_is_rejected(time_spent_ms):
    _, user, task = _leased()
    with pytest.raises(ValidationError, match="between 0 and 2147483647"):
        annotation_submit(task=task, user=user, judgments=ALL_TIES, time_spent_ms=time_spent_ms)
    assert not Annotation.objects.exists()


def test_skipped_task_cannot_be_submitted_and_submitted_cannot_be_skipped():
    project, user, task = _leased()
    task_skip(task=task, user=user)
    with pytest.raises(TaskConflict):
        annotation_submit(task=task, user=user, judgments=ALL_TIES)
    second = task_next_for(project=project, user=user)
    annotation_submit(task=second, user=user, judgments=ALL_TIES)
    with pytest.raises(TaskConflict):
        task_skip(task=second, user=user)


def test_expired_lease_submits_while_the_slot_is_still_free():
    _, user, task = _leased(overlap_k=1)
    Task.objects.filter(pk=task.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    task.refresh_from_db()
    assert annotation_submit(task=task, user=user, judgments=ALL_TIES).created


def test_expired_lease_cannot_submit_once_someone_else_holds_the_slot():
    project, user, task = _leased(overlap_k=1)
    Task.objects.filter(pk=task.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    task.refresh_from_db()
    other = member(project)
    assert task_next_for(project=project, user=other).comparison_id == task.comparison_id
    with pytest.raises(TaskConflict, match="expired"):
        annotation_submit(task=task, user=user, judgments=ALL_TIES)
    assert not Annotation.objects.exists()


def test_only_the_leaseholder_submits():
    project, _, task = _leased()
    with pytest.raises(PermissionError):
        annotation_submit(task=task, user=member(project), judgments=ALL_TIES)
