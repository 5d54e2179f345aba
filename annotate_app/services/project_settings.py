"""Changing a project's settings (``PATCH projects/{slug}/``, the settings page), the loop's included.

The loop's configs are overrides of a run config, stored on the project and used for each round's runs
(``services.rounds``): they are checked here with the same schema and model checks as a run form
(``services.runs.config_from``), so a bad one is refused when it is saved, naming the field
(``retrain_config.learning_rate``), not when a round tries to use it.
"""

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction

from rm_worker.training.generation import GenerationConfig
from rm_worker.training.ppo_config import PPOConfig

from ..models import Project, QueueOrder, RewardModelRun
from .generations import POLICY_FIELDS
from .queue_order import queue_order_changed
from .reward_runs import reward_config_for
from .runs import config_from, require_succeeded_reward_run

# The settings ``project_settings_update`` takes; any other key is refused.
SETTINGS = (
    "name", "description", "overlap_k", "lease_minutes", "shuffle_sides", "ask_likert", "ask_flags", "gold_rate",
    "gold_pass_accuracy", "queue_order", "queue_reward_run", "retrain_every", "retrain_config", "repolicy_config",
    "regenerate_config",
)
# What a PPO config's reward_model_dir is while no round has its reward run yet (the round fills it in).
_ROUND_REWARD_RUN = "(the round's reward-model run)"


@transaction.atomic
def project_settings_update(*, project: Project, user: AbstractBaseUser, data: dict) -> Project:
    """Apply ``data`` (a subset of ``SETTINGS``, values already of the right types) to the project, all or nothing.

    Raises ValidationError naming each field at fault: an ``overlap_k`` change once the project has comparisons
    (its maintained queue counts are per overlap_k), ``uncertain`` order without a succeeded reward-model run of
    this project, a config that breaks its schema (``retrain_config.<setting>``). ``user`` must be a project
    admin (the caller checks). The queue is told after commit when its order changed.
    """
    unknown = sorted(set(data) - set(SETTINGS))
    if unknown:
        raise ValidationError({field: "Not a project setting." for field in unknown})
    project = Project.objects.select_for_update().get(pk=project.pk)
    order_before = (project.queue_order, project.queue_reward_run_id)
    errors = _problems(project, data)
    if errors:
        raise ValidationError(errors)
    for field, value in data.items():
        setattr(project, field, value)
    project.full_clean(exclude=["slug", "flag_options"])
    project.save(update_fields=list(data))
    if (project.queue_order, project.queue_reward_run_id) != order_before:
        queue_order_changed(project=project)
    return project


def _problems(project: Project, data: dict) -> dict[str, str]:
    errors = {}
    if "overlap_k" in data and data["overlap_k"] != project.overlap_k and project.comparison_count:
        errors["overlap_k"] = (
            "Cannot change once the project has comparisons: the queue's maintained counts (open and complete "
            "comparisons, each annotator's position) are kept for the current overlap_k. Make a new project instead."
        )
    order = data.get("queue_order", project.queue_order)
    reward_run = data.get("queue_reward_run", project.queue_reward_run)
    if order not in QueueOrder.values:
        errors["queue_order"] = f"Must be one of {', '.join(QueueOrder.values)}."
    elif order == QueueOrder.UNCERTAIN:
        if reward_run is None:
            errors["queue_reward_run"] = "The uncertain order needs a succeeded reward-model run of this project."
        else:
            errors.update(_run_problem(project, reward_run))
    checks = (("retrain_config", _reward_config_problems), ("repolicy_config", _ppo_config_problems),
              ("regenerate_config", _generation_config_problems))
    for field, check in checks:
        if data.get(field) is not None:
            errors.update({f"{field}.{key}" if key != "config" else field: value
                           for key, value in check(project, data[field]).items()})
    if "retrain_config" in data and data["retrain_config"] is None:
        errors["retrain_config"] = "Must be an object ({} for the defaults)."
    return errors


def _run_problem(project: Project, run: RewardModelRun) -> dict[str, str]:
    try:
        require_succeeded_reward_run(project, run, "queue_reward_run", "the uncertain order needs a succeeded one.")
    except ValidationError as error:
        return {field: " ".join(messages) for field, messages in error.message_dict.items()}
    return {}


def _config_problems(build) -> dict[str, str]:
    try:
        build()
    except ValidationError as error:
        return {field: " ".join(messages) for field, messages in error.message_dict.items()}
    return {}


def _reward_config_problems(project: Project, overrides: dict) -> dict[str, str]:
    return _config_problems(lambda: reward_config_for(project, overrides))


def _ppo_config_problems(project: Project, overrides: dict) -> dict[str, str]:
    objectives = list(project.objectives.values_list("key", flat=True))
    return _config_problems(lambda: config_from(
        PPOConfig, overrides, defaults={"objectives": objectives}, derived={"reward_model_dir": _ROUND_REWARD_RUN},
        project_objectives=objectives))


def _generation_config_problems(project: Project, overrides: dict) -> dict[str, str]:
    fixed = sorted(set(POLICY_FIELDS) & set(overrides))
    if fixed:
        return {field: "Set by the round's PPO run: its adapters fit the policy it trained." for field in fixed}
    problems = _config_problems(lambda: config_from(GenerationConfig, overrides, defaults={}, project_objectives=[]))
    if problems:
        return problems
    # Weights name heads of the round's reward run, whose heads are the project's objectives.
    unknown = sorted(set(overrides.get("weights", {})) - set(project.objectives.values_list("key", flat=True)))
    return {"weights": f"No objective {', '.join(unknown)} in this project."} if unknown else {}
