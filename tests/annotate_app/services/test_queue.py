"""The task queue: overlap k, leases, never twice, and concurrency on Postgres."""

import importlib
import random
import threading
from datetime import timedelta

import pytest
from django.apps import apps
from django.db import connection, connections
from django.db.models import Q
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from annotate_app import access
from annotate_app.models import Annotation, AnnotatorQueue, Comparison, Project, Role, Task, TaskStatus
from annotate_app.selectors.queue import annotator_progress
from annotate_app.services.annotations import TaskConflict, annotation_submit, task_skip
from annotate_app.services.gold import comparison_mark_gold, comparison_unmark_gold
from annotate_app.services.queue import task_next_for
from tests.conftest import require
from tests.factories import make_project, member
from tests.queue_checks import ALL_TIES, FINISHED, assert_counts_match_a_recount


def _label_everything(project, user, *, as_the_api_loads_it: bool = False) -> int:
    done = 0
    while (task := task_next_for(project=project, user=user)) is not None:
        _submit(task, user, as_the_api_loads_it=as_the_api_loads_it)
        done += 1
    return done


def _submit(task, user, *, as_the_api_loads_it: bool) -> None:
    """Submit ties, the task as the queue handed it or as the API and the labeling page load it (access.task_for,
    with the project's objectives: what lets a submit on Postgres be one statement)."""
    annotation_submit(task=access.task_for(user, task.pk) if as_the_api_loads_it else task, user=user,
                      judgments=ALL_TIES)


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
    assert_counts_match_a_recount(project)
    assert annotator_progress(project=project, user=user).remaining == 0
    assert annotator_progress(project=project, user=other).remaining == 1
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
@pytest.mark.parametrize("as_the_api_loads_it", [False, True])
def test_twenty_annotators_at_once_fill_every_comparison_exactly_k_times(as_the_api_loads_it):
    require(connection.vendor == "postgresql", "concurrency test needs Postgres (set DATABASE_URL)")
    project = make_project(comparisons=50, overlap_k=2)
    annotators = [member(project) for _ in range(20)]
    barrier = threading.Barrier(len(annotators))
    submitted: dict[int, int] = {}
    errors: list[BaseException] = []

    def work(user):
        try:
            barrier.wait()
            submitted[user.pk] = _label_everything(project, user, as_the_api_loads_it=as_the_api_loads_it)
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
    assert_counts_match_a_recount(project)
    assert Project.objects.get(pk=project.pk).complete_count == 50


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
    monkeypatch.setattr("annotate_app.services.queue.random.random", lambda: next(draws))
    user = member(project)
    served = []
    for _ in range(8):
        task = task_next_for(project=project, user=user)
        served.append(task.comparison.is_gold)
        task_skip(task=task, user=user)
    assert served == [True, False, False, False] * 2


def _expire(task) -> None:
    Task.objects.filter(pk=task.pk).update(expires_at=timezone.now() - timedelta(seconds=1))


@pytest.mark.django_db
def test_an_expired_lease_is_reclaimed_by_the_next_request_and_its_slot_counted_free():
    project = make_project(comparisons=1, overlap_k=1)
    holder, other = member(project), member(project)
    task = task_next_for(project=project, user=holder)
    assert Project.objects.get(pk=project.pk).open_count == 0
    _expire(task)
    assert task_next_for(project=project, user=other).comparison_id == task.comparison_id
    assert Task.objects.get(pk=task.pk).status == TaskStatus.EXPIRED
    assert_counts_match_a_recount(project)
    with pytest.raises(TaskConflict):  # the slot went to someone else meanwhile
        annotation_submit(task=task, user=holder, judgments=ALL_TIES)


@pytest.mark.django_db
def test_a_reclaimed_lease_can_still_be_submitted_while_a_slot_is_free():
    project = make_project(comparisons=1, overlap_k=2)
    holder, other = member(project), member(project)
    task = task_next_for(project=project, user=holder)
    _expire(task)
    task_next_for(project=project, user=other)  # reclaims the expired lease on its way
    assert Task.objects.get(pk=task.pk).status == TaskStatus.EXPIRED
    annotation_submit(task=task, user=holder, judgments=ALL_TIES)
    assert_counts_match_a_recount(project)
    assert Comparison.objects.get(pk=task.comparison_id).is_full


