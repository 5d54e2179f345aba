"""Celery entry points. Thin: load by id, call a service, record the outcome."""

import logging
import platform

from celery import shared_task

logger = logging.getLogger(__name__)


@shared_task(name="rm_worker.health_check", time_limit=30, max_retries=0)
def health_check() -> dict:
    """Prove a worker is consuming: return which host and Python answered."""
    logger.info("health check on %s", platform.node())
    return {"status": "ok", "host": platform.node(), "python": platform.python_version()}
