"""Rounds of the loop: a new snapshot, a reward model trained on it, then optionally PPO and a generation."""

from django.db import models

from .generations import Generation
from .project import Project
from .runs import PolicyRun, RewardModelRun
from .snapshot import Snapshot


class RoundTrigger(models.TextChoices):
    AUTO = "auto", "Automatic (retrain_every new labels)"
    MANUAL = "manual", "Started by hand"


class Round(models.Model):
    """One turn of the loop, numbered per project: snapshot → reward run → PPO run → generated batch.

    Rows are written by ``services.rounds``; a step not taken (no PPO config, a config that no
    longer validates, the run quota) leaves its column empty and says why in ``note``.
    """

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="rounds")
    number = models.PositiveIntegerField()
    trigger = models.CharField(max_length=16, choices=RoundTrigger.choices)
    snapshot = models.ForeignKey(Snapshot, on_delete=models.PROTECT, related_name="+")
    reward_run = models.OneToOneField(RewardModelRun, on_delete=models.PROTECT, related_name="round")
    policy_run = models.OneToOneField(
        PolicyRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="round"
    )
    generation = models.OneToOneField(
        Generation, null=True, blank=True, on_delete=models.SET_NULL, related_name="round"
    )
    # Pairwise accuracy per objective of the reward run on the project's fixed evaluation set (the pairs
    # round 1's reward run held out), so rounds compare on the same pairs; {} until the worker measured it.
    eval_accuracy = models.JSONField(default=dict, blank=True)
    eval_pairs = models.PositiveIntegerField(default=0, help_text="Pairs of the fixed evaluation set.")
    note = models.TextField(blank=True, help_text="Why a step of the round was not taken.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["project", "number"]
        constraints = [
            models.UniqueConstraint(fields=["project", "number"], name="round_number_unique_per_project"),
            models.CheckConstraint(condition=models.Q(trigger__in=RoundTrigger.values), name="round_trigger_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.project.slug} round {self.number}"
