"""Streaming a project's comparisons with their judgments, filtered, for exports.

Two server-side cursors (``QuerySet.iterator``), comparisons and judgments, both ordered
by comparison id, are merged as they stream: memory stays flat however large the project.
"""

from collections.abc import Iterator
from dataclasses import dataclass, field

from ..models import Comparison, Judgment, Project, signed_score
from .aggregation import Label, aggregate

CHUNK = 2000

COMPARISON_FIELDS = ("id", "external_id", "prompt", "response_a", "response_b", "model_a", "model_b", "metadata")
JUDGMENT_FIELDS = {
    "comparison_id": "annotation__comparison_id",
    "objective": "objective__key",
    "choice": "choice",
    "strength": "strength",
    "score": "score",
    "rationale": "rationale",
    "likert_a": "likert_a",
    "likert_b": "likert_b",
    "annotator_id": "annotation__annotator_id",
    "annotator": "annotation__annotator__username",
    "source": "annotation__source_id",
    "shown_swapped": "annotation__task__shown_swapped",
    "flags_a": "annotation__flags_a",
    "flags_b": "annotation__flags_b",
    "time_spent_ms": "annotation__time_spent_ms",
    "created_at": "annotation__created_at",
}


@dataclass(frozen=True)
class Selection:
    """Which judgments count and which labels are kept (the export filters)."""

    objectives: tuple[str, ...]
    min_annotations: int = 1
    min_agreement: float = 0.0
    include_imported: bool = True
    excluded_annotators: frozenset[int] = frozenset()


@dataclass
class ComparisonRecord:
    """One comparison, its kept judgments, and a label per objective that passed the filters."""

    comparison: dict
    judgments: list[dict] = field(default_factory=list)
    labels: dict[str, Label] = field(default_factory=dict)


def judgments_in_scope(project: Project, selection: Selection):
    """The judgments an export reads, before label-level filters (min annotations, agreement)."""
    judgments = Judgment.objects.filter(
        annotation__comparison__project=project, objective__key__in=selection.objectives
    )
    if not selection.include_imported:
        judgments = judgments.filter(annotation__annotator__isnull=False)
    if selection.excluded_annotators:
        judgments = judgments.exclude(annotation__annotator_id__in=selection.excluded_annotators)
    return judgments


def stream_records(project: Project, selection: Selection, *, on_judgments=None) -> Iterator[ComparisonRecord]:
    """Comparisons that keep at least one label, in id order, with their kept judgments.

    ``on_judgments(count)`` is called as judgments are consumed, for progress reporting.
    """
    judgment_rows = (
        judgments_in_scope(project, selection)
        .order_by("annotation__comparison_id", "objective__order", "objective_id", "id")
        .values_list(*JUDGMENT_FIELDS.values())
        .iterator(chunk_size=CHUNK)
    )
    judgments = (dict(zip(JUDGMENT_FIELDS, row)) for row in judgment_rows)
    comparisons = (
        Comparison.objects.filter(project=project).order_by("id").values(*COMPARISON_FIELDS).iterator(chunk_size=CHUNK)
    )
    pending = next(judgments, None)
    consumed = 0
    for comparison in comparisons:
        record = ComparisonRecord(comparison=comparison)
        while pending is not None and pending["comparison_id"] == comparison["id"]:
            pending["score"] = signed_score(pending["choice"], pending["strength"], pending["score"])
            record.judgments.append(pending)
            pending = next(judgments, None)
            consumed += 1
            if on_judgments and consumed % CHUNK == 0:
                on_judgments(consumed)
        if _keep_labels(record, selection):
            yield record
    if on_judgments:
        on_judgments(consumed)


def _keep_labels(record: ComparisonRecord, selection: Selection) -> bool:
    by_objective: dict[str, list[float]] = {}
    for judgment in record.judgments:
        by_objective.setdefault(judgment["objective"], []).append(judgment["score"])
    for objective, scores in by_objective.items():
        label = aggregate(scores)
        if label.n >= selection.min_annotations and label.agreement >= selection.min_agreement:
            record.labels[objective] = label
    record.judgments = [j for j in record.judgments if j["objective"] in record.labels]
    return bool(record.labels)
