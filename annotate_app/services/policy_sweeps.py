"""Weight sweeps: PPO runs on one reward model over a grid of scalarization weights, queued as one Celery group.

A grid is asked for in one of three shapes (the dashboard form and REST send the same dict):

- ``{"values": {"helpful": [0.2, 0.5, 0.8], "harmless": [0.2, 0.8]}}``: every combination of the listed
  values; objectives not listed keep the weight the settings give them (``config.weights``, else the default);
- ``{"simplex_step": 0.25, "objectives": ["helpful", "harmless"]}``: every vector of multiples of the step
  that sums to 1 over those objectives (all of the reward model's when left out), the others weighing 0;
- ``{"weights": [{"helpful": 1, "harmless": 0}, ...]}``: these vectors, each over the settings' weights.
"""

import itertools
import math

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction

from rm_worker.training.ppo_config import PPOConfig

from ..models import PolicyRun, PolicySweep, Project, RewardModelRun
from .dispatch import policy_runs_enqueue
from .policy_runs import ppo_config_for
from .runs import require_succeeded_reward_run, run_quota_check

GRID_SHAPES = ("values", "simplex_step", "weights")


@transaction.atomic
def policy_sweep_create(
    *,
    project: Project,
    reward_run: RewardModelRun,
    grid: dict,
    overrides: dict | None = None,
    name: str = "",
    user: AbstractBaseUser | None = None,
) -> PolicySweep:
    """Queue one PPO run per weight vector of ``grid`` (see the module docstring), all with the other settings
    of ``overrides``, against a succeeded reward-model run of the project.

    All or nothing: a bad grid point, a bad setting, or fewer free run slots than runs (``run_quota_check``)
    queues none. The runs are sent to the ``training`` queue as one Celery group after commit.
    """
    require_succeeded_reward_run(project, reward_run, "reward_run", "PPO needs a succeeded one.")
    configs = sweep_configs(reward_run, grid, overrides or {})
    run_quota_check(project, runs=len(configs))
    sweep = PolicySweep.objects.create(project=project, reward_run=reward_run, name=name, grid=grid, created_by=user)
    runs = [
        PolicyRun.objects.create(project=project, reward_run=reward_run, sweep=sweep, config=config.to_dict(),
                                 created_by=user, total_steps=config.steps)
        for config in configs
    ]
    policy_runs_enqueue(runs)
    return sweep


def sweep_configs(reward_run: RewardModelRun, grid: dict, overrides: dict) -> list[PPOConfig]:
    """One validated PPO config per distinct weight vector of ``grid``, in grid order.

    ValidationError on ``grid`` for a malformed grid, a grid of more than ``MORM_MAX_SWEEP_RUNS`` points or
    a point whose weights PPO refuses; on the setting's own name for a bad setting in ``overrides``.
    """
    objectives = reward_run.config["objectives"]
    base = overrides.get("weights") or {}
    if not isinstance(base, dict):
        raise ValidationError({"weights": "Expected {objective: weight}: the weights the grid does not set."})
    configs, seen = [], set()
    for point in grid_points(grid, objectives, max_runs=settings.MORM_MAX_SWEEP_RUNS):
        try:
            config = ppo_config_for(reward_run, {**overrides, "weights": {**base, **point}})
        except ValidationError as error:
            problems = error.message_dict
            if not all(field.partition(".")[0] == "weights" for field in problems):
                raise
            told = " ".join(f"{field}: {' '.join(messages)}" for field, messages in problems.items())
            raise ValidationError({"grid": f"Weights {point}: {told}"}) from error
        key = tuple(config.objective_weights().values())
        if key not in seen:
            seen.add(key)
            configs.append(config)
    return configs