@pytest.mark.django_db
def test_counts_match_a_recount_after_any_sequence_of_queue_operations():
    rng = random.Random(7)
    project = make_project(comparisons=12, overlap_k=2, gold_rate=0.2)
    users = [member(project) for _ in range(4)]
    comparisons = list(project.comparisons.all())
    for _ in range(150):
        user, action = rng.choice(users), rng.random()
        task = Task.objects.filter(project=project, annotator=user, status=TaskStatus.LEASED).first()
        if task is None or action < 0.3:
            task_next_for(project=project, user=user)
        elif action < 0.6:
            _submit(task, user, as_the_api_loads_it=action < 0.45)
        elif action < 0.75:
            task_skip(task=task, user=user)
        elif action < 0.9:
            _expire(task)
        else:
            comparison = rng.choice(comparisons)
            if Comparison.objects.get(pk=comparison.pk).is_gold:
                comparison_unmark_gold(comparison=comparison)
            else:
                comparison_mark_gold(comparison=comparison, expected={"helpful": "A"})
        assert_counts_match_a_recount(project)
        for someone in users:
            progress = annotator_progress(project=project, user=someone)
            available = Comparison.objects.filter(project=project, is_gold=False).exclude(
                tasks__in=Task.objects.filter(annotator=someone, status__in=FINISHED)
            ).filter(Q(is_full=False) | Q(tasks__annotator=someone, tasks__status=TaskStatus.LEASED))
            assert progress.remaining == available.distinct().count()


@pytest.mark.django_db
def test_handing_out_a_task_costs_the_same_queries_in_a_small_and_a_large_project():
    def queries_for_next(size: int) -> int:
        project = make_project(comparisons=size, overlap_k=1, gold_rate=0.0)
        for _ in range(size // 2):  # half of the project already done by others
            helper = member(project)
            annotation_submit(task=task_next_for(project=project, user=helper), user=helper, judgments=ALL_TIES)
        user = member(project)
        with CaptureQueriesContext(connection) as queries:
            task_next_for(project=project, user=user)
            annotator_progress(project=project, user=user)
        return len(queries)

    assert queries_for_next(4) == queries_for_next(40)


@pytest.mark.django_db
def test_the_migration_counts_what_existing_rows_hold():
    project = make_project(comparisons=5, overlap_k=2)
    users = [member(project) for _ in range(3)]
    for user in users:
        annotation_submit(task=task_next_for(project=project, user=user), user=user, judgments=ALL_TIES)
    task_skip(task=task_next_for(project=project, user=users[0]), user=users[0])
    task_next_for(project=project, user=users[1])
    Comparison.objects.update(slots_held=0, submitted_count=0, is_full=False)
    Project.objects.update(comparison_count=0, open_count=0, complete_count=0, imported_label_sets=0)
    AnnotatorQueue.objects.all().delete()

    importlib.import_module("annotate_app.migrations.0007_queue_counters").fill_counters(apps, None)
    assert_counts_match_a_recount(project)
    assert AnnotatorQueue.objects.filter(project=project).count() == 3


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_annotators_who_walk_away_at_once_leave_counts_that_match_a_recount():
    """Leases expiring while others lease, submit, skip and reclaim: no deadlock, no drift."""
    require(connection.vendor == "postgresql", "concurrency test needs Postgres (set DATABASE_URL)")
    project = make_project(comparisons=30, overlap_k=2, gold_rate=0.0)
    annotators = [member(project) for _ in range(12)]
    barrier = threading.Barrier(len(annotators))
    errors: list[BaseException] = []

    def work(user, seed):
        rng = random.Random(seed)
        try:
            barrier.wait()
            for _ in range(25):
                task = task_next_for(project=project, user=user)
                if task is None:
                    break
                action = rng.random()
                if action < 0.3:
                    _expire(task)  # walked away: the next request (theirs or anyone's) deals with it
                elif action < 0.4:
                    task_skip(task=task, user=user)
                else:
                    try:
                        _submit(task, user, as_the_api_loads_it=action < 0.7)
                    except TaskConflict:
                        pass  # their expired lease went to someone else meanwhile
        except BaseException as error:  # reported below; a thread's exception is otherwise lost
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=work, args=(user, i)) for i, user in enumerate(annotators)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert_counts_match_a_recount(project)
