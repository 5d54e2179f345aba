"""Generations: new comparisons sampled from a policy, run on the ``training`` queue like a training run."""

from django.db import models

from .comparison import ImportBatch
from .runs import PolicyRun, RewardModelRun, RunStatus, TrainingRun


class Generation(TrainingRun):
    """Responses sampled from a PPO run's policy (or the base policy) and paired by a rule
    (``rm_worker.training.generation``); the pairs are imported like any file, into ``import_batch``.

    A training run in all but training: status, progress in prompts (``step`` of ``total_steps``), stage,
    heartbeat, crash recovery (it starts again from the first prompt) and cancel come with it.
    """

    # Generations log no metric points; the name keys them in recovery's counts.
    metric_field = "generation"
    artifacts_prefix = "generations"

    project = models.ForeignKey("annotate_app.Project", on_delete=models.CASCADE, related_name="generations")
    policy_run = models.ForeignKey(
        PolicyRun, null=True, blank=True, on_delete=models.PROTECT, related_name="generations",
        help_text="The succeeded PPO run whose adapters sample; empty: the base policy.",
    )
    reward_run = models.ForeignKey(
        RewardModelRun, null=True, blank=True, on_delete=models.PROTECT, related_name="generations",
        help_text="The succeeded reward-model run that scores the samples (max_min, uncertain).",
    )
    prompts = models.JSONField(
        null=True, blank=True, help_text="The uploaded prompts (text or chat turns); empty: the project's prompts."
    )
    created_count = models.PositiveIntegerField(default=0, help_text="New comparisons imported.")
    skipped_count = models.PositiveIntegerField(
        default=0, help_text="Pairs already in the project (same content), not imported again."
    )
    import_batch = models.ForeignKey(
        ImportBatch, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        help_text="The import that stored the new comparisons.",
    )

    class Meta(TrainingRun.Meta):
        constraints = [
            models.CheckConstraint(condition=models.Q(status__in=RunStatus.values), name="generation_status"),
        ]

    def __str__(self) -> str:
        return f"generation {self.pk} ({self.status})"
