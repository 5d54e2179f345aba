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


def objectives_shown(project: Project) -> list[dict]:
    """The project's objectives as a task shows them, in order (every ``tasks/next`` reads them)."""
    objectives = sql.rows(
        f'SELECT key, name, guideline, "order" FROM {sql.OBJECTIVE} WHERE project_id = %s ORDER BY "order", id',
        [project.pk],
    )
    fields = ("key", "name", "guideline", "order")
    return [dict(zip(fields, objective, strict=True)) for objective in objectives]
