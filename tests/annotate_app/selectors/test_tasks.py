"""The task queue: overlap k, leases, never twice, and concurrency on Postgres."""

import threading
from datetime import timedelta

import pytest
from django.db import connection, connections
from django.utils import timezone

from annotate_app.models import Annotation, Role, Task, TaskStatus
from annotate_app.selectors.tasks import annotator_progress, task_next_for
from annotate_app.services.annotations import JudgmentInput, annotation_submit, task_skip
from annotate_app.services.gold import comparison_mark_gold
from tests.conftest import require
from tests.factories import make_project, member

ALL_TIES = {key: JudgmentInput(choice="tie") for key in ("helpful", "harmless", "honest")}


def _label_everything(project, user) -> int:
    done = 0
    while (task := task_next_for(project=project, user=user)) is not None:
        annotation_submit(task=task, user=user, judgments=ALL_TIES)
        done += 1
    return done


@pytest.mark.django_db
def test_each_comparison_gets_k_annotations_from_distinct_annotators():
    project = make_project(comparisons=4, overlap_k=2)
    annotators = [member(project) for _ in range(3)]
    done = [_label_everything(project, user) for user in annotators]
    assert done == [4, 4, 0]
    for comparison in project.comparisons.all():
        assert comparison.annotations.count() == 2
        assert len({a.annotator_id for a in comparison.annotations.all()}) == 2


@pytest.mark.django_db
def test_open_lease_is_returned_again_until_submitted():
    project = make_project(comparisons=3)
    user = member(project)
    first = task_next_for(project=project, user=user)
    assert task_next_for(project=project, user=user).pk == first.pk


@pytest.mark.django_db
def test_open_lease_holds_the_slot_and_expiry_frees_it():
    project = make_project(comparisons=1, overlap_k=1, lease_minutes=5)
    holder, other = member(project), member(project)
    task = task_next_for(project=project, user=holder)
    assert task_next_for(project=project, user=other) is None
    Task.objects.filter(pk=task.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert task_next_for(project=project, user=other).comparison_id == task.comparison_id


@pytest.mark.django_db
def test_lease_lasts_the_project_lease_minutes():
    project = make_project(comparisons=1, lease_minutes=7)
    task = task_next_for(project=project, user=member(project))
    assert timedelta(minutes=6, seconds=59) < task.expires_at - task.leased_at <= timedelta(minutes=7)


@pytest.mark.django_db
def test_expired_own_lease_is_renewed_not_duplicated():
    project = make_project(comparisons=1)
    user = member(project)
    task = task_next_for(project=project, user=user)
    Task.objects.filter(pk=task.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    renewed = task_next_for(project=project, user=user)
    assert renewed.pk == task.pk and renewed.is_open
    assert Task.objects.count() == 1


@pytest.mark.django_db
def test_skipped_comparison_never_comes_back_and_frees_the_slot():
    project = make_project(comparisons=1, overlap_k=1)
    user, other = member(project), member(project)
    task = task_next_for(project=project, user=user)
    task_skip(task=task, user=user)
    assert task_next_for(project=project, user=user) is None
    assert task_next_for(project=project, user=other).comparison_id == task.comparison_id


@pytest.mark.django_db
def test_imported_labels_do_not_use_up_slots():
    project = make_project(overlap_k=1)
    from tests.factories import import_lines, native_line

    import_lines(project, [native_line(1, labels={"helpful": "A"})])
    assert task_next_for(project=project, user=member(project)) is not None


@pytest.mark.django_db
def test_sides_are_shuffled_when_asked_and_never_otherwise():
    shuffled = make_project(comparisons=40, overlap_k=1)
    user = member(shuffled)
    orders = set()
    while (task := task_next_for(project=shuffled, user=user)) is not None:
        orders.add(task.shown_swapped)
        task_skip(task=task, user=user)
    assert orders == {True, False}
    fixed = make_project(comparisons=10, shuffle_sides=False)
    other = member(fixed)
    while (task := task_next_for(project=fixed, user=other)) is not None:
        assert task.shown_swapped is False
        task_skip(task=task, user=other)


@pytest.mark.django_db
def test_progress_counts_done_and_remaining():
    project = make_project(comparisons=3, overlap_k=1)
    user, other = member(project), member(project)
    task = task_next_for(project=project, user=user)
    annotation_submit(task=task, user=user, judgments=ALL_TIES)
    task_next_for(project=project, user=other)  # holds one slot
    progress = annotator_progress(project=project, user=user)
    assert (progress.done, progress.remaining) == (1, 1)


@pytest.mark.django_db
def test_queue_is_scoped_to_the_project():
    project, other_project = make_project(comparisons=2), make_project(comparisons=2)
    user = member(project, Role.ANNOTATOR)
    task = task_next_for(project=project, user=user)
    assert task.comparison.project == project
    assert task_next_for(project=other_project, user=user).comparison.project == other_project


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_twenty_annotators_at_once_fill_every_comparison_exactly_k_times():
    require(connection.vendor == "postgresql", "concurrency test needs Postgres (set DATABASE_URL)")
    project = make_project(comparisons=50, overlap_k=2)
    annotators = [member(project) for _ in range(20)]
    barrier = threading.Barrier(len(annotators))
    submitted: dict[int, int] = {}
    errors: list[BaseException] = []

    def work(user):
        try:
            barrier.wait()
            submitted[user.pk] = _label_everything(project, user)
        except BaseException as error:  # reported below; a thread's exception is otherwise lost
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=work, args=(user,)) for user in annotators]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert sum(submitted.values()) == 100  # no lost submits
    assert Annotation.objects.filter(comparison__project=project).count() == 100
    for comparison in project.comparisons.all():
        annotators_of = list(comparison.annotations.values_list("annotator_id", flat=True))
        assert len(annotators_of) == 2 and len(set(annotators_of)) == 2
    assert not Task.objects.filter(project=project, status=TaskStatus.LEASED).exists()


