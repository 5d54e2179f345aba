"""Runs a reward-model training run: the bridge between the database and the trainer.

Claims the run (idempotent), reads its snapshot, trains with callbacks that write metric
points in batches and check for cancellation between steps, then records the outcome.
Imported by the Celery task and by ``train_rm --wait``; it loads torch, so web processes
never import it.
"""

import logging
import time

from annotate_app.models import RewardModelRun, RunStatus
from annotate_app.services.runs import MetricsWriter, run_cancel_requested, run_claim, run_dir, run_finish
from annotate_app.services.snapshots import snapshot_path

from .training import RewardModelConfig, TrainCallbacks, load_pairs, train_reward_model

logger = logging.getLogger(__name__)

# How often (seconds) the loop asks the database whether the run was cancelled.
CANCEL_POLL_SECONDS = 1.0


def run_reward_training(run_id: int, *, backbone_factory=None) -> str:
    """Train the queued run ``run_id``; returns its final status (or the current one if not queued).

    ``backbone_factory`` replaces loading the configured backbone (tests use tiny models).
    """
    run = run_claim(RewardModelRun, run_id)
    if run is None:
        logger.info("reward run %s is not queued; nothing to do", run_id)
        return "skipped"
    writer = MetricsWriter(run)
    last_poll = [0.0]

    def should_stop() -> bool:
        if time.monotonic() - last_poll[0] < CANCEL_POLL_SECONDS:
            return False
        last_poll[0] = time.monotonic()
        return run_cancel_requested(run)

    config = RewardModelConfig.from_dict(run.config)
    try:
        pairs = load_pairs(snapshot_path(run.snapshot), config.objectives)
        result = train_reward_model(
            config,
            pairs,
            run_dir(run),
            callbacks=TrainCallbacks(on_metrics=writer.log, on_progress=writer.progress, should_stop=should_stop),
            backbone_factory=backbone_factory,
        )
    except Exception as error:
        # Whatever stopped training is shown on the run page, then re-raised for the
        # worker's log: a failure is never swallowed.
        writer.flush()
        run_finish(run, status=RunStatus.FAILED, error=f"{type(error).__name__}: {error}")
        raise
    writer.flush()
    status = RunStatus.CANCELLED if result.cancelled else RunStatus.SUCCEEDED
    final = {**result.metrics, "seconds": round(result.seconds, 2), "best_step": result.best_step,
             "embeddings_computed": result.embeddings_computed, "embeddings_reused": result.embeddings_reused}
    run_finish(run, status=status, final_metrics=final, data_report=result.data_report.as_dict())
    logger.info("reward run %s %s after %s steps", run.pk, status, result.steps)
    return status
