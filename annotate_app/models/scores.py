"""A reward-model run's scores of single comparisons, computed on request from the comparison browser."""

from django.db import models

from .comparison import Comparison
from .runs import RewardModelRun


class ComparisonScore(models.Model):
    """Each head's raw reward for both responses of one comparison under one succeeded reward-model run.

    Written by the worker (``rm_worker.score_comparisons``); the page derives σ(r_A − r_B) from it.
    """

    reward_run = models.ForeignKey(RewardModelRun, on_delete=models.CASCADE, related_name="comparison_scores")
    comparison = models.ForeignKey(Comparison, on_delete=models.CASCADE, related_name="scores")
    rewards = models.JSONField(
        help_text='Raw reward per objective and side, canonical orientation (A as imported): '
                  '{"helpful": {"a": 0.4, "b": -1.2}}.',
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["reward_run", "comparison"], name="comparison_score_once"),
        ]

    def __str__(self) -> str:
        return f"scores of {self.comparison_id} by reward model run {self.reward_run_id}"
