"""Reading runs and their metric curves."""

from collections import defaultdict

from ..models import RewardModelRun


def run_metrics(run: RewardModelRun, *, since_step: int | None = None) -> dict[str, list[list[float]]]:
    """{key: [[step, value], ...]} for the run, only steps after ``since_step`` when given."""
    points = run.metric_points.all()
    if since_step is not None:
        points = points.filter(step__gt=since_step)
    series: dict[str, list[list[float]]] = defaultdict(list)
    for step, key, value in points.order_by("step", "id").values_list("step", "key", "value").iterator():
        series[key].append([step, value])
    return dict(series)


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
