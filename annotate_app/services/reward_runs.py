"""Creating reward-model runs (cancel and checks: ``services.runs``; on the worker: ``rm_worker/runtime.py``)."""

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction

from rm_worker.training.config import RewardModelConfig

from ..models import Project, RewardModelRun, Snapshot, SnapshotFormat, SnapshotStatus
from .dispatch import run_enqueue
from .runs import config_from, require_succeeded_reward_run, run_dir, run_quota_check
from .snapshots import snapshot_create


def reward_config_for(project: Project, overrides: dict, derived: dict | None = None) -> RewardModelConfig:
    """The run's config: the project's objectives and defaults, the overrides, then ``derived``, validated."""
    objectives = list(project.objectives.values_list("key", flat=True))
    return config_from(RewardModelConfig, overrides, defaults={"objectives": objectives}, derived=derived,
                       project_objectives=objectives)


@transaction.atomic
def reward_run_create(
    *,
    project: Project,
    snapshot: Snapshot | None = None,
    overrides: dict | None = None,
    user: AbstractBaseUser | None = None,
    init_heads_run: RewardModelRun | None = None,
    enqueue: bool = True,
) -> RewardModelRun:
    """Queue a reward-model run on a ready jsonl snapshot, or on a new one of the latest labels.

    ``init_heads_run``: a succeeded run of this project whose exported heads start the new run's
    (``init_heads_from``; e.g. a ``frozen`` run before fine-tuning in ``multi_head`` mode).
    The Celery task is sent after commit, to the ``training`` queue; a new snapshot of the latest
    labels is built by that task.
    """
    run_quota_check(project)
    derived = {}
    if init_heads_run is not None:
        require_succeeded_reward_run(project, init_heads_run, "init_heads_run", "heads come from a succeeded one.")
        derived["init_heads_from"] = str(run_dir(init_heads_run) / "model")
    config = reward_config_for(project, overrides or {}, derived)
    if snapshot is None:
        # Built by the run's task on the worker: an export's cost stays out of this request.
        snapshot = snapshot_create(project=project, format=SnapshotFormat.JSONL, user=user, background=True,
                                   enqueue=False)
    elif snapshot.project_id != project.pk:
        raise ValidationError({"snapshot": "That snapshot belongs to another project."})
    elif snapshot.format != SnapshotFormat.JSONL or snapshot.status != SnapshotStatus.READY:
        raise ValidationError({"snapshot": "Training needs a ready jsonl snapshot."})
    # Steps the config fixes are shown from the start; the others once the worker has read the pairs.
    run = RewardModelRun.objects.create(project=project, snapshot=snapshot, config=config.to_dict(), created_by=user,
                                        init_heads_run=init_heads_run, total_steps=config.steps_without_data() or 0)
    if enqueue:
        run_enqueue(run)
    return run
