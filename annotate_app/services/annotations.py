"""Submitting, editing and skipping tasks."""

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone

from .. import access, sql
from ..models import (
    Annotation,
    AnnotationRevision,
    Choice,
    Comparison,
    Judgment,
    Objective,
    Task,
    TaskStatus,
    WebhookEvent,
)
from .queue import counts_update
from .rounds import retrain_labels_added
from .webhooks import webhook_event_emit

MIRRORED = {Choice.A: Choice.B, Choice.B: Choice.A, Choice.TIE: Choice.TIE}
LEASED, SUBMITTED = sql.literal(TaskStatus.LEASED), sql.literal(TaskStatus.SUBMITTED)
# The column is a 32-bit integer on PostgreSQL; the same limit on SQLite keeps the two alike.
TIME_SPENT_MS_MAX = 2**31 - 1


class TaskConflict(Exception):
    """The task can no longer be submitted (skipped, submitted with other content, or its slot is gone)."""


@dataclass(frozen=True)
class JudgmentInput:
    """One objective's judgment as the annotator saw it: A is the response shown left."""

    choice: str
    strength: int | None = None
    rationale: str = ""
    likert_a: int | None = None
    likert_b: int | None = None


@dataclass(frozen=True)
class SubmitResult:
    annotation: Annotation
    created: bool
    judgments: list[Judgment] = field(default_factory=list)


def annotation_submit(
    *,
    task: Task,
    user: AbstractBaseUser,
    judgments: Mapping[str, JudgmentInput],
    flags_a: list[str] | None = None,
    flags_b: list[str] | None = None,
    time_spent_ms: int | None = None,
) -> SubmitResult:
    """Store the annotator's judgments for a task, in canonical A/B orientation.

    ``judgments`` maps every objective key of the project to what the annotator chose,
    in the orientation they were shown. Idempotent: submitting a submitted task again
    with the same content returns the stored annotation and creates nothing; other
    content raises TaskConflict (see _resubmitted). Locks the comparison row, then the
    task (the queue's lock order), so a submit after the lease expired cannot take a
    slot someone else got meanwhile.
    """
    if task.annotator_id != user.pk:
        raise PermissionError("Tasks are submitted by the annotator they were leased to.")
    if time_spent_ms is not None and not 0 <= time_spent_ms <= TIME_SPENT_MS_MAX:
        raise ValidationError({"time_spent_ms": f"Must be between 0 and {TIME_SPENT_MS_MAX}."})
    if (done := _submitted_at_once(task, user, judgments, flags_a, flags_b, time_spent_ms)) is not None:
        return done
    with transaction.atomic():
        comparison, task, objective_ids, webhooks_listening = _lock(task)
        if task.status == TaskStatus.SKIPPED:
            raise TaskConflict("This task was skipped and cannot be submitted.")
        project = comparison.project
        rows, flags_a, flags_b = _as_stored(task, judgments, flags_a, flags_b, objective_ids)
        if task.status == TaskStatus.SUBMITTED:
            return _resubmitted(task, rows, flags_a, flags_b)
        # A lease past its expiry still holds its slot until it is reclaimed; a reclaimed
        # one may take a slot again if one is free.
        retaken = int(task.status == TaskStatus.EXPIRED)
        if retaken and comparison.is_full:
            raise TaskConflict("The lease on this task expired and the comparison was given to someone else.")
        now = timezone.now()
        annotation_id = counts_update(
            comparison=comparison, project=project, actor_id=user.pk, held=retaken, submitted=1, finishes=True,
            first=_annotation_insert(comparison, task, user, flags_a, flags_b, time_spent_ms, now),
            along=[_judgments_insert(rows),
                   (f"UPDATE {sql.TASK} SET status = %s, finished_at = %s WHERE id = %s",
                    [TaskStatus.SUBMITTED, sql.when(now), task.pk])])
        if project.retrain_every:
            retrain_labels_added(project_id=project.pk)
        result = _created(annotation_id, task, user, rows, flags_a, flags_b, time_spent_ms, now)
        if webhooks_listening:
            webhook_event_emit(project_id=project.pk, event=WebhookEvent.ANNOTATION_CREATED,
                               data=_created_event(result.annotation, rows))
    return result


