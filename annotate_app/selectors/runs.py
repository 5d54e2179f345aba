"""Reading runs and their metric curves."""

from collections import defaultdict
from dataclasses import dataclass

from django.utils import timezone

from ..models import RewardModelRun, RunStatus, TrainingRun


@dataclass(frozen=True)
class MetricsChunk:
    """Metric points after a step, ``{key: [[step, value], ...]}``, bounded in size.

    ``next_since`` is the last step in ``series`` when later points were left for the next
    call (ask again with ``since_step=next_since``), None when the chunk reached the end.
    """

    series: dict[str, list[list[float]]]
    next_since: int | None


def run_metrics(run: RewardModelRun, *, since_step: int | None = None, max_points: int) -> MetricsChunk:
    """The run's metric points after ``since_step`` (all when None), in step order, at most ``max_points``.

    A chunk holds whole steps only, so the next one can start after its last step without
    losing a key logged at that step. A single step with more than ``max_points`` points
    comes whole in a chunk of its own.
    """
    points = run.metric_points.all()
    if since_step is not None:
        points = points.filter(step__gt=since_step)
    rows = list(points.order_by("step", "id").values_list("step", "key", "value")[: max_points + 1])
    next_since = None
    if len(rows) > max_points:
        cut_step = rows[max_points][0]
        rows = [row for row in rows if row[0] < cut_step]
        if not rows:
            rows = list(points.filter(step=cut_step).order_by("id").values_list("step", "key", "value"))
        next_since = rows[-1][0]
    series: dict[str, list[list[float]]] = defaultdict(list)
    for step, key, value in rows:
        series[key].append([step, value])
    return MetricsChunk(series=dict(series), next_since=next_since)


def run_lineage(run: RewardModelRun) -> dict:
    """What a run was made from: snapshot id, sha256 and counts per objective; the run its heads started from."""
    snapshot = run.snapshot
    return {
        "init_heads_run": run.init_heads_run_id,
        "snapshot": snapshot.pk,
        "sha256": snapshot.sha256,
        "created_at": snapshot.created_at.isoformat(),
        "objectives": snapshot.manifest.get("objectives", {}),
        "comparisons": snapshot.manifest.get("comparisons"),
    }


def report_head_rows(report: dict) -> list[tuple[str, list[float | None]]]:
    """The report's between-head correlation matrix as ``(objective, Pearson r with each head)`` rows; none
    for a run without a report."""
    heads = report.get("head_correlation") if report else None
    if not heads:
        return []
    return list(zip(heads["objectives"], heads["pearson"], strict=True))


def run_eta_seconds(run: TrainingRun) -> float | None:
    """Seconds a running run still needs: its remaining steps at the moving average of its recent step times,
    less the time already spent on the step under way. It changes only when a step ends (a new average) or
    counts down meanwhile, so it never rises while the worker is busy with one step. None before the first
    step, when the total is not known, or when the run is not running."""
    if run.status != RunStatus.RUNNING or run.seconds_per_step is None or not run.total_steps:
        return None
    remaining = run.seconds_per_step * max(run.total_steps - run.step, 0)
    if run.step_at is not None:
        remaining -= (timezone.now() - run.step_at).total_seconds()
    return max(remaining, 0.0)


def run_progress(run: TrainingRun) -> dict:
    """What a run page shows live: status, step of total (0 while not known), stage, ETA, whether a cancel is
    on its way."""
    return {"status": run.status, "step": run.step, "total_steps": run.total_steps,
            "stage": run.stage if run.status == RunStatus.RUNNING else "", "eta_seconds": run_eta_seconds(run),
            "cancel_requested": run.cancel_requested}
