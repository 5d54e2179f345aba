"""Runs a reward-model training run: the bridge between the database and the trainer.

Reads the run's snapshot and trains with callbacks that write metric points in batches
and check for cancellation between steps (``runtime.run_execute`` claims the run
and records the outcome). Imported by the Celery task and by ``train_rm --wait``; it
loads torch, so web processes never import it.
"""

from annotate_app.models import RewardModelRun, RunStatus, Snapshot, SnapshotStatus
from annotate_app.services.run_settings import training_values
from annotate_app.services.runs import run_dir
from annotate_app.services.snapshots import snapshot_build, snapshot_path

from .runtime import run_execute, run_resumes
from .training import Callbacks, RewardModelConfig, load_pairs, train_reward_model
from .training.checkpoint import CHECKPOINT_FILE
from .training.config import resolve_device
from .training.evaluate import held_out_pairs, report_reward_model
from .training.trainer import CHECKPOINT_DIR


def run_reward_training(run_id: int, *, backbone_factory=None) -> str:
    """Train the queued run ``run_id``; returns its final status ("skipped" if it was not queued).

    ``backbone_factory`` replaces loading the configured backbone (tests use tiny models).
    """

    def train(run, writer, should_stop):
        config = RewardModelConfig.from_dict(training_values(run))
        writer.stage("reading the snapshot")
        pairs = load_pairs(snapshot_path(_snapshot_built(run.snapshot_id)), config.objectives)
        result = train_reward_model(
            config,
            pairs,
            run_dir(run),
            callbacks=Callbacks(on_metrics=writer.log, on_progress=writer.progress, should_stop=should_stop,
                                on_resume=writer.resumed, on_stage=writer.stage),
            backbone_factory=backbone_factory,
            resume=run_resumes(run, run_dir(run) / CHECKPOINT_DIR / CHECKPOINT_FILE),
        )
        final = {**result.metrics, "seconds": round(result.seconds, 2), "best_step": result.best_step,
                 "embeddings_computed": result.embeddings_computed, "embeddings_reused": result.embeddings_reused}
        fields = {"final_metrics": final, "data_report": result.data_report.as_dict()}
        if result.cancelled:
            return RunStatus.CANCELLED, fields
        writer.stage("writing the report")
        return RunStatus.SUCCEEDED, {**fields, "report": _held_out_report(config, pairs, result.model_dir)}

    return run_execute(RewardModelRun, run_id, train)


def _held_out_report(config: RewardModelConfig, pairs, model_dir) -> dict:
    """The report of the exported model on the run's held-out pairs; empty when nothing was held out."""
    held_out = held_out_pairs(config, pairs)
    if not held_out:
        return {}
    return report_reward_model(model_dir, held_out, device=resolve_device(config.device), batch_size=config.batch_size,
                               cache_dir=config.cache_dir)


def _snapshot_built(snapshot_id: int) -> Snapshot:
    """The run's snapshot, built here first when it is still queued (a run on the latest labels
    builds its snapshot on the worker, not in the request that queued it)."""
    snapshot = snapshot_build(snapshot_id=snapshot_id)
    if snapshot.status != SnapshotStatus.READY:
        raise ValueError(f"Snapshot {snapshot.pk} is {snapshot.status}, not ready. {snapshot.error}".strip())
    return snapshot
