"""Reward-model runs: create, claim, record progress and metrics, finish, cancel.

These functions never import torch: the web process only queues work. The training
itself runs in ``rm_worker.reward_runner`` on a worker of the ``training`` queue.
"""

import json
import time
from pathlib import Path

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from rm_worker.training.config import RewardModelConfig

from ..models import MetricPoint, Project, RewardModelRun, RunStatus, Snapshot, SnapshotFormat, SnapshotStatus
from .snapshots import snapshot_create


def parse_overrides(pairs: list[str]) -> dict:
    """``["learning_rate=1e-4", "loss_weights={\\"harmless\\": 2}"]`` → a dict; values read as JSON when they parse."""
    overrides = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            raise ValidationError({"set": f"Expected key=value, got {pair!r}."})
        try:
            overrides[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            overrides[key.strip()] = raw
    return overrides


def reward_config_for(project: Project, overrides: dict) -> RewardModelConfig:
    """The run's config: the project's objectives and defaults, then the overrides, validated."""
    unknown = sorted(set(overrides) - set(RewardModelConfig.__dataclass_fields__))
    if unknown:
        raise ValidationError({"config": f"Unknown setting: {', '.join(unknown)}."})
    project_objectives = list(project.objectives.values_list("key", flat=True))
    try:
        config = RewardModelConfig.from_dict({"objectives": project_objectives, **overrides})
        config.validate()
    except (TypeError, ValueError) as error:
        raise ValidationError({"config": str(error)}) from error
    foreign = sorted(set(config.objectives) - set(project_objectives))
    if foreign:
        raise ValidationError({"config": f"Unknown objective: {', '.join(foreign)}."})
    return config


@transaction.atomic
def reward_run_create(
    *,
    project: Project,
    snapshot: Snapshot | None = None,
    overrides: dict | None = None,
    user: AbstractBaseUser | None = None,
    enqueue: bool = True,
) -> RewardModelRun:
    """Queue a reward-model run on a ready jsonl snapshot, or on a new one of the latest labels.

    The Celery task is sent after commit, to the ``training`` queue.
    """
    config = reward_config_for(project, overrides or {})
    if snapshot is None:
        snapshot = snapshot_create(project=project, format=SnapshotFormat.JSONL, user=user, background=False)
    if snapshot.project_id != project.pk:
        raise ValidationError({"snapshot": "That snapshot belongs to another project."})
    if snapshot.format != SnapshotFormat.JSONL or snapshot.status != SnapshotStatus.READY:
        raise ValidationError({"snapshot": "Training needs a ready jsonl snapshot."})
    run = RewardModelRun.objects.create(project=project, snapshot=snapshot, config=config.to_dict(), created_by=user)
    if enqueue:
        from rm_worker.tasks import train_reward_model

        transaction.on_commit(lambda: train_reward_model.delay(run.pk))
    return run


def reward_run_claim(run_id: int) -> RewardModelRun | None:
    """Move a queued run to running and return it; None if it is not queued (idempotent start)."""
    with transaction.atomic():
        run = RewardModelRun.objects.select_for_update().select_related("snapshot", "project").get(pk=run_id)
        if run.status != RunStatus.QUEUED:
            return None
        run.status = RunStatus.RUNNING
        run.started_at = timezone.now()
        run.artifacts_dir = str(Path("reward_runs") / str(run.pk))
        run.save(update_fields=["status", "started_at", "artifacts_dir"])
    return run


def reward_run_dir(run: RewardModelRun) -> Path:
    """Where the run's checkpoints and trained model lie."""
    return Path(settings.MORM_ARTIFACTS_DIR) / (run.artifacts_dir or Path("reward_runs") / str(run.pk))


def reward_run_finish(run: RewardModelRun, *, status: str, final_metrics: dict | None = None,
                      data_report: dict | None = None, error: str = "") -> None:
    """Record how the run ended."""
    RewardModelRun.objects.filter(pk=run.pk).update(
        status=status,
        final_metrics=final_metrics or {},
        data_report=data_report or {},
        error=error,
        finished_at=timezone.now(),
    )


def reward_run_cancel(*, run: RewardModelRun) -> RewardModelRun:
    """Ask a run to stop. A queued run is cancelled at once; a running one stops between steps."""
    with transaction.atomic():
        run = RewardModelRun.objects.select_for_update().get(pk=run.pk)
        if run.is_finished:
            return run
        run.cancel_requested = True
        if run.status == RunStatus.QUEUED:
            run.status = RunStatus.CANCELLED
            run.finished_at = timezone.now()
        run.save(update_fields=["cancel_requested", "status", "finished_at"])
    return run


def reward_run_cancel_requested(run_id: int) -> bool:
    return RewardModelRun.objects.filter(pk=run_id, cancel_requested=True).exists()


class MetricsWriter:
    """The one metrics writer: buffers metric points and writes them in batches.

    Flushes when ``batch_size`` points are waiting or ``interval`` seconds have passed,
    so a dashboard sees curves grow while training runs without a query per point.
    """

    def __init__(self, run: RewardModelRun, *, batch_size: int = 200, interval: float = 2.0):
        self.run = run
        self.batch_size = batch_size
        self.interval = interval
        self.pending: list[MetricPoint] = []
        self.last_flush = time.monotonic()
        self.step = 0
        self.total_steps = 0

    def log(self, step: int, metrics: dict[str, float]) -> None:
        self.pending.extend(
            MetricPoint(reward_run=self.run, step=step, key=key, value=float(value)) for key, value in metrics.items()
        )
        self.step = max(self.step, step)
        self._maybe_flush()

    def progress(self, step: int, total_steps: int) -> None:
        self.step, self.total_steps = step, total_steps
        self._maybe_flush()

    def _maybe_flush(self) -> None:
        if len(self.pending) >= self.batch_size or time.monotonic() - self.last_flush >= self.interval:
            self.flush()

    def flush(self) -> None:
        MetricPoint.objects.bulk_create(self.pending)
        self.pending = []
        RewardModelRun.objects.filter(pk=self.run.pk).update(step=self.step, total_steps=self.total_steps)
        self.last_flush = time.monotonic()
