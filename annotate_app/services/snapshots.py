"""Creating snapshots: immutable dataset exports with a manifest."""

import hashlib
import logging
import os
from collections import Counter
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.db.models import QuerySet
from django.utils import timezone

from ..datasets.aggregation import Label
from ..datasets.postgres import copy_export, copy_export_supported
from ..datasets.rows import Selection, judgments_in_scope, stream_records
from ..datasets.writers import WRITERS
from ..models import Project, Snapshot, SnapshotFormat, SnapshotStatus
from ..models.snapshot import ROW_OF_FORMAT
from ..selectors.gold import annotators_failing_gold
from .dispatch import snapshot_enqueue
from .recovery import heartbeat
from .webhooks import snapshot_created_emit

logger = logging.getLogger(__name__)

# Exports write many small pieces; a large buffer makes them few system calls.
WRITE_BUFFER = 1 << 20


@dataclass(frozen=True)
class ExportFilters:
    """What goes into a snapshot. Stored in the snapshot's manifest as given."""

    objectives: list[str] = field(default_factory=list)  # empty: all of the project's
    min_annotations: int = 1  # judgments per comparison and objective
    min_agreement: float = 0.0  # share of judgments pointing the majority way
    include_imported: bool = True  # imported labels count as judgments
    exclude_failing_gold: bool = False  # drop annotators under the gold accuracy threshold
    gold_threshold: float | None = None  # default: the project's gold_pass_accuracy
    margin: bool = False  # trl: write |mean score| as "margin"


def snapshot_create(
    *,
    project: Project,
    format: str,
    objective: str = "",
    filters: ExportFilters | None = None,
    user: AbstractBaseUser | None = None,
    background: bool | None = None,
    enqueue: bool = True,
) -> Snapshot:
    """Validate the request and create a snapshot; build it now or on a Celery worker.

    ``background=None`` builds in the request when the project has fewer judgments in
    scope than ``MORM_EXPORT_BACKGROUND_ROWS`` and queues it otherwise. ``enqueue=False``
    leaves a background snapshot queued for the caller's own task to build (a reward-model
    run on the latest labels builds its snapshot on the training worker).
    """
    filters = filters or ExportFilters()
    objectives = _check(project, format, objective, filters)
    selection = _selection(project, objectives, filters)
    judgments_total = judgments_in_scope(project, selection).count()
    snapshot = Snapshot.objects.create(
        project=project,
        format=format,
        objective=objective,
        filters={**asdict(filters), "objectives": list(objectives)},
        judgments_total=judgments_total,
        created_by=user,
    )
    if background is None:
        background = judgments_total >= settings.MORM_EXPORT_BACKGROUND_ROWS
    if background:
        if enqueue:
            snapshot_enqueue(snapshot)
        return snapshot
    return snapshot_build(snapshot_id=snapshot.pk)


def _check(project: Project, format: str, objective: str, filters: ExportFilters) -> tuple[str, ...]:
    keys = list(project.objectives.values_list("key", flat=True))
    errors = {}
    if format not in SnapshotFormat.values:
        errors["format"] = f"Unknown format {format!r}; use one of {', '.join(SnapshotFormat.values)}."
    if format == SnapshotFormat.TRL and not objective:
        errors["objective"] = "The trl format holds one objective: name it."
    if objective and objective not in keys:
        errors["objective"] = f"Unknown objective {objective!r}; this project has {', '.join(keys)}."
    unknown = sorted(set(filters.objectives) - set(keys))
    if unknown:
        errors["objectives"] = f"Unknown objective: {', '.join(unknown)}."
    if filters.min_annotations < 1:
        errors["min_annotations"] = "Must be at least 1."
    if not 0 <= filters.min_agreement <= 1:
        errors["min_agreement"] = "Must be between 0 and 1."
    if filters.gold_threshold is not None and not 0 <= filters.gold_threshold <= 1:
        errors["gold_threshold"] = "Must be between 0 and 1."
    if errors:
        raise ValidationError(errors)
    if objective:
        return (objective,)
    return tuple(k for k in keys if not filters.objectives or k in filters.objectives)


def _selection(project: Project, objectives: tuple[str, ...], filters: ExportFilters) -> Selection:
    excluded = (
        frozenset(annotators_failing_gold(project, filters.gold_threshold))
        if filters.exclude_failing_gold
        else frozenset()
    )
    return Selection(
        objectives=objectives,
        min_annotations=filters.min_annotations,
        min_agreement=filters.min_agreement,
        include_imported=filters.include_imported,
        excluded_annotators=excluded,
    )


def snapshot_build(*, snapshot_id: int) -> Snapshot:
    """Write a queued snapshot's file and manifest; idempotent (a finished one is returned as is).

    Claims the snapshot under ``select_for_update`` so two workers never both build it.
    The file is written under a temporary name and renamed when complete, so a reader
    never sees half a file. The build heartbeats (``services.recovery``): one whose worker
    died is queued again and rebuilt from the start.
    """
    with transaction.atomic():
        snapshot = Snapshot.objects.select_for_update().select_related("project").get(pk=snapshot_id)
        if snapshot.status != SnapshotStatus.QUEUED:
            return snapshot
        snapshot.status = SnapshotStatus.RUNNING
        snapshot.heartbeat_at = timezone.now()
        snapshot.attempts += 1
        snapshot.save(update_fields=["status", "heartbeat_at", "attempts"])
    attempt = Snapshot.objects.filter(pk=snapshot.pk, status=SnapshotStatus.RUNNING, attempts=snapshot.attempts)
    with heartbeat(attempt):
        try:
            _write(snapshot, attempt)
        except Exception as error:
            # Record any failure on the snapshot for the user to see, then let it propagate:
            # it is a bug or an infrastructure problem, not something to hide.
            attempt.update(
                status=SnapshotStatus.FAILED, error=f"{type(error).__name__}: {error}", finished_at=timezone.now()
            )
            raise
    snapshot = Snapshot.objects.get(pk=snapshot.pk)
    if snapshot.status == SnapshotStatus.READY:  # not when this attempt was given up on meanwhile
        snapshot_created_emit(snapshot)
    return snapshot


