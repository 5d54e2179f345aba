"""The annotation queue: handing out leases of annotation tasks, and the counters that keep every step O(1).

Rules (DESIGN.md, Domain): a comparison gets at most ``overlap_k`` submitted
annotations; an annotator never gets the same comparison twice; a slot is held by at
most one lease. Gold items sit outside the slot rules: every annotator may get each one
once, drawn at the project's ``gold_rate`` while ordinary comparisons remain for them.

Invariants, true at every commit (``tests/annotate_app/services/test_queue.py`` checks
them against a recount):

- ``Comparison.slots_held`` = its tasks that are ``submitted`` or ``leased``. A lease
  past its expiry keeps its slot until it is reclaimed (its task becomes ``expired``);
  ``submitted_count`` = its submitted tasks; ``is_full`` = slots_held >= overlap_k.
- ``Project.open_count`` = ordinary (non-gold) comparisons that are not full;
  ``complete_count`` = ordinary comparisons with submitted_count >= overlap_k.
- ``AnnotatorQueue.finished_open`` = ordinary comparisons not full that the annotator
  submitted or skipped; ``submitted`` = their submitted tasks.

So the next lease is the first row of a partial index (open ordinary comparisons of the
project, by ``queue_rank`` then id) above the annotator's cursor, and progress is two
maintained numbers. The cursor, ``(cursor_rank, cursor)``, is at or above the place of every
ordinary comparison they were handed, until the queue is re-ranked (services.queue_order),
which puts every cursor back to the start: a cursor saves walking, it decides nothing.

Lock order in every transaction that changes a task: the comparison row, then the
AnnotatorQueue rows it touches (ascending annotator id, in one statement), then the
project row. One order means no deadlock on Postgres; on SQLite every transaction is
``BEGIN IMMEDIATE`` (settings), which serializes them. Candidates are taken with
``FOR UPDATE SKIP LOCKED``: annotators asking at once take different comparisons instead
of queueing on one row, and Postgres re-checks ``is_full`` on the row it locked.
"""

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Exists, F, OuterRef, Subquery
from django.utils import timezone

from .. import sql
from ..models import AnnotatorQueue, Comparison, Project, Task, TaskStatus
from ..selectors.queue import Progress, annotator_progress, objectives_from_json, objectives_json

FINISHED = (TaskStatus.SUBMITTED, TaskStatus.SKIPPED)
LEASED = sql.literal(TaskStatus.LEASED)
# The lowest place in a queue (queue_rank, id): every rank is >= 0 and every id > 0.
START = (0.0, 0)
# Expired leases given back per call to task_next_for. Each call makes at most one lease,
# so reclaiming more than one per call keeps up with any rate of expiry.
RECLAIM_PER_CALL = 4


@dataclass(frozen=True)
class NextTask:
    """What ``task_next`` hands out: the task to label (None when nothing is left) and the user's progress."""

    task: Task | None
    progress: Progress
    objectives: list[dict]  # as a task shows them (selectors.queue.objectives_shown)


def task_next_for(*, project: Project, user: AbstractBaseUser) -> Task | None:
    """The task the user should label now (see ``task_next``), or None when nothing is left for them."""
    return task_next(project=project, user=user).task


