"""Celery tasks, the worker's entry points (the annotation ``Task`` model is in
``annotate_app/models/annotation_task.py``). Thin: load by id, call a service, record the outcome.

The web side sends them by name (``annotate_app/services/dispatch.py``), never importing this module.
"""

import logging
import platform

from celery import shared_task
from django.conf import settings
from django.db import OperationalError

from annotate_app.services.recovery import work_recover
from annotate_app.services.rounds import round_start_if_due
from annotate_app.services.snapshots import snapshot_build
from annotate_app.services.webhooks import DELIVERY_TIME_LIMIT_SECONDS, webhook_deliver

logger = logging.getLogger(__name__)

# The training tasks and generations (routed to the ``training`` queue in settings).
TRAINING_TASK_OPTIONS = {
    # Safe: a run is claimed under a row lock, so a redelivered task does nothing.
    "acks_late": True,
    "time_limit": settings.MORM_TRAINING_TIME_LIMIT,
    "soft_time_limit": settings.MORM_TRAINING_TIME_LIMIT - 60,
    # Only for a database that was unreachable before the run was claimed.
    "autoretry_for": (OperationalError,),
    "max_retries": 3,
    "retry_backoff": True,
}


@shared_task(name="rm_worker.health_check", time_limit=30, max_retries=0)
def health_check() -> dict:
    """Prove a worker is consuming: return which host and Python answered."""
    logger.info("health check on %s", platform.node())
    return {"status": "ok", "host": platform.node(), "python": platform.python_version()}


@shared_task(name="rm_worker.recover_stale_work", time_limit=120, max_retries=0, ignore_result=True)
def recover_stale_work() -> dict:
    """Resume or end the runs and exports whose worker died (Celery beat, every MORM_RECOVER_EVERY_SECONDS)."""
    return work_recover()


@shared_task(name="rm_worker.build_snapshot", acks_late=True, time_limit=6 * 3600, max_retries=0)
def build_snapshot(snapshot_id: int) -> str:
    """Write a queued snapshot (idempotent: a snapshot already claimed is left alone)."""
    snapshot = snapshot_build(snapshot_id=snapshot_id)
    return snapshot.status


# One attempt per task, taken with a conditional update (a redelivered task sends nothing); the service
# queues the next attempt itself, with its backoff, so Celery's own retries are not used.
@shared_task(
    name="rm_worker.deliver_webhook", time_limit=DELIVERY_TIME_LIMIT_SECONDS, max_retries=0, ignore_result=True
)
def deliver_webhook(delivery_id: int) -> str:
    """Send one attempt of a webhook message and log it; default queue."""
    delivery = webhook_deliver(delivery_id=delivery_id)
    return delivery.status if delivery else "skipped"


@shared_task(name="rm_worker.train_reward_model", **TRAINING_TASK_OPTIONS)
def train_reward_model(run_id: int) -> str:
    """Train a queued reward-model run; routed to the ``training`` queue."""
    # Imported here so torch loads only in the worker that trains, not in the web
    # processes that import this module to queue the task.
    from rm_worker.reward_runner import run_reward_training

    return run_reward_training(run_id)


@shared_task(name="rm_worker.run_ppo", **TRAINING_TASK_OPTIONS)
def run_ppo(run_id: int) -> str:
    """PPO fine-tuning of a queued policy run; routed to the ``training`` queue."""
    # Imported here so torch loads only in the worker that trains (see train_reward_model).
    from rm_worker.policy_runner import run_policy_training

    return run_policy_training(run_id)


@shared_task(name="rm_worker.generate_pairs", **TRAINING_TASK_OPTIONS)
def generate_pairs(generation_id: int) -> str:
    """Sample and pair new comparisons from a policy (a queued generation); routed to the ``training`` queue."""
    # Imported here so torch loads only in the worker that generates (see train_reward_model).
    from rm_worker.generation_runner import run_generation

    return run_generation(generation_id)


# Idempotent (comparisons already scored are skipped), so a redelivered task is safe: acks_late.
@shared_task(name="rm_worker.score_comparisons", acks_late=True, time_limit=1800, max_retries=0)
def score_comparisons(run_id: int, comparison_ids: list[int]) -> int:
    """Store each head's rewards of the comparisons by the run's model; routed to the ``training`` queue."""
    # Imported here so torch loads only in the worker that scores (see train_reward_model).
    from rm_worker.comparison_scoring import run_comparison_scoring

    return run_comparison_scoring(run_id, comparison_ids)


@shared_task(name="rm_worker.start_round_if_due", time_limit=300, max_retries=0, ignore_result=True)
def start_round_if_due(project_id: int) -> int | None:
    """Start the project's next automatic round if it is still due (sent after a submit crossed retrain_every);
    returns the round's number, None when none started. Idempotent: it decides under the project row lock."""
    started = round_start_if_due(project_id=project_id)
    return started.number if started else None


# Idempotent (a re-measure stores the same figures), so a redelivered task is safe: acks_late.
@shared_task(name="rm_worker.evaluate_round", acks_late=True, time_limit=1800, max_retries=0)
def evaluate_round(round_id: int) -> dict:
    """Measure the round's reward model on the project's fixed evaluation set; routed to the ``training`` queue."""
    # Imported here so torch loads only in the worker that evaluates (see train_reward_model).
    from rm_worker.round_evaluation import run_round_evaluation

    return run_round_evaluation(round_id)


# Idempotent (it writes ranks, and stops once a newer ranking of the project started), so acks_late is safe.
@shared_task(name="rm_worker.rank_queue", acks_late=True, time_limit=6 * 3600, max_retries=0)
def rank_queue(project_id: int, ranking_id: str, from_id: int) -> int:
    """Put the project's queue in its order (services.queue_order); routed to the ``training`` queue."""
    # Imported here so torch loads only in the worker that ranks (see train_reward_model).
    from rm_worker.queue_ranking import run_queue_ranking

    return run_queue_ranking(project_id, ranking_id, from_id)
