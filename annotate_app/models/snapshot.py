"""Snapshots: immutable, versioned dataset exports that training runs point at."""

from django.conf import settings
from django.db import models

from .project import Project


class SnapshotFormat(models.TextChoices):
    JSONL = "jsonl", "JSONL (multi-objective)"
    TRL = "trl", "TRL preference pairs (one objective)"
    CSV = "csv", "CSV (one row per judgment)"
    PARQUET = "parquet", "Parquet (one row per judgment)"


# What one row of each format's file is.
ROW_OF_FORMAT = {
    SnapshotFormat.JSONL: "comparison",
    SnapshotFormat.TRL: "preference pair",
    SnapshotFormat.CSV: "judgment",
    SnapshotFormat.PARQUET: "judgment",
}


class SnapshotStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    READY = "ready", "Ready"
    FAILED = "failed", "Failed"


class Snapshot(models.Model):
    """One export: a file plus its manifest (filters, counts, agreement, sha256).

    Written once by the export service; after it is ready nothing about it changes, so
    a run that names a snapshot names exactly the data it trained on.
    """

    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="snapshots")
    format = models.CharField(max_length=16, choices=SnapshotFormat.choices)
    objective = models.CharField(max_length=64, blank=True)
    filters = models.JSONField(default=dict)
    status = models.CharField(max_length=16, choices=SnapshotStatus.choices, default=SnapshotStatus.QUEUED)
    # Progress is counted in judgments read, the unit the build streams; the file's rows (one per
    # comparison, pair or judgment, by format) are counted in the manifest once it is written.
    judgments_total = models.PositiveIntegerField(
        default=0, help_text="Judgments in scope when the snapshot was asked for: the end of its progress bar."
    )
    judgments_read = models.PositiveIntegerField(default=0, help_text="Judgments the build has gone through so far.")
    file = models.CharField(max_length=500, blank=True, help_text="Path under MEDIA_ROOT.")
    size_bytes = models.BigIntegerField(null=True, blank=True)
    sha256 = models.CharField(max_length=64, blank=True)
    manifest = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Crash recovery, as for runs: a build whose heartbeat went stale is queued again (or failed).
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0, help_text="Times a build has started.")

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=models.Q(format__in=SnapshotFormat.values), name="snapshot_format"),
            models.CheckConstraint(condition=models.Q(status__in=SnapshotStatus.values), name="snapshot_status"),
            models.CheckConstraint(
                condition=~models.Q(status=SnapshotStatus.READY) | ~models.Q(sha256=""),
                name="snapshot_ready_has_sha256",
            ),
        ]

    def __str__(self) -> str:
        return f"snapshot {self.pk} ({self.project.slug}, {self.format})"

    @property
    def filename(self) -> str:
        extension = "jsonl" if self.format in (SnapshotFormat.JSONL, SnapshotFormat.TRL) else self.format
        suffix = f"-{self.objective}" if self.objective else ""
        return f"{self.project.slug}-snapshot-{self.pk}-{self.format}{suffix}.{extension}"