def task_next(*, project: Project, user: AbstractBaseUser) -> NextTask:
    """The task the user should label now: their open lease, else a new lease, else None; with their progress.

    Gives back a few expired leases of the project first (each in its own transaction) when
    there are any, renews the user's own expired lease if nobody took its slot, then leases
    the first open comparison above the user's cursor in the queue's order (or, once they
    reached the end, one that reopened below it). The progress comes from the numbers read on the way: no count.
    """
    now = timezone.now()
    state = _state_of(project, user, now)
    if state.expired_waiting:
        _reclaim_expired(project, now)
        state = _state_of(project, user, now)
    if state.own_task_id is not None and (own := _own_lease(state.own_task_id, now)) is not None:
        return NextTask(own, annotator_progress(project=project, user=user), state.objectives)
    # A new lease leaves "remaining" as it was: if it takes the comparison's last slot, the
    # open count drops by one and the lease they hold counts it back (selectors.queue).
    progress = Progress(done=state.submitted, remaining=state.open_count - state.finished_open)
    if state.open_count <= state.finished_open:
        return NextTask(None, progress, state.objectives)  # every open comparison is one they finished
    with transaction.atomic():
        candidate = _open_candidate(project, user, above=state.cursor) or _open_candidate(project, user, above=START)
        if candidate is None:
            return NextTask(None, progress, state.objectives)
        if project.gold_rate and random.random() < project.gold_rate:
            if (gold := _gold_candidate(project, user)) is not None:
                candidate = gold
        return NextTask(_lease(candidate, project, user, now), progress, state.objectives)


@dataclass(frozen=True)
class _QueueState:
    open_count: int
    cursor: tuple[float, int]  # (queue_rank, id)
    submitted: int
    finished_open: int
    own_task_id: int | None  # their oldest lease, open or not
    expired_waiting: bool  # some lease of the project ran out and still holds its slot
    objectives: list[dict]


def _state_of(project: Project, user: AbstractBaseUser, now: datetime) -> _QueueState:
    """Everything ``task_next`` decides on, in one statement (the user's queue row is made on first use)."""
    row = sql.one(
        f'SELECT p.open_count, q."cursor", q.cursor_rank, q.submitted, q.finished_open,'
        f" (SELECT t.id FROM {sql.TASK} t WHERE t.project_id = p.id AND t.annotator_id = %s AND t.status = {LEASED}"
        f"  ORDER BY t.leased_at, t.id LIMIT 1),"
        f" EXISTS (SELECT 1 FROM {sql.TASK} t WHERE t.project_id = p.id AND t.status = {LEASED}"
        f"  AND t.expires_at <= %s),"
        f" (SELECT {objectives_json()} FROM {sql.OBJECTIVE} o WHERE o.project_id = p.id)"
        f" FROM {sql.PROJECT} p LEFT JOIN {sql.QUEUE} q ON q.project_id = p.id AND q.annotator_id = %s"
        f" WHERE p.id = %s",
        [user.pk, sql.when(now), user.pk, project.pk],
    )
    if row[1] is None:
        AnnotatorQueue.objects.get_or_create(project=project, annotator=user)
        return _state_of(project, user, now)
    return _QueueState(row[0], (row[2], row[1]), *row[3:6], expired_waiting=bool(row[6]),
                       objectives=objectives_from_json(row[7]))


def _own_lease(task_id: int, now: datetime) -> Task | None:
    """The user's lease, renewed if it ran out; None if it was reclaimed and its slot taken meanwhile."""
    own = Task.objects.select_related("comparison", "project").get(pk=task_id)  # what the page and API show
    if own.status != TaskStatus.LEASED:
        return None
    if own.expires_at <= now:
        with transaction.atomic():
            return _renew(own, now)
    return own


