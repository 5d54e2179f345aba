"""Scores single comparisons with a succeeded reward-model run's saved model (asked for from the comparison
browser). It loads torch, so only the Celery task imports it, in its body; web processes never do."""

import logging

from annotate_app.models import Comparison, RewardModelRun, RunStatus
from annotate_app.services.comparison_scores import comparison_scores_record
from annotate_app.services.runs import run_dir

from .training.config import resolve_device
from .training.data import PreferencePair
from .training.evaluate import score_pairs
from .training.trainer import MODEL_DIR

logger = logging.getLogger(__name__)


def run_comparison_scoring(run_id: int, comparison_ids: list[int]) -> int:
    """Score the comparisons among ``comparison_ids`` that belong to the run's project and that the succeeded
    run ``run_id`` has not scored yet, and store each head's rewards; returns how many were stored."""
    run = RewardModelRun.objects.filter(pk=run_id, status=RunStatus.SUCCEEDED).first()
    if run is None:
        logger.warning("reward model run %s is gone or not succeeded: nothing scored", run_id)
        return 0
    comparisons = list(Comparison.objects.filter(project_id=run.project_id, pk__in=comparison_ids)
                       .exclude(scores__reward_run=run).order_by("id"))
    if not comparisons:
        return 0
    # Scores only: the pairs' labels are not read.
    pairs = [PreferencePair(str(row.pk), row.prompt, row.response_a, row.response_b, {}) for row in comparisons]
    rewards = score_pairs(run_dir(run) / MODEL_DIR, pairs, device=resolve_device(run.config.get("device", "auto")),
                          batch_size=run.config.get("batch_size", 32))
    stored = comparison_scores_record(run=run, rewards={row.pk: by_head for row, by_head in zip(comparisons, rewards,
                                                                                                strict=True)})
    logger.info("reward model run %s scored %s comparisons", run_id, stored)
    return stored