@pytest.mark.django_db
def test_gold_items_are_drawn_at_the_gold_rate_outside_the_overlap_cap():
    never = make_project(comparisons=6, gold_rate=0.0)
    comparison_mark_gold(comparison=never.comparisons.first(), expected={"helpful": "A"})
    user = member(never)
    served = []
    while (task := task_next_for(project=never, user=user)) is not None:
        served.append(task.comparison.is_gold)
        task_skip(task=task, user=user)
    assert served == [False] * 5  # gold_rate 0: no gold, and gold never fills a regular slot

    always = make_project(comparisons=4, overlap_k=1, gold_rate=1.0)
    for comparison in always.comparisons.all()[:2]:
        comparison_mark_gold(comparison=comparison, expected={"honest": "tie"})
    for _ in range(3):  # every annotator gets every gold item, whatever overlap_k says
        user = member(always)
        for _ in range(2):
            task = task_next_for(project=always, user=user)
            assert task.comparison.is_gold
            annotation_submit(task=task, user=user, judgments=ALL_TIES)
    assert Annotation.objects.filter(comparison__project=always, comparison__is_gold=True).count() == 6


@pytest.mark.django_db
def test_gold_items_are_mixed_in_at_roughly_the_rate(monkeypatch):
    project = make_project(comparisons=40, overlap_k=1, gold_rate=0.25, shuffle_sides=False)
    for comparison in project.comparisons.all()[:10]:
        comparison_mark_gold(comparison=comparison, expected={"helpful": "B"})
    draws = iter([0.1, 0.9, 0.9, 0.9] * 20)  # one in four draws falls under the rate
    monkeypatch.setattr("annotate_app.selectors.tasks.random.random", lambda: next(draws))
    user = member(project)
    served = []
    for _ in range(8):
        task = task_next_for(project=project, user=user)
        served.append(task.comparison.is_gold)
        task_skip(task=task, user=user)
    assert served == [True, False, False, False] * 2
