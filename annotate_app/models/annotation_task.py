"""Annotation tasks: one comparison leased to one annotator (Celery tasks are ``rm_worker/tasks.py``)."""

from django.conf import settings
from django.db import models
from django.utils import timezone

from .comparison import Comparison
from .project import Project


class TaskStatus(models.TextChoices):
    LEASED = "leased", "Leased"
    SUBMITTED = "submitted", "Submitted"
    SKIPPED = "skipped", "Skipped"
    # The lease ran out and its slot was given back; the same annotator may be handed
    # the comparison again (the task is renewed in place) while a slot is free.
    EXPIRED = "expired", "Expired"


class Task(models.Model):
    """A lease of one comparison to one annotator.

    There is at most one task per (comparison, annotator): an annotator never sees the
    same comparison twice. A lease that expired unsubmitted is renewed in place when the
    same annotator is handed that comparison again.
    """

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="tasks")
    comparison = models.ForeignKey(Comparison, on_delete=models.CASCADE, related_name="tasks")
    annotator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="tasks")
    status = models.CharField(max_length=16, choices=TaskStatus.choices, default=TaskStatus.LEASED)
    # True when response B was shown on the left: the annotator's "A" is canonical B.
    shown_swapped = models.BooleanField(default=False)
    leased_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["comparison", "annotator"], name="task_once_per_annotator"),
            models.CheckConstraint(condition=models.Q(status__in=TaskStatus.values), name="task_status_valid"),
        ]
        indexes = [
            models.Index(fields=["project", "annotator", "status"]),
            models.Index(
                fields=["project", "expires_at"], condition=models.Q(status="leased"), name="task_lease_expiry"
            ),
            # The statistics page reads the latest submits (selectors.stats).
            models.Index(
                fields=["project", "finished_at"], condition=models.Q(status="submitted"), name="task_recent_submits"
            ),
        ]

    def __str__(self) -> str:
        return f"task {self.pk} ({self.status})"

    @property
    def is_open(self) -> bool:
        """Leased and not yet expired."""
        return self.status == TaskStatus.LEASED and self.expires_at > timezone.now()


class AnnotatorQueue(models.Model):
    """One annotator's place in a project's queue, kept by annotate_app.services.queue.

    ``(cursor_rank, cursor)`` is the highest place in the queue (``Comparison.queue_rank``, id) of
    an ordinary comparison handed to them: everything above it is new to them, so the next lease is
    found without walking what they already did. Re-ranking the queue puts it back to (0, 0).
    ``submitted`` counts their submitted tasks; ``finished_open`` counts the ordinary
    comparisons they submitted or skipped that still have a free slot (so "remaining" is
    the project's open count minus this, with no count over the project).
    """

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="annotator_queues")
    annotator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    cursor = models.BigIntegerField(default=0)
    cursor_rank = models.FloatField(default=0.0, db_default=0.0)
    submitted = models.PositiveIntegerField(default=0)
    finished_open = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "annotator"], name="annotator_queue_unique")]

    def __str__(self) -> str:
        return f"queue of {self.annotator_id} in {self.project_id}"
