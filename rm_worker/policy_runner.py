"""Runs a PPO run: the bridge between the database and ``rm_worker.training.ppo``.

Claims the run (idempotent), collects the project's prompts, trains with callbacks that
write metric points in batches, store sample generations and check for cancellation
between steps, then records the before/after evaluation. Loads torch: never imported by
web processes.
"""

import logging
import time

from annotate_app.models import PolicyRun, RunStatus
from annotate_app.services.policy_runs import policy_prompts, policy_samples_save
from annotate_app.services.runs import MetricsWriter, run_cancel_requested, run_claim, run_dir, run_finish

from .training.ppo import PPOCallbacks, train_ppo
from .training.ppo_config import PPOConfig

logger = logging.getLogger(__name__)

# How often (seconds) the loop asks the database whether the run was cancelled.
CANCEL_POLL_SECONDS = 1.0


def run_policy_training(run_id: int, *, policy_factory=None, reward_fn=None) -> str:
    """Train the queued PPO run ``run_id``; returns its final status ("skipped" if it was not queued).

    ``policy_factory`` and ``reward_fn`` replace the configured policy and reward model (tests).
    """
    run = run_claim(PolicyRun, run_id)
    if run is None:
        logger.info("PPO run %s is not queued; nothing to do", run_id)
        return "skipped"
    writer = MetricsWriter(run)
    last_poll = [0.0]

    def should_stop() -> bool:
        if time.monotonic() - last_poll[0] < CANCEL_POLL_SECONDS:
            return False
        last_poll[0] = time.monotonic()
        return run_cancel_requested(run)

    callbacks = PPOCallbacks(
        on_metrics=writer.log,
        on_progress=writer.progress,
        on_samples=lambda step, rows: policy_samples_save(run, step, rows),
        should_stop=should_stop,
    )
    try:
        result = train_ppo(PPOConfig.from_dict(run.config), policy_prompts(run.project), run_dir(run),
                           callbacks=callbacks, policy_factory=policy_factory, reward_fn=reward_fn)
    except Exception as error:
        # Shown on the run page, then re-raised for the worker's log: never swallowed.
        writer.flush()
        run_finish(run, status=RunStatus.FAILED, error=f"{type(error).__name__}: {error}")
        raise
    writer.flush()
    status = RunStatus.CANCELLED if result.cancelled else RunStatus.SUCCEEDED
    final = {**result.metrics, "seconds": round(result.seconds, 2), "seconds_per_step": result.seconds_per_step}
    run_finish(run, status=status, final_metrics=final, eval_before=result.eval_before, eval_after=result.eval_after)
    logger.info("PPO run %s %s after %s steps", run.pk, status, result.steps)
    return status
