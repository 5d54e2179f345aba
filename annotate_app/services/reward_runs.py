"""Creating reward-model runs (the rest of a run's life is in ``services.runs``)."""

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction

from rm_worker.training.config import RewardModelConfig

from ..models import Project, RewardModelRun, Snapshot, SnapshotFormat, SnapshotStatus
from .runs import config_from
from .snapshots import snapshot_create


def reward_config_for(project: Project, overrides: dict) -> RewardModelConfig:
    """The run's config: the project's objectives and defaults, then the overrides, validated."""
    objectives = list(project.objectives.values_list("key", flat=True))
    return config_from(RewardModelConfig, {"objectives": objectives, **overrides}, project_objectives=objectives)


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