def _open_candidate(project: Project, user: AbstractBaseUser, *, above: tuple[float, int]) -> Comparison | None:
    """The first open ordinary comparison above ``above`` (queue_rank, id) that the user has not finished, locked.

    Called with the user's cursor first: nothing above it was ever handed to them, so the
    walk stops at the first row. Called with START once nothing new is left for them, it
    passes over the open comparisons they finished.

    The condition is written as ``(project_id, queue_rank, id) > (project, rank, id)`` with
    ``project_id <= project``, ordered by all three, so that Postgres seeks straight to the
    spot in the ``comparison_open_queue_ranked`` index. With ``project_id = X AND id > N ORDER BY id``
    its planner preferred the primary key and walked every lower row of every project
    (measured by bench/queue_scale.py: see bench/RESULTS.md).
    """
    row = sql.one(
        "SELECT c.id, c.prompt, c.response_a, c.response_b, c.slots_held, c.submitted_count, c.is_full, c.is_gold,"
        " c.queue_rank,"
        f" (SELECT t.id FROM {sql.TASK} t WHERE t.comparison_id = c.id AND t.annotator_id = %s)"
        f" FROM {sql.COMPARISON} c WHERE (c.project_id, c.queue_rank, c.id) > (%s, %s, %s) AND c.project_id <= %s"
        " AND NOT c.is_full AND NOT c.is_gold"
        f" AND NOT EXISTS (SELECT 1 FROM {sql.TASK} t WHERE t.comparison_id = c.id AND t.annotator_id = %s"
        f"  AND t.status IN ({sql.literal(*FINISHED)}))"
        f" ORDER BY c.project_id, c.queue_rank, c.id LIMIT 1{sql.lock_clause(of='c', skip_locked=True)}",
        [user.pk, project.pk, *above, project.pk, user.pk],
    )
    if row is None:
        return None
    comparison = Comparison(
        id=row[0], project=project, prompt=sql.json_of(row[1]), response_a=row[2], response_b=row[3],
        slots_held=row[4], submitted_count=row[5], is_full=bool(row[6]), is_gold=bool(row[7]), queue_rank=row[8],
    )
    comparison.own_task_id = row[9]
    return comparison


def _gold_candidate(project: Project, user: AbstractBaseUser) -> Comparison | None:
    done = Task.objects.filter(comparison=OuterRef("pk"), annotator=user, status__in=FINISHED)
    gold = Comparison.objects.filter(project=project, is_gold=True).exclude(Exists(done))
    gold = gold.annotate(own_task_id=_own_task_id(user))
    return gold.order_by("?").select_for_update(skip_locked=True, of=("self",)).first()


def _own_task_id(user: AbstractBaseUser) -> Subquery:
    """The user's task on the comparison, if any (an expired lease, given how candidates are chosen)."""
    return Subquery(Task.objects.filter(comparison=OuterRef("pk"), annotator=user).values("pk")[:1])


def _renew(task: Task, now: datetime) -> Task | None:
    """Extend the user's own lease that ran out, unless it was reclaimed meanwhile."""
    Comparison.objects.select_for_update().filter(pk=task.comparison_id).first()
    task = Task.objects.select_for_update().get(pk=task.pk)
    if task.status != TaskStatus.LEASED:
        return None
    task.leased_at = now
    task.expires_at = now + timedelta(minutes=task.project.lease_minutes)
    task.save(update_fields=["leased_at", "expires_at"])
    return task


def _lease(comparison: Comparison, project: Project, user: AbstractBaseUser, now: datetime) -> Task:
    """Lease the locked candidate to the user: a new task, or their expired one renewed."""
    expires_at = now + timedelta(minutes=project.lease_minutes)
    if comparison.own_task_id is None:
        shown_swapped = project.shuffle_sides and random.random() < 0.5
        insert = (f"INSERT INTO {sql.TASK} (project_id, comparison_id, annotator_id, status, shown_swapped, leased_at,"
                  " expires_at) VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING id",
                  [project.pk, comparison.pk, user.pk, TaskStatus.LEASED, shown_swapped, sql.when(now),
                   sql.when(expires_at)])
        task_id = counts_update(comparison=comparison, project=project, actor_id=user.pk, held=1, handed=True,
                                first=insert)
        return Task(id=task_id, project=project, comparison=comparison, annotator=user,
                    status=TaskStatus.LEASED, shown_swapped=shown_swapped, leased_at=now, expires_at=expires_at)
    # Their lease on this comparison expired and was reclaimed: renew it in place,
    # keeping the side order they may already have seen.
    task = Task.objects.get(pk=comparison.own_task_id)
    task.status = TaskStatus.LEASED
    task.leased_at = now
    task.expires_at = expires_at
    task.save(update_fields=["status", "leased_at", "expires_at"])
    counts_update(comparison=comparison, project=project, actor_id=user.pk, held=1, handed=True)
    return task