def _as_stored(task: Task, judgments: Mapping[str, JudgmentInput], flags_a: list[str] | None,
               flags_b: list[str] | None, objective_ids: Mapping[str, int]) -> tuple[list[Judgment], list, list]:
    """A submit's judgments and flags checked and turned into canonical A/B orientation, as they are stored."""
    project = task.project
    rows = _judgment_rows(project, judgments, swapped=task.shown_swapped, objective_ids=objective_ids)
    shown_flags = (_valid_flags(project, flags_a, "flags_a"), _valid_flags(project, flags_b, "flags_b"))
    flags_a, flags_b = reversed(shown_flags) if task.shown_swapped else shown_flags
    return rows, flags_a, flags_b


def _created(annotation_id: int, task: Task, user: AbstractBaseUser, rows: list[Judgment], flags_a: list[str],
             flags_b: list[str], time_spent_ms: int | None, now: datetime) -> SubmitResult:
    """The result of a submit that stored annotation ``annotation_id`` (its task now submitted)."""
    task.status, task.finished_at = TaskStatus.SUBMITTED, now
    annotation = Annotation(id=annotation_id, comparison_id=task.comparison_id, annotator=user, task=task,
                            flags_a=flags_a, flags_b=flags_b, time_spent_ms=time_spent_ms, created_at=now)
    for row in rows:
        row.annotation = annotation
    return SubmitResult(annotation=annotation, created=True, judgments=rows)


def _submitted_at_once(task: Task, user: AbstractBaseUser, judgments: Mapping[str, JudgmentInput],
                       flags_a: list[str] | None, flags_b: list[str] | None,
                       time_spent_ms: int | None) -> SubmitResult | None:
    """The common submit as one statement on Postgres, in autocommit: one round trip instead of four (BEGIN,
    the locks, the writes, COMMIT). The common case: a leased task (``access.task_for`` loaded it with the
    project's objectives), in a project that counts no labels for a retrain, whose submit does not complete its
    comparison (the project row would be a second lock to take) and that no active webhook listens to.

    The statement locks the comparison and the task (in that order, the queue's) and re-checks those conditions
    on the locked rows; where they hold it writes what the general path would (the annotation, its judgments,
    the task's status, the comparison's and the annotator's counters: no slot and no open count moves). Where
    they do not, it writes nothing and keeps no lock, and None sends the submit down the general path.
    """
    project = task.project
    objective_ids = getattr(project, "objective_ids", None)
    if (connection.vendor != "postgresql" or not objective_ids or project.retrain_every
            or task.status != TaskStatus.LEASED):
        return None
    rows, flags_a, flags_b = _as_stored(task, judgments, flags_a, flags_b, objective_ids)
    now = timezone.now()
    judgment = "(%s::bigint, %s::varchar, %s::smallint, %s::text, %s::float8, %s::float8)"
    row = sql.one(
        f"WITH locked AS (SELECT c.is_full, c.is_gold FROM {sql.COMPARISON} c, {sql.TASK} t"
        f"  WHERE c.id = %s AND t.id = %s AND t.status = {LEASED} AND (c.is_gold OR c.submitted_count + 1 < %s)"
        f"  AND NOT EXISTS (SELECT 1 FROM {sql.WEBHOOK} w WHERE w.project_id = c.project_id AND w.active)"
        "  FOR UPDATE OF c, t),"
        f" new AS (INSERT INTO {sql.ANNOTATION} (comparison_id, annotator_id, task_id, flags_a, flags_b,"
        "  time_spent_ms, created_at) SELECT %s::bigint, %s::integer, %s::bigint, %s::jsonb, %s::jsonb, %s::integer,"
        "  %s::timestamptz FROM locked RETURNING id),"
        f" judged AS (INSERT INTO {sql.JUDGMENT} (annotation_id, objective_id, choice, strength, rationale, likert_a,"
        f"  likert_b) SELECT new.id, v.* FROM new, (VALUES {', '.join([judgment] * len(rows))}) v),"
        f" task_done AS (UPDATE {sql.TASK} SET status = {SUBMITTED}, finished_at = %s WHERE id = %s"
        "  AND EXISTS (SELECT 1 FROM locked)),"
        f" comparison_counted AS (UPDATE {sql.COMPARISON} SET submitted_count = submitted_count + 1 WHERE id = %s"
        "  AND EXISTS (SELECT 1 FROM locked)),"
        f" queue_counted AS (UPDATE {sql.QUEUE} SET submitted = submitted + 1, finished_open = finished_open"
        "  + (SELECT CASE WHEN is_full OR is_gold THEN 0 ELSE 1 END FROM locked)"
        "  WHERE project_id = %s AND annotator_id = %s AND EXISTS (SELECT 1 FROM locked))"
        " SELECT id FROM new",
        [task.comparison_id, task.pk, project.overlap_k,
         task.comparison_id, user.pk, task.pk, sql.json_value(flags_a), sql.json_value(flags_b), time_spent_ms,
         sql.when(now),
         *[value for row in rows for value in (row.objective_id, str(row.choice), row.strength, row.rationale,
                                               row.likert_a, row.likert_b)],
         sql.when(now), task.pk, task.comparison_id, project.pk, user.pk],
    )
    return None if row is None else _created(row[0], task, user, rows, flags_a, flags_b, time_spent_ms, now)


