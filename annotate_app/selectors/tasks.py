"""Reads of the task queue: an annotator's progress (leases are made by services.queue)."""

from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser

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
    open_count = Project.objects.values_list("open_count", flat=True).get(pk=project.pk)
    queue = AnnotatorQueue.objects.filter(project=project, annotator=user).values("submitted", "finished_open").first()
    queue = queue or {"submitted": 0, "finished_open": 0}
    holds_last_slot = Task.objects.filter(
        project=project, annotator=user, status=TaskStatus.LEASED, comparison__is_full=True, comparison__is_gold=False
    ).exists()
    return Progress(done=queue["submitted"], remaining=open_count - queue["finished_open"] + holds_last_slot)