def _reclaim_expired(project: Project, now: datetime) -> None:
    """Give back the slots of a few expired leases of the project, oldest first."""
    comparison_ids = list(
        Task.objects.filter(project=project, status=TaskStatus.LEASED, expires_at__lte=now)
        .order_by("expires_at")
        .values_list("comparison_id", flat=True)[:RECLAIM_PER_CALL]
    )
    for comparison_id in sorted(set(comparison_ids)):
        with transaction.atomic():
            comparison = Comparison.objects.select_for_update(skip_locked=True).filter(pk=comparison_id).first()
            if comparison is None:
                continue  # someone is working on it; a later call gets it
            expired = list(Task.objects.select_for_update().filter(
                comparison=comparison, status=TaskStatus.LEASED, expires_at__lte=now
            ).values_list("pk", flat=True))
            if expired:
                # One counts_update for all of them: a second one would lock queue rows after the
                # first had locked the project row, against the lock order (a deadlock, seen).
                Task.objects.filter(pk__in=expired).update(status=TaskStatus.EXPIRED)
                counts_update(comparison=comparison, project=project, held=-len(expired))


def leases_release(*, project: Project, user: AbstractBaseUser) -> int:
    """End every lease the user holds in the project now (they left it); returns how many.

    Each task becomes ``expired`` and gives its slot back, as if its lease had run out, so
    the counters stay exact and the comparison goes to someone else. Waits for the row
    locks (no SKIP LOCKED): a lease must not survive because its comparison was busy.
    """
    comparison_ids = Task.objects.filter(project=project, annotator=user, status=TaskStatus.LEASED).values_list(
        "comparison_id", flat=True
    )
    released = 0
    for comparison_id in sorted(set(comparison_ids)):
        with transaction.atomic():
            comparison = Comparison.objects.select_for_update().get(pk=comparison_id)
            task = Task.objects.select_for_update().filter(
                comparison=comparison, annotator=user, status=TaskStatus.LEASED
            ).first()
            if task is not None:
                _expire(task, comparison, project)
                released += 1
    return released


def _expire(task: Task, comparison: Comparison, project: Project) -> None:
    """Turn a lease into an expired task and free its slot (inside the comparison's row lock)."""
    task.status = TaskStatus.EXPIRED
    task.save(update_fields=["status"])
    counts_update(comparison=comparison, project=project, actor_id=task.annotator_id, held=-1)


@dataclass(frozen=True)
class _Standing:
    open: int
    complete: int


def _standing(comparison: Comparison, overlap_k: int) -> _Standing:
    ordinary = not comparison.is_gold
    return _Standing(
        open=int(ordinary and not comparison.is_full),
        complete=int(ordinary and comparison.submitted_count >= overlap_k),
    )