def _created_event(annotation: Annotation, rows: list[Judgment]) -> dict:
    """What an ``annotation.created`` webhook says: ids, and the judgments in canonical A/B orientation."""
    return {"annotation_id": annotation.pk, "comparison_id": annotation.comparison_id, "task_id": annotation.task_id,
            "annotator_id": annotation.annotator_id, "created_at": annotation.created_at.isoformat(),
            "judgments": [{"objective": row.objective.key, "choice": str(row.choice), "strength": row.strength,
                           "rationale": row.rationale} for row in rows]}


def _annotation_insert(comparison: Comparison, task: Task, user: AbstractBaseUser, flags_a: list[str],
                       flags_b: list[str], time_spent_ms: int | None, now: datetime) -> sql.Statement:
    return (f"INSERT INTO {sql.ANNOTATION} (comparison_id, annotator_id, task_id, flags_a, flags_b, time_spent_ms,"
            " created_at) VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING id",
            [comparison.pk, user.pk, task.pk, sql.json_value(flags_a), sql.json_value(flags_b), time_spent_ms,
             sql.when(now)])


def _judgments_insert(rows: list[Judgment]) -> sql.Statement:
    """One INSERT for all of a new annotation's judgments (``sql.NEW_ID``: its id, not known yet)."""
    columns = ("objective_id", "choice", "strength", "rationale", "likert_a", "likert_b")
    params = []
    for row in rows:
        params += [row.objective_id, str(row.choice), row.strength, row.rationale, row.likert_a, row.likert_b]
    one_row = f"({sql.NEW_ID}, {sql.placeholders(columns)})"
    return (f"INSERT INTO {sql.JUDGMENT} (annotation_id, {', '.join(columns)})"
            f" VALUES {', '.join([one_row] * len(rows))}", params)


def _resubmitted(task: Task, rows: list[Judgment], flags_a: list[str], flags_b: list[str]) -> SubmitResult:
    """The stored annotation if a second submit sends what it holds, else TaskConflict.

    Compared: each objective's choice, strength, rationale and Likert ratings and the flags,
    in canonical orientation, as they would be stored. Not compared: time_spent_ms, which
    a client retrying a submit whose answer it never got measures again.
    """
    annotation = Annotation.objects.get(task=task)
    stored = list(annotation.judgments.select_related("objective"))
    if _content(stored) != _content(rows) or (annotation.flags_a, annotation.flags_b) != (flags_a, flags_b):
        raise TaskConflict(
            "This task was already submitted with other judgments or flags; a submitted annotation cannot be changed."
        )
    return SubmitResult(annotation=annotation, created=False, judgments=stored)