def grid_points(grid: dict, objectives: list[str], *, max_runs: int) -> list[dict[str, float]]:
    """The weight vectors (``{objective: weight}``) a grid asks for; ValidationError on ``grid`` unless it has
    exactly one of the shapes, names only ``objectives``, and has at most ``max_runs`` points."""
    shapes = [shape for shape in GRID_SHAPES if shape in grid] if isinstance(grid, dict) else []
    if len(shapes) != 1:
        raise _grid_error(f"Give exactly one of {', '.join(GRID_SHAPES)}.")
    unknown = sorted(set(grid) - {shapes[0]} - ({"objectives"} if shapes[0] == "simplex_step" else set()))
    if unknown:
        raise _grid_error(f"Unknown key: {', '.join(unknown)}.")
    shape = shapes[0]
    if shape == "values":
        return _values_points(grid["values"], objectives, max_runs)
    if shape == "simplex_step":
        return _simplex_points(grid["simplex_step"], grid.get("objectives", objectives), objectives, max_runs)
    return _listed_points(grid["weights"], objectives, max_runs)


def _values_points(values, objectives: list[str], max_runs: int) -> list[dict[str, float]]:
    if not isinstance(values, dict) or not values:
        raise _grid_error("values: expected {objective: [weight, ...]} naming at least one objective.")
    _check_objectives(values, objectives)
    for key, listed in values.items():
        if not isinstance(listed, list) or not listed or not all(map(_is_number, listed)):
            raise _grid_error(f"values: {key}: expected a non-empty list of numbers.")
    _check_size(math.prod(len(listed) for listed in values.values()), max_runs)
    return [dict(zip(values, combination, strict=True)) for combination in itertools.product(*values.values())]


def _simplex_points(step, chosen, objectives: list[str], max_runs: int) -> list[dict[str, float]]:
    if not _is_number(step) or not 0.001 <= step <= 1 or abs(1 / step - round(1 / step)) > 1e-9:
        raise _grid_error("simplex_step: expected a step that divides 1, e.g. 0.5, 0.25 or 0.1 (at least 0.001).")
    if not isinstance(chosen, list) or not chosen or len(set(map(str, chosen))) != len(chosen):
        raise _grid_error("objectives: expected a list of distinct objectives.")
    _check_objectives(chosen, objectives)
    parts = round(1 / step)
    _check_size(math.comb(parts + len(chosen) - 1, len(chosen) - 1), max_runs)
    others = {key: 0.0 for key in objectives if key not in chosen}
    return [{**dict(zip(chosen, (share / parts for share in shares), strict=True)), **others}
            for shares in _compositions(parts, len(chosen))]


def _compositions(total: int, count: int):
    """Every tuple of ``count`` non-negative integers summing to ``total``, the first counting down."""
    if count == 1:
        yield (total,)
        return
    for first in range(total, -1, -1):
        for rest in _compositions(total - first, count - 1):
            yield (first, *rest)


def _listed_points(listed, objectives: list[str], max_runs: int) -> list[dict[str, float]]:
    if not isinstance(listed, list) or not listed:
        raise _grid_error("weights: expected a non-empty list of {objective: weight}.")
    _check_size(len(listed), max_runs)
    for point in listed:
        if not isinstance(point, dict) or not all(map(_is_number, point.values())):
            raise _grid_error("weights: expected a non-empty list of {objective: weight}.")
        _check_objectives(point, objectives)
    return [dict(point) for point in listed]


def _check_objectives(named, objectives: list[str]) -> None:
    unknown = sorted(set(map(str, named)) - set(objectives))
    if unknown:
        raise _grid_error(f"Unknown objective: {', '.join(unknown)} (the reward model's: {', '.join(objectives)}).")


def _check_size(points: int, max_runs: int) -> None:
    if points > max_runs:
        raise _grid_error(f"{points} weight vectors; a sweep has at most {max_runs} runs (MORM_MAX_SWEEP_RUNS).")


def _is_number(value) -> bool:
    # Compared, not converted: a JSON integer too large for a float is refused, not an OverflowError.
    return isinstance(value, int | float) and not isinstance(value, bool) and -1e300 < value < 1e300


def _grid_error(message: str) -> ValidationError:
    return ValidationError({"grid": message})