def counts_update(
    *,
    comparison: Comparison,
    project: Project,
    actor_id: int | None = None,
    held: int = 0,
    submitted: int = 0,
    finishes: bool = False,
    handed: bool = False,
    is_gold: bool | None = None,
    first: sql.Statement | None = None,
    along: Sequence[sql.Statement] = (),
) -> int | None:
    """Apply one change of a comparison's tasks (or of its gold flag) to every counter.

    Call inside a transaction holding the comparison row lock, with the row as locked,
    and with the actor's task not yet or already finished, whichever: the actor is
    counted through ``finishes`` only. ``held``/``submitted`` change the slots held and
    the submitted annotations; ``finishes`` says the actor submitted or skipped it;
    ``handed`` that it was just leased to them (their cursor moves up to it);
    ``is_gold`` moves the comparison in or out of the ordinary pool.

    ``first`` (an ``INSERT ... RETURNING id``) and ``along`` are the change's own writes (a new
    task; an annotation, its judgments and its task's status), on rows that are new or locked
    already. They go with the counters' writes in as few round trips as the lock order allows
    (``sql.write_together``: at most one lock not held yet per round trip); returns ``first``'s id.
    """
    k = project.overlap_k
    before = _standing(comparison, k)
    comparison.slots_held += held
    comparison.submitted_count += submitted
    comparison.is_full = comparison.slots_held >= k
    if is_gold is not None:
        comparison.is_gold = is_gold
    writes = [*along, (f"UPDATE {sql.COMPARISON} SET slots_held = %s, submitted_count = %s, is_full = %s,"
                       " is_gold = %s WHERE id = %s", [comparison.slots_held, comparison.submitted_count,
                                                         comparison.is_full, comparison.is_gold, comparison.pk])]
    after = _standing(comparison, k)
    open_step, complete_step = after.open - before.open, after.complete - before.complete
    if open_step:
        writes += _others_update(comparison, project, actor_id, open_step)  # locks the actor's queue row too
    actor_write = _actor_update(comparison, project, actor_id, submitted=submitted, handed=handed,
                                finished_open=int(finishes) * after.open) if actor_id is not None else None
    writes += [actor_write] if actor_write else []
    project_write = (f"UPDATE {sql.PROJECT} SET open_count = open_count + %s, complete_count = complete_count + %s"
                     " WHERE id = %s", [open_step, complete_step, project.pk]) if open_step or complete_step else None
    # The project row comes last in the lock order: while the actor's queue row is still to lock,
    # the project's write goes in a round trip of its own.
    together = project_write is not None and (open_step or actor_write is None)
    new_id = sql.write_together(*writes, *([project_write] if together else []), first=first)
    if project_write is not None and not together:
        sql.run(*project_write)
    return new_id


def _others_update(comparison: Comparison, project: Project, actor_id: int | None,
                   open_step: int) -> list[sql.Statement]:
    """The comparison opened or filled up: move it in or out of its finishers' ``finished_open``.

    Their queue rows and the actor's are locked here, in one statement, in annotator order
    (the lock order above); returns the write to send.
    """
    locked = sql.rows(
        f"SELECT q.annotator_id FROM {sql.QUEUE} q WHERE q.project_id = %s AND (q.annotator_id = %s"
        f" OR q.annotator_id IN (SELECT t.annotator_id FROM {sql.TASK} t WHERE t.comparison_id = %s"
        f" AND t.status IN ({sql.literal(*FINISHED)}))) ORDER BY q.annotator_id{sql.lock_clause(of='q')}",
        [project.pk, -1 if actor_id is None else actor_id, comparison.pk],
    )
    others = [annotator for (annotator,) in locked if annotator != actor_id]
    if not others:
        return []
    return [(f"UPDATE {sql.QUEUE} SET finished_open = finished_open + %s"
             f" WHERE project_id = %s AND annotator_id IN ({sql.placeholders(others)})",
             [open_step, project.pk, *others])]


def _actor_update(comparison: Comparison, project: Project, actor_id: int, *, submitted: int, handed: bool,
                  finished_open: int) -> sql.Statement | None:
    moves = handed and not comparison.is_gold
    if not (submitted or finished_open or moves):
        return None
    place = [comparison.queue_rank, comparison.pk] if moves else [-1.0, 0]  # below START: the cursor stays
    above = '(%s, %s) > (cursor_rank, "cursor")'
    return (f"UPDATE {sql.QUEUE} SET submitted = submitted + %s, finished_open = finished_open + %s,"
            f" cursor_rank = CASE WHEN {above} THEN %s ELSE cursor_rank END,"
            f' "cursor" = CASE WHEN {above} THEN %s ELSE "cursor" END WHERE project_id = %s AND annotator_id = %s',
            [submitted, finished_open, *place, place[0], *place, place[1], project.pk, actor_id])


def comparisons_added(*, project: Project, created: int, labelled: int) -> None:
    """Count newly imported comparisons (all ordinary and open) and imported label sets."""
    Project.objects.filter(pk=project.pk).update(
        comparison_count=F("comparison_count") + created,
        open_count=F("open_count") + created,
        imported_label_sets=F("imported_label_sets") + labelled,
    )