def _content(judgments: list[Judgment]) -> set[tuple]:
    return {(j.objective_id, str(j.choice), j.strength, j.rationale, j.likert_a, j.likert_b) for j in judgments}


def _lock(task: Task) -> tuple[Comparison, Task, dict[str, int], bool]:
    """Lock the task's comparison, then the task: the queue's lock order (services.queue).

    Returns the comparison's counters as locked, the task with its status as locked (the
    project is the one the task was loaded with), the project's objectives ``{key: id}`` and
    whether any active webhook of the project may want to hear of it, read in the same
    statement (a submit needs them: no round trip of their own).
    """
    # One statement locks both rows, the comparison first (the order of its FROM list); Postgres then
    # reads both as locked, so the task's status is the one that holds.
    *counters, objectives, status, shown_swapped, webhooks_listening = sql.one(
        f"SELECT c.slots_held, c.submitted_count, c.is_full, c.is_gold, {sql.objective_ids('c.project_id')},"
        " t.status, t.shown_swapped,"
        f" EXISTS (SELECT 1 FROM {sql.WEBHOOK} w WHERE w.project_id = c.project_id AND w.active)"
        f" FROM {sql.COMPARISON} c, {sql.TASK} t WHERE c.id = %s AND t.id = %s{sql.lock_clause(of='c, t')}",
        [task.comparison_id, task.pk])
    comparison = Comparison(id=task.comparison_id, project=task.project, slots_held=counters[0],
                            submitted_count=counters[1], is_full=bool(counters[2]), is_gold=bool(counters[3]))
    task.status, task.shown_swapped = status, bool(shown_swapped)
    return comparison, task, sql.objective_ids_of(objectives), bool(webhooks_listening)


def _objectives_of(project) -> dict[str, int]:
    return dict(sql.rows(f"SELECT key, id FROM {sql.OBJECTIVE} WHERE project_id = %s", [project.pk]))


def _judgment_rows(project, judgments: Mapping[str, JudgmentInput], *, swapped: bool,
                   objective_ids: Mapping[str, int]) -> list[Judgment]:
    objectives = {key: Objective(id=pk, key=key, project=project) for key, pk in objective_ids.items()}
    missing = sorted(set(objectives) - set(judgments))
    unknown = sorted(set(judgments) - set(objectives))
    errors = {}
    if missing:
        errors["judgments"] = f"Missing a judgment for: {', '.join(missing)}."
    if unknown:
        errors["judgments"] = f"Unknown objective: {', '.join(unknown)}."
    if errors:
        raise ValidationError(errors)
    rows = []
    for key, given in judgments.items():
        _check_judgment(key, given, ask_likert=project.ask_likert)
        choice = MIRRORED[Choice(given.choice)] if swapped else Choice(given.choice)
        likert_a, likert_b = (given.likert_b, given.likert_a) if swapped else (given.likert_a, given.likert_b)
        rows.append(
            Judgment(
                objective=objectives[key],
                choice=choice,
                strength=given.strength,
                rationale=given.rationale.strip(),
                likert_a=likert_a,
                likert_b=likert_b,
            )
        )
    return rows


def _check_judgment(key: str, given: JudgmentInput, *, ask_likert: bool) -> None:
    if given.choice not in Choice.values:
        raise ValidationError({key: f"choice must be one of {', '.join(Choice.values)}."})
    if given.choice == Choice.TIE and given.strength is not None:
        raise ValidationError({key: "A tie has no strength."})
    if given.choice != Choice.TIE and given.strength not in (1, 2, 3):
        raise ValidationError({key: "strength must be 1 (slight), 2 (clear) or 3 (strong)."})
    for name in ("likert_a", "likert_b"):
        value = getattr(given, name)
        if value is None:
            continue
        if not ask_likert:
            raise ValidationError({key: "This project does not ask for Likert ratings."})
        if value not in range(1, 8):
            raise ValidationError({key: f"{name} must be between 1 and 7."})


