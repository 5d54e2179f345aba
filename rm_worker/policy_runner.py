"""Runs a PPO run: the bridge between the database and ``rm_worker.training.ppo``.

Collects the project's prompts and trains with callbacks that write metric points in
batches, store sample generations and check for cancellation between steps
(``runtime.run_execute`` claims the run and records the outcome, including the
before/after evaluation). Loads torch: never imported by web processes.
"""

from annotate_app.models import PolicyRun, RunStatus
from annotate_app.services.policy_runs import policy_prompts, policy_samples_save
from annotate_app.services.run_settings import training_values
from annotate_app.services.runs import run_dir

from .runtime import run_execute, run_resumes
from .training.ppo import CHECKPOINT_DIR, CHECKPOINT_FILE, train_ppo
from .training.ppo_config import PPOConfig
from .training.run_io import Callbacks


def run_policy_training(run_id: int, *, policy_factory=None, reward_fn=None) -> str:
    """Train the queued PPO run ``run_id``; returns its final status ("skipped" if it was not queued).

    ``policy_factory`` and ``reward_fn`` replace the configured policy and reward model (tests).
    """

    def train(run, writer, should_stop):
        callbacks = Callbacks(
            on_metrics=writer.log,
            on_progress=writer.progress,
            on_samples=lambda step, rows: policy_samples_save(run, step, rows),
            should_stop=should_stop,
            on_resume=lambda step: _resumed(run, writer, step),
            on_stage=writer.stage,
        )
        result = train_ppo(PPOConfig.from_dict(training_values(run)), policy_prompts(run.project), run_dir(run),
                           callbacks=callbacks, policy_factory=policy_factory, reward_fn=reward_fn,
                           resume=run_resumes(run, run_dir(run) / CHECKPOINT_DIR / CHECKPOINT_FILE))
        final = {**result.metrics, "seconds": round(result.seconds, 2), "seconds_per_step": result.seconds_per_step}
        status = RunStatus.CANCELLED if result.cancelled else RunStatus.SUCCEEDED
        return status, {"final_metrics": final, "eval_before": result.eval_before, "eval_after": result.eval_after}

    return run_execute(PolicyRun, run_id, train)


def _resumed(run: PolicyRun, writer, step: int) -> None:
    # The samples of steps after the checkpoint are drawn again, like the metric points.
    writer.resumed(step)
    run.samples.filter(step__gt=step).delete()
