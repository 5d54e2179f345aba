"""Creating PPO runs (cancel and checks: ``services.runs``; on the worker: ``rm_worker/runtime.py``)."""

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction

from rm_worker.training.ppo_config import PPOConfig

from ..models import PolicyRun, PolicySample, Project, RewardModelRun
from .dispatch import run_enqueue
from .runs import config_from, require_succeeded_reward_run, run_dir, run_quota_check


def parse_weights(text: str) -> dict[str, float]:
    """``"helpful=0.4,harmless=0.45,honest=0.15"`` → ``{"helpful": 0.4, ...}``."""
    weights = {}
    for part in filter(None, (piece.strip() for piece in text.split(","))):
        key, _, value = part.partition("=")
        try:
            weights[key.strip()] = float(value)
        except ValueError:
            raise ValidationError({"weights": f"Expected objective=number, got {part!r}."}) from None
    return weights


def ppo_config_for(reward_run: RewardModelRun, overrides: dict) -> PPOConfig:
    """The run's config: the reward model's objectives, the overrides, then its directory, validated."""
    objectives = reward_run.config["objectives"]
    return config_from(PPOConfig, overrides, defaults={"objectives": objectives},
                       derived={"reward_model_dir": str(run_dir(reward_run) / "model")}, project_objectives=objectives)


@transaction.atomic
def policy_run_create(
    *,
    project: Project,
    reward_run: RewardModelRun,
    overrides: dict | None = None,
    user: AbstractBaseUser | None = None,
    enqueue: bool = True,
) -> PolicyRun:
    """Queue a PPO run against a succeeded reward-model run of the same project.

    The Celery task is sent after commit, to the ``training`` queue.
    """
    run_quota_check(project)
    require_succeeded_reward_run(project, reward_run, "reward_run", "PPO needs a succeeded one.")
    config = ppo_config_for(reward_run, overrides or {})
    run = PolicyRun.objects.create(project=project, reward_run=reward_run, config=config.to_dict(), created_by=user,
                                   total_steps=config.steps)
    if enqueue:
        run_enqueue(run)
    return run


def policy_prompts(project: Project) -> list:
    """The project's distinct prompts (plain text or chat turns), in import order: PPO's prompt set."""
    seen, prompts = set(), []
    for prompt in project.comparisons.order_by("id").values_list("prompt", flat=True).iterator():
        key = repr(prompt)
        if key not in seen:
            seen.add(key)
            prompts.append(prompt)
    return prompts


def policy_samples_save(run: PolicyRun, step: int, rows: list[dict]) -> None:
    """Store a table of sample generations reported by the trainer."""
    PolicySample.objects.bulk_create(
        PolicySample(policy_run=run, step=step, prompt=row["prompt"], response=row["response"],
                     rewards=row["rewards"], normalized=row.get("normalized", {}), combined=row["combined"])
        for row in rows
    )