def _write(snapshot: Snapshot, attempt: QuerySet) -> None:
    project = snapshot.project
    filters = ExportFilters(**snapshot.filters)
    objectives = tuple(filters.objectives)
    selection = _selection(project, objectives, filters)
    relative = Path("snapshots") / project.slug / snapshot.filename
    path = Path(settings.MEDIA_ROOT) / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(path.suffix + ".partial")

    counts = _Counts()
    with partial.open("wb", buffering=WRITE_BUFFER) as out:
        rows = _export(snapshot, selection, out, counts, margin=filters.margin)
    os.replace(partial, path)
    sha256 = _sha256(path)
    manifest = {
        "snapshot": snapshot.pk,
        "project": project.slug,
        "format": snapshot.format,
        "objective": snapshot.objective or None,
        "filters": snapshot.filters,
        "excluded_annotators": sorted(selection.excluded_annotators),
        # Counts of the file as written: "rows" is its number of rows, each one "row".
        "rows": rows,
        "row": ROW_OF_FORMAT[snapshot.format],
        "comparisons": counts.comparisons,
        "judgments": counts.judgments,
        "objectives": counts.per_objective(),
        "sha256": sha256,
        "size_bytes": path.stat().st_size,
        "created_by": snapshot.created_by.get_username() if snapshot.created_by else None,
        "created_at": snapshot.created_at.isoformat(),
    }
    attempt.update(
        status=SnapshotStatus.READY,
        file=str(relative),
        sha256=sha256,
        size_bytes=manifest["size_bytes"],
        manifest=manifest,
        judgments_read=counts.judgments,
        finished_at=timezone.now(),
    )
    logger.info("snapshot %s written: %s rows, sha256 %s", snapshot.pk, rows, sha256)


def _export(snapshot: Snapshot, selection: Selection, out, counts: "_Counts", *, margin: bool) -> int:
    """Write the file, built by the database where it can (COPY), else by the Python writers."""
    if copy_export_supported(snapshot.format):
        with _progress_beside(snapshot) as progress:
            return copy_export(
                snapshot.format, snapshot.project, selection, out, on_labels=counts.add, on_judgments=progress
            )

    def progress(count: int) -> None:
        Snapshot.objects.filter(pk=snapshot.pk).update(judgments_read=count)

    records = counts.watch(stream_records(snapshot.project, selection, on_judgments=progress))
    return WRITERS[snapshot.format](records, out, objective=snapshot.objective, margin=margin)


@contextmanager
def _progress_beside(snapshot: Snapshot):
    """``progress`` through a second connection, for while the export's own streams a COPY.

    SKIP LOCKED: a snapshot row locked by the transaction that builds it (a build inside
    the request that created the snapshot) is skipped rather than waited for, which would
    never end; its progress is not visible outside that transaction anyway.
    """
    beside = connections.create_connection(DEFAULT_DB_ALIAS)
    table = Snapshot._meta.db_table

    def progress(count: int) -> None:
        with beside.cursor() as cursor:
            cursor.execute(
                f"UPDATE {table} SET judgments_read = %s"
                f" WHERE id IN (SELECT id FROM {table} WHERE id = %s FOR UPDATE SKIP LOCKED)",
                [count, snapshot.pk],
            )

    try:
        yield progress
    finally:
        beside.close()


class _Counts:
    """Counts per objective over the comparisons' labels as the export writes them.

    A comparison's kept judgments are those of its kept labels, ``label.n`` per objective.
    """

    def __init__(self):
        self.comparisons = 0
        self.judgments = 0
        self.labels: Counter = Counter()
        self.ties: Counter = Counter()
        self.objective_judgments: Counter = Counter()
        self.agreement_sum: Counter = Counter()

    def add(self, labels: dict[str, Label]) -> None:
        self.comparisons += 1
        for objective, label in labels.items():
            self.judgments += label.n
            self.objective_judgments[objective] += label.n
            self.labels[objective] += 1
            self.ties[objective] += label.choice == "tie"
            self.agreement_sum[objective] += label.agreement

    def watch(self, records):
        for record in records:
            self.add(record.labels)
            yield record

    def per_objective(self) -> dict:
        return {
            objective: {
                "comparisons": self.labels[objective],
                "judgments": self.objective_judgments[objective],
                "ties": self.ties[objective],
                "pairs": self.labels[objective] - self.ties[objective],
                "mean_agreement": round(self.agreement_sum[objective] / self.labels[objective], 4),
            }
            for objective in self.labels
        }


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def snapshot_path(snapshot: Snapshot) -> Path:
    """Where a ready snapshot's file lies."""
    return Path(settings.MEDIA_ROOT) / snapshot.file
