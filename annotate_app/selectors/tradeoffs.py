"""What finished PPO runs bought on the objectives: their points, Pareto front and hypervolume (trade-off page)."""

from dataclasses import dataclass

from ..models import PolicyRun, PolicySweep, Project, RunStatus
from ..pareto import hypervolume, pareto_front
from ..templatetags.morm_format import weights

# The exact hypervolume costs about front size ** (objectives - 1) steps (pareto.hypervolume): up to this many
# (300 runs over 4 objectives, 25 over 6) it is computed, past it the page says so.
HYPERVOLUME_BUDGET = 30_000_000


@dataclass(frozen=True)
class Volume:
    """The hypervolume over ``objectives`` of the runs' mean normalized held-out rewards, above ``reference``
    (one value per objective); ``value`` is None when it would cost more than ``HYPERVOLUME_BUDGET``.
    ``front``: the ids of the runs on the Pareto front over those objectives."""

    objectives: list[str]
    reference: list[float]
    value: float | None
    front: list[int]


@dataclass(frozen=True)
class Tradeoff:
    """The finished runs on objectives ``x`` and ``y``: ``points`` (one per run, ``on_front`` marking the
    runs no other beats on both), ``front`` (those points by increasing x, for the line), ``area`` (the
    hypervolume on x and y) and ``volume`` (over every objective all the runs have; None with fewer than 3)."""

    points: list[dict]
    front: list[dict]
    area: Volume | None
    volume: Volume | None


def policy_tradeoff(project: Project, x: str, y: str, sweep: PolicySweep | None = None) -> Tradeoff:
    """The project's succeeded PPO runs (``sweep``'s only, when given) with their held-out rewards after
    training on ``x`` and ``y``, their Pareto front, and its hypervolume.

    Every objective is maximized. The reference point of the hypervolume is the reference policy's reward
    (adapters off, ``eval_before``) per objective: the same for runs on one policy and held-out set, the
    lowest of the runs' where they differ, so a run counts for what it gained over the untrained policy.
    """
    runs = project.policy_runs.filter(status=RunStatus.SUCCEEDED).exclude(eval_after={}).order_by("pk")
    if sweep is not None:
        runs = runs.filter(sweep=sweep)
    runs = [run for run in runs if _has(run, [x, y])]
    points = [
        {"run": run.pk, "label": _weights_label(run.config), "x": _after(run, x), "y": _after(run, y),
         "ref_x": _before(run, x), "ref_y": _before(run, y)}
        for run in runs
    ]
    on_front = set(pareto_front([(p["x"], p["y"]) for p in points]))
    for i, point in enumerate(points):
        point["on_front"] = i in on_front
    front = sorted((p for p in points if p["on_front"]), key=lambda p: (p["x"], -p["y"]))
    shared = [key for key in project.objectives.values_list("key", flat=True) if all(_has(run, [key]) for run in runs)]
    return Tradeoff(points=points, front=[{"x": p["x"], "y": p["y"]} for p in front],
                    area=_volume(runs, [x, y]) if runs else None,
                    volume=_volume(runs, shared) if runs and len(shared) > 2 else None)


def sweep_pareto(sweep: PolicySweep) -> Volume | None:
    """The Pareto front and hypervolume of the sweep's succeeded runs over every objective they all have (the
    reference point as in ``policy_tradeoff``); None before a run has succeeded."""
    runs = [run for run in sweep.runs.filter(status=RunStatus.SUCCEEDED).exclude(eval_after={}).order_by("pk")]
    shared = [key for key in sweep.reward_run.config["objectives"] if all(_has(run, [key]) for run in runs)]
    return _volume(runs, shared) if runs and shared else None


def _volume(runs: list[PolicyRun], objectives: list[str]) -> Volume:
    reference = [min(_before(run, key) for run in runs) for key in objectives]
    points = [tuple(_after(run, key) for key in objectives) for run in runs]
    on_front = pareto_front(points)
    front = [points[i] for i in on_front]
    affordable = len(front) ** (len(objectives) - 1) <= HYPERVOLUME_BUDGET
    return Volume(objectives, reference, hypervolume(front, reference) if affordable else None,
                  [runs[i].pk for i in on_front])


def _has(run: PolicyRun, keys: list[str]) -> bool:
    return all(key in run.eval_after and key in run.eval_before for key in keys)


def _after(run: PolicyRun, key: str) -> float:
    return run.eval_after[key]["normalized"]


def _before(run: PolicyRun, key: str) -> float:
    return run.eval_before[key]["normalized"]


def _weights_label(config: dict) -> str:
    return f"{config.get('scalarization', 'static')}: {weights(config.get('weights', {}), config.get('objectives'))}"
