"""Training runs on the web side: config checks, the quota, cancel, where outputs lie.

Shared by reward-model and PPO runs. Nothing here imports torch or worker code: the web
process only queues work (``services.dispatch``); a run's life on the worker (claim,
heartbeat, metrics, cancel polling, outcome) is ``rm_worker/runtime.py``.
"""

from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from rm_worker.training.schema import ConfigError, TrainingConfig, value_from_text

from ..models import Generation, PolicyRun, Project, RewardModelRun, RunStatus, TrainingRun
from .dispatch import round_check_enqueue
from .recovery import is_stale, lost_message
from .run_settings import run_settings_checked
from .webhooks import run_finished_emit


def parse_overrides(config_class: type[TrainingConfig], pairs: list[str]) -> dict:
    """``["learning_rate=1e-4", 'loss_weights={"harmless": 2}']`` → a dict, each value read as its field of
    ``config_class`` takes it (``value_from_text``: text fields as written, others as JSON)."""
    overrides = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            raise ValidationError({"set": f"Expected key=value, got {pair!r}."})
        overrides[key.strip()] = value_from_text(config_class, key.strip(), raw)
    return overrides


def config_from(config_class, overrides: dict, *, defaults: dict, derived: dict | None = None,
                project_objectives: list[str]):
    """Build and validate a training config: the project's ``defaults``, the user's ``overrides``, then
    what the server ``derived`` (the folders of runs the user gave by id), which no override can set.

    Raises ValidationError naming unknown settings, invalid values, foreign objectives, or a setting
    that is the server's or names no model under the operator's roots (``run_settings``).
    """
    unknown = sorted(set(overrides) - set(config_class.model_fields))
    if unknown:
        raise ValidationError({"config": f"Unknown setting: {', '.join(unknown)}."})
    values = {**defaults, **run_settings_checked(config_class, overrides), **(derived or {})}
    try:
        config = config_class.from_dict(values)
    except ConfigError as error:
        raise ValidationError({field or "config": messages for field, messages in error.problems.items()}) from error
    # A generation's config names no objectives: its reward run's heads are what they are.
    foreign = sorted(set(getattr(config, "objectives", ())) - set(project_objectives))
    if foreign:
        raise ValidationError({"config": f"Unknown objective: {', '.join(foreign)}."})
    return config


class RunQuotaExceeded(ValidationError):
    """The project already has ``MORM_MAX_ACTIVE_RUNS_PER_PROJECT`` runs queued or running (REST: 429)."""


def run_quota_check(project: Project, runs: int = 1) -> None:
    """Raise RunQuotaExceeded unless the project may queue ``runs`` more runs (reward-model and PPO count
    together); a sweep asks for all its runs at once, so it is queued whole or not at all.

    Call it inside the transaction that creates the runs: the project row stays locked until
    that transaction ends, so two concurrent creates cannot both see a free slot.
    """
    Project.objects.select_for_update().values_list("pk", flat=True).get(pk=project.pk)
    limit = settings.MORM_MAX_ACTIVE_RUNS_PER_PROJECT
    active = sum(
        model.objects.filter(project=project, status__in=(RunStatus.QUEUED, RunStatus.RUNNING)).count()
        for model in (RewardModelRun, PolicyRun, Generation)
    )
    if active + runs > limit:
        asked = "" if runs == 1 else f", so {runs} more do not fit"
        raise RunQuotaExceeded(
            f"Project {project.slug} already has {active} runs queued or running (the limit is {limit}{asked}); "
            "wait for one to finish or cancel one."
        )


def require_succeeded_reward_run(project: Project, run: RewardModelRun, field: str, why: str) -> None:
    """ValidationError on ``field`` unless ``run`` is a succeeded reward-model run of ``project``;
    ``why`` ends the message for a run that has not succeeded."""
    if run.project_id != project.pk:
        raise ValidationError({field: "That reward-model run belongs to another project."})
    if run.status != RunStatus.SUCCEEDED:
        raise ValidationError({field: f"Reward-model run {run.pk} is {run.status}; {why}"})


def run_dir(run: TrainingRun) -> Path:
    """Where the run's checkpoints and outputs lie."""
    return Path(settings.MORM_ARTIFACTS_DIR) / (run.artifacts_dir or Path(run.artifacts_prefix) / str(run.pk))


def run_cancel(*, run: TrainingRun) -> TrainingRun:
    """Ask a run to stop. A queued run, or a running one whose worker stopped (no heartbeat), is
    cancelled at once; a running one stops between steps."""
    with transaction.atomic():
        run = type(run).objects.select_for_update().get(pk=run.pk)
        if run.is_finished:
            return run
        run.cancel_requested = True
        worker_lost = run.status == RunStatus.RUNNING and is_stale(run)
        if worker_lost:
            run.error = f"{lost_message(run)}; cancelled as asked."
        if run.status == RunStatus.QUEUED or worker_lost:
            run.status = RunStatus.CANCELLED
            run.finished_at = timezone.now()
        run.save(update_fields=["cancel_requested", "status", "error", "finished_at"])
        if run.is_finished:
            run_finished_emit(run)
            round_check_enqueue(run)
    return run
