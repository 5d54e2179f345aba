"""Reads of the annotation queue: an annotator's progress (leases are made by ``services.queue``)."""

from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Exists, OuterRef, Subquery

from .. import sql
from ..models import AnnotatorQueue, Project, Task, TaskStatus


@dataclass(frozen=True)
class Progress:
    done: int
    remaining: int

    @property
    def total(self) -> int:
        return self.done + self.remaining


def annotator_progress(*, project: Project, user: AbstractBaseUser) -> Progress:
    """The user's submitted count and how many comparisons they may still label.

    Remaining: the open ordinary comparisons they have not finished, plus the one they
    hold if their lease took its last slot. Maintained numbers (see services.queue) and
    the user's own leases, whatever the size of the project.
    """
    leases_last_slot = Task.objects.filter(
        project=OuterRef("pk"), annotator=user, status=TaskStatus.LEASED, comparison__is_full=True,
        comparison__is_gold=False,
    )
    queue = AnnotatorQueue.objects.filter(project=OuterRef("pk"), annotator=user)
    row = (
        Project.objects.filter(pk=project.pk)
        .values("open_count")
        .annotate(
            submitted=Subquery(queue.values("submitted")[:1]),
            finished_open=Subquery(queue.values("finished_open")[:1]),
            holds_last_slot=Exists(leases_last_slot),
        )
        .get()
    )
    remaining = row["open_count"] - (row["finished_open"] or 0) + row["holds_last_slot"]
    return Progress(done=row["submitted"] or 0, remaining=remaining)


OBJECTIVE_COLUMNS = ("key", "name", "guideline", "order")


def objectives_shown(project: Project) -> list[dict]:
    """The project's objectives as a task shows them, in order."""
    return objectives_from_json(sql.one(
        f"SELECT {objectives_json()} FROM {sql.OBJECTIVE} o WHERE o.project_id = %s", [project.pk])[0])


def objectives_json() -> str:
    """An aggregate of objective rows ``o`` into the JSON ``objectives_from_json`` reads (``tasks/next`` reads
    it in the statement that reads the annotator's state: one round trip fewer per task)."""
    return sql.json_rows(*(f'o."{column}"' for column in OBJECTIVE_COLUMNS), "o.id")


def objectives_from_json(value) -> list[dict]:
    rows = sorted(sql.json_of(value) or [], key=lambda row: (row[3], row[4]))  # Objective.Meta.ordering
    return [dict(zip(OBJECTIVE_COLUMNS, row[:4], strict=True)) for row in rows]
