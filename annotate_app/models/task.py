"""Tasks: one comparison leased to one annotator."""

from django.conf import settings
from django.db import models
from django.utils import timezone

from .comparison import Comparison
from .project import Project


class TaskStatus(models.TextChoices):
    LEASED = "leased", "Leased"
    SUBMITTED = "submitted", "Submitted"
    SKIPPED = "skipped", "Skipped"


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
        indexes = [models.Index(fields=["project", "annotator", "status"])]

    def __str__(self) -> str:
        return f"task {self.pk} ({self.status})"

    @property
    def is_open(self) -> bool:
        """Leased and not yet expired."""
        return self.status == TaskStatus.LEASED and self.expires_at > timezone.now()
