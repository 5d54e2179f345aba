"""Celery entry points. Thin: load by id, call a service, record the outcome."""

import logging
import platform

from celery import shared_task

from annotate_app.services.snapshots import snapshot_build

logger = logging.getLogger(__name__)


@shared_task(name="rm_worker.health_check", time_limit=30, max_retries=0)
def health_check() -> dict:
    """Prove a worker is consuming: return which host and Python answered."""
    logger.info("health check on %s", platform.node())
    return {"status": "ok", "host": platform.node(), "python": platform.python_version()}


@shared_task(name="rm_worker.build_snapshot", acks_late=True, time_limit=6 * 3600, max_retries=0)
def build_snapshot(snapshot_id: int) -> str:
    """Write a queued snapshot (idempotent: a snapshot already claimed is left alone)."""
    snapshot = snapshot_build(snapshot_id=snapshot_id)
    return snapshot.status
