"""Ranks a project's queue (services.queue_order) on a training worker: fills the ranks of an order, and in
``uncertain`` order scores the open comparisons with the queue's reward-model run, a batch at a time. It loads
torch, so only the Celery task imports it, in its body; web processes never do."""

import logging

from annotate_app.models import Comparison, QueueOrder, RunStatus
from annotate_app.services.queue_order import (
    queue_ranking_progress,
    queue_ranks_fill,
    queue_ranks_set,
    ranking_current,
)
from annotate_app.services.runs import run_dir

from .training.config import resolve_device
from .training.data import PreferencePair
from .training.evaluate import smallest_normalized_margins
from .training.model import RewardModel
from .training.trainer import MODEL_DIR

logger = logging.getLogger(__name__)

# Comparisons scored and stored per step: a step is a short transaction, and the ranking notices a
# newer one (the order changed again) between steps.
SCORE_BATCH = 256


def run_queue_ranking(project_id: int, ranking_id: str, from_id: int) -> int:
    """Rank the project's queue for its ranking ``ranking_id``: every comparison when ``from_id`` is 0, else
    (new comparisons of an import) the open ones from ``from_id``; returns how many were scored. Stops, leaving
    the rest to the newer ranking, as soon as the project's order changed again."""
    project = ranking_current(project_id, ranking_id)
    if project is None:
        return 0
    filled = queue_ranks_fill(project=project) if from_id == 0 else 0
    run = project.queue_reward_run
    if project.queue_order != QueueOrder.UNCERTAIN or run is None or run.status != RunStatus.SUCCEEDED:
        queue_ranking_progress(project=project, ranking_id=ranking_id, ranked=filled, finished=True)
        return 0
    model = RewardModel.from_pretrained(run_dir(run) / MODEL_DIR,
                                        device=resolve_device(run.config.get("device", "auto")))
    scored, after = 0, from_id - 1
    while ranking_current(project_id, ranking_id) is not None:
        batch = list(Comparison.objects.filter(project=project, id__gt=after, is_full=False, is_gold=False)
                     .order_by("id").only("id", "prompt", "response_a", "response_b")[:SCORE_BATCH])
        if not batch:
            queue_ranking_progress(project=project, ranking_id=ranking_id, ranked=scored, finished=True)
            break
        pairs = [PreferencePair(str(row.pk), row.prompt, row.response_a, row.response_b, {}) for row in batch]
        margins = smallest_normalized_margins(model, pairs, batch_size=run.config.get("batch_size", 32))
        queue_ranks_set(project=project, ranks={row.pk: margin for row, margin in zip(batch, margins, strict=True)})
        scored, after = scored + len(batch), batch[-1].pk
        queue_ranking_progress(project=project, ranking_id=ranking_id, ranked=scored, finished=False)
    logger.info("project %s queue ranking %s: %s comparisons scored", project_id, ranking_id, scored)
    return scored
