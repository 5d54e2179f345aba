"""Training runs (reward model; PPO later) and the metric points they log."""

from django.conf import settings
from django.db import models

from .project import Project
from .snapshot import Snapshot


class RunStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


FINISHED = (RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED)


class RewardModelRun(models.Model):
    """One reward-model training run on one snapshot (its lineage)."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="reward_runs")
    snapshot = models.ForeignKey(Snapshot, on_delete=models.PROTECT, related_name="reward_runs")
    config = models.JSONField(help_text="RewardModelConfig as trained (rm_worker.training.config).")
    status = models.CharField(max_length=16, choices=RunStatus.choices, default=RunStatus.QUEUED)
    step = models.PositiveIntegerField(default=0)
    total_steps = models.PositiveIntegerField(default=0)
    cancel_requested = models.BooleanField(default=False)
    final_metrics = models.JSONField(default=dict, blank=True)
    data_report = models.JSONField(default=dict, blank=True)
    artifacts_dir = models.CharField(max_length=500, blank=True, help_text="Path under MORM_ARTIFACTS_DIR.")
    error = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=models.Q(status__in=RunStatus.values), name="reward_run_status"),
        ]

    def __str__(self) -> str:
        return f"reward model run {self.pk} ({self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in FINISHED


class MetricPoint(models.Model):
    """One logged value, e.g. (120, "eval/accuracy/harmless", 0.71)."""

    reward_run = models.ForeignKey(RewardModelRun, on_delete=models.CASCADE, related_name="metric_points")
    step = models.PositiveIntegerField()
    key = models.CharField(max_length=100)
    value = models.FloatField()

    class Meta:
        ordering = ["step", "id"]
        indexes = [models.Index(fields=["reward_run", "step"])]

    def __str__(self) -> str:
        return f"{self.key}@{self.step}={self.value:g}"