def _valid_flags(project, flags: list[str] | None, name: str) -> list[str]:
    flags = list(flags or [])
    if flags and not project.ask_flags:
        raise ValidationError({name: "This project does not ask for flags."})
    unknown = sorted(set(flags) - set(project.flag_options))
    if unknown:
        raise ValidationError({name: f"Unknown flag: {', '.join(unknown)}."})
    return sorted(set(flags))


def annotation_edit(
    *,
    annotation: Annotation,
    user: AbstractBaseUser,
    judgments: Mapping[str, JudgmentInput],
    flags_a: list[str] | None = None,
    flags_b: list[str] | None = None,
) -> AnnotationRevision | None:
    """Change a submitted annotation's judgments and flags; the values replaced are kept as a revision.

    ``judgments`` and the flags are given as the annotator saw the task (A on the left), like
    annotation_submit's, and stored in canonical orientation. Only the annotator who made the
    annotation may edit it, and only while a member of its project. The task stays submitted
    and no queue counter moves. Snapshots are files written once, so the ones already built
    keep the old values. Returns the revision, or None when nothing changed. Locks the
    annotation row so two edits cannot both record the same previous values.
    """
    if annotation.annotator_id is None or annotation.annotator_id != user.pk:
        raise PermissionError("An annotation is edited only by the annotator who made it.")
    with transaction.atomic():
        # Only the annotation row: its task is an outer join, which PostgreSQL cannot lock.
        annotation = Annotation.objects.select_for_update(of=("self",)).select_related(
            "comparison__project", "task").get(pk=annotation.pk)
        project = annotation.comparison.project
        if access.project_role(user, project) is None:
            raise PermissionError("Only a member of the project may edit their annotations in it.")
        swapped = bool(annotation.task and annotation.task.shown_swapped)
        rows = _judgment_rows(project, judgments, swapped=swapped, objective_ids=_objectives_of(project))
        shown_flags = (_valid_flags(project, flags_a, "flags_a"), _valid_flags(project, flags_b, "flags_b"))
        flags_a, flags_b = reversed(shown_flags) if swapped else shown_flags
        stored = list(annotation.judgments.select_related("objective"))
        if _content(stored) == _content(rows) and (annotation.flags_a, annotation.flags_b) == (flags_a, flags_b):
            return None
        revision = AnnotationRevision.objects.create(
            annotation=annotation, editor=user, edited_at=timezone.now(),
            previous=_previous(stored, annotation.flags_a, annotation.flags_b))
        for row in rows:
            Judgment.objects.update_or_create(
                annotation=annotation, objective=row.objective,
                defaults={"choice": row.choice, "strength": row.strength, "rationale": row.rationale,
                          "likert_a": row.likert_a, "likert_b": row.likert_b})
        annotation.flags_a, annotation.flags_b = flags_a, flags_b
        annotation.save(update_fields=["flags_a", "flags_b"])
    return revision


def _previous(stored: list[Judgment], flags_a: list[str], flags_b: list[str]) -> dict:
    judgments = {j.objective.key: {"choice": str(j.choice), "strength": j.strength, "rationale": j.rationale,
                                   "likert_a": j.likert_a, "likert_b": j.likert_b} for j in stored}
    return {"judgments": judgments, "flags_a": flags_a, "flags_b": flags_b}


def task_skip(*, task: Task, user: AbstractBaseUser) -> Task:
    """Give the task back: the slot frees up and the user never gets this comparison again."""
    if task.annotator_id != user.pk:
        raise PermissionError("Tasks are skipped by the annotator they were leased to.")
    with transaction.atomic():
        comparison, task, *_ = _lock(task)
        if task.status == TaskStatus.SUBMITTED:
            raise TaskConflict("This task was already submitted.")
        if task.status != TaskStatus.SKIPPED:
            released = -int(task.status == TaskStatus.LEASED)
            task.status = TaskStatus.SKIPPED
            task.finished_at = timezone.now()
            task.save(update_fields=["status", "finished_at"])
            counts_update(comparison=comparison, project=comparison.project, actor_id=user.pk, held=released,
                          finishes=True)
    return task
