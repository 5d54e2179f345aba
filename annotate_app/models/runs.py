"""Training runs (reward model, PPO policy), the metric points they log, and PPO samples."""

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


class TrainingRun(models.Model):
    """What every run has: config, status, progress, outcome. Runs are queued by the web
    process and executed by a Celery worker on the ``training`` queue."""

    # The MetricPoint foreign key that points at this kind of run.
    metric_field: str = ""
    # Folder under MORM_ARTIFACTS_DIR holding this kind of run's outputs.
    artifacts_prefix: str = ""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="%(class)ss")
    config = models.JSONField(help_text="The training config as run (rm_worker.training).")
    status = models.CharField(max_length=16, choices=RunStatus.choices, default=RunStatus.QUEUED)
    step = models.PositiveIntegerField(default=0)
    total_steps = models.PositiveIntegerField(default=0, help_text="0 while not known yet.")
    # Progress as the worker reports it (rm_worker.runtime.MetricsWriter); the ETA follows from them
    # (selectors.runs.run_progress).
    stage = models.CharField(max_length=100, blank=True, help_text="What the worker is doing now.")
    seconds_per_step = models.FloatField(null=True, blank=True, help_text="Moving average of the recent steps.")
    step_at = models.DateTimeField(null=True, blank=True, help_text="When the worker reached ``step``.")
    cancel_requested = models.BooleanField(default=False)
    final_metrics = models.JSONField(default=dict, blank=True)
    artifacts_dir = models.CharField(max_length=500, blank=True, help_text="Path under MORM_ARTIFACTS_DIR.")
    error = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Crash recovery (services.recovery): the worker running it touches heartbeat_at; a running run
    # whose heartbeat is older than MORM_STALE_AFTER_SECONDS lost its worker and is queued again.
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0, help_text="Times a worker has started it.")
    resumed_from_step = models.PositiveIntegerField(
        null=True, blank=True, help_text="The checkpoint step the latest attempt resumed from."
    )

    class Meta:
        abstract = True
        ordering = ["-created_at", "-id"]

    @property
    def is_finished(self) -> bool:
        return self.status in FINISHED


class RewardModelRun(TrainingRun):
    """One reward-model training run on one snapshot (its lineage)."""

    metric_field = "reward_run"
    artifacts_prefix = "reward_runs"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="reward_runs")
    snapshot = models.ForeignKey(Snapshot, on_delete=models.PROTECT, related_name="reward_runs")
    init_heads_run = models.ForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="+",
        help_text="The finished run whose heads this run's started from (config init_heads_from).",
    )
    data_report = models.JSONField(default=dict, blank=True)
    report = models.JSONField(
        default=dict, blank=True,
        help_text="How far to trust the model, per objective, on its held-out pairs "
                  "(rm_worker.training.report.reward_model_report); empty until it succeeds.",
    )

    class Meta(TrainingRun.Meta):
        constraints = [
            models.CheckConstraint(condition=models.Q(status__in=RunStatus.values), name="reward_run_status"),
        ]

    def __str__(self) -> str:
        return f"reward model run {self.pk} ({self.status})"


class PolicySweep(models.Model):
    """PPO runs queued together on one reward model, one per point of a grid of scalarization weights
    (services.policy_sweeps); the trade-off page draws their Pareto front."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="policy_sweeps")
    reward_run = models.ForeignKey(RewardModelRun, on_delete=models.PROTECT, related_name="policy_sweeps")
    name = models.CharField(max_length=200, blank=True)
    grid = models.JSONField(help_text="The grid as asked for: per-objective values, a simplex step, or weights.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"PPO sweep {self.pk}" + (f" ({self.name})" if self.name else "")


class PolicyRun(TrainingRun):
    """One PPO fine-tuning run against a finished reward-model run."""

    metric_field = "policy_run"
    artifacts_prefix = "policy_runs"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="policy_runs")
    reward_run = models.ForeignKey(RewardModelRun, on_delete=models.PROTECT, related_name="policy_runs")
    sweep = models.ForeignKey(PolicySweep, null=True, blank=True, on_delete=models.SET_NULL, related_name="runs")
    # Held-out prompts' mean reward per objective, {"helpful": {"raw": .., "normalized": ..}, ...},
    # for the reference policy (before) and the trained one (after).
    eval_before = models.JSONField(default=dict, blank=True)
    eval_after = models.JSONField(default=dict, blank=True)

    class Meta(TrainingRun.Meta):
        constraints = [
            models.CheckConstraint(condition=models.Q(status__in=RunStatus.values), name="policy_run_status"),
        ]

    def __str__(self) -> str:
        return f"PPO run {self.pk} ({self.status})"


class MetricPoint(models.Model):
    """One logged value of one run, e.g. (120, "eval/accuracy/harmless", 0.71)."""

    reward_run = models.ForeignKey(
        RewardModelRun, null=True, blank=True, on_delete=models.CASCADE, related_name="metric_points"
    )
    policy_run = models.ForeignKey(
        PolicyRun, null=True, blank=True, on_delete=models.CASCADE, related_name="metric_points"
    )
    step = models.PositiveIntegerField()
    key = models.CharField(max_length=100)
    value = models.FloatField()

    class Meta:
        ordering = ["step", "id"]
        indexes = [models.Index(fields=["reward_run", "step"]), models.Index(fields=["policy_run", "step"])]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(reward_run__isnull=False, policy_run__isnull=True)
                | models.Q(reward_run__isnull=True, policy_run__isnull=False),
                name="metric_point_one_run",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.key}@{self.step}={self.value:g}"


class PolicySample(models.Model):
    """A generation sampled during PPO, with each head's reward: the table on the run page."""

    policy_run = models.ForeignKey(PolicyRun, on_delete=models.CASCADE, related_name="samples")
    step = models.PositiveIntegerField()
    prompt = models.TextField()
    response = models.TextField()
    rewards = models.JSONField(help_text="Raw reward per objective.")
    normalized = models.JSONField(default=dict)
    combined = models.FloatField()

    class Meta:
        ordering = ["-step", "id"]

    def __str__(self) -> str:
        return f"sample of run {self.policy_run_id} at step {self.step}"
