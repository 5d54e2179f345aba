"""Importing comparison files (formats: see ``annotate_app.importers``)."""

from typing import BinaryIO

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction

from ..importers import ImportFormatError, ParsedComparison, parse_file
from ..models import Annotation, Comparison, ImportBatch, Judgment, Objective, Project
from .queue import comparisons_added


class UploadTooLarge(ImportFormatError):
    """The uploaded file is over ``MORM_MAX_UPLOAD_BYTES``."""


def comparison_import(
    *,
    project: Project,
    fileobj: BinaryIO,
    format: str = "auto",
    objective: str | None = None,
    filename: str = "",
    user: AbstractBaseUser | None = None,
) -> ImportBatch:
    """Import a file of comparisons (and the labels it carries) into the project.

    All or nothing: the whole file is parsed and checked before anything is written, and
    a bad line raises ImportFormatError naming the line and field. Comparisons already in
    the project (same external id or same content) are skipped, so re-importing a file
    creates nothing. ``objective`` names what a ``trl``/``hh`` preference is about; for
    ``native`` and ``pku`` it keeps only that objective's labels.
    """
    objectives = {o.key: o for o in project.objectives.all()}
    if objective and objective not in objectives:
        raise ImportFormatError(
            f"unknown objective {objective!r}; this project has {', '.join(objectives)}", field="objective"
        )
    parsed = parse_file(fileobj, format=format, objective=objective)
    _check_labels(parsed, objectives, only=objective)

    with transaction.atomic():
        batch = ImportBatch.objects.create(
            project=project,
            filename=filename[:255],
            format=format,
            objective=objective or "",
            created_by=user,
        )
        new = _new_comparisons(project, parsed)
        comparisons = Comparison.objects.bulk_create(
            [
                Comparison(
                    project=project,
                    external_id=item.external_id,
                    prompt=item.prompt,
                    response_a=item.response_a,
                    response_b=item.response_b,
                    model_a=item.model_a,
                    model_b=item.model_b,
                    metadata=item.meta,
                    content_hash=item.content_hash,
                    import_batch=batch,
                )
                for item in new
            ],
            batch_size=500,
        )
        label_count, labelled = _create_labels(batch, zip(new, comparisons), objectives, only=objective)
        comparisons_added(project=project, created=len(comparisons), labelled=labelled)
        batch.created_count = len(comparisons)
        batch.skipped_count = len(parsed) - len(comparisons)
        batch.label_count = label_count
        batch.save(update_fields=["created_count", "skipped_count", "label_count"])
    return batch


def comparison_import_upload(
    *, project: Project, upload: UploadedFile, format: str = "auto", objective: str | None = None,
    user: AbstractBaseUser | None = None,
) -> ImportBatch:
    """``comparison_import`` for a browser or API upload, refusing files over the size limit."""
    limit = settings.MORM_MAX_UPLOAD_BYTES
    if upload.size > limit:
        raise UploadTooLarge(
            f"the file is {upload.size / 1e6:.1f} MB; uploads are limited to {limit / 1e6:.1f} MB "
            "(import larger files with manage.py import_pairs)",
            field="file",
        )
    return comparison_import(
        project=project, fileobj=upload, format=format, objective=objective, filename=upload.name or "", user=user
    )


def _check_labels(parsed: list[ParsedComparison], objectives: dict[str, Objective], *, only: str | None) -> None:
    for item in parsed:
        for label in item.labels:
            if only and label.objective != only:
                continue
            if label.objective not in objectives:
                raise ImportFormatError(
                    f"unknown objective {label.objective!r}; this project has {', '.join(objectives)} "
                    "(or pass --objective to import one objective's labels)",
                    line=item.line,
                    field=label.field,
                )


def _new_comparisons(project: Project, parsed: list[ParsedComparison]) -> list[ParsedComparison]:
    """The parsed comparisons not yet in the project, first occurrence within the file kept."""
    seen_ids = set(project.comparisons.exclude(external_id="").values_list("external_id", flat=True))
    seen_hashes = set(project.comparisons.values_list("content_hash", flat=True))
    new = []
    for item in parsed:
        if (item.external_id and item.external_id in seen_ids) or item.content_hash in seen_hashes:
            continue
        seen_ids.add(item.external_id)
        seen_hashes.add(item.content_hash)
        new.append(item)
    return new


def _create_labels(
    batch: ImportBatch, pairs, objectives: dict[str, Objective], *, only: str | None
) -> tuple[int, int]:
    """Store the imported labels; returns (judgments, comparisons labelled)."""
    labelled = [
        (comparison, [label for label in item.labels if not only or label.objective == only])
        for item, comparison in pairs
    ]
    labelled = [(comparison, labels) for comparison, labels in labelled if labels]
    annotations = Annotation.objects.bulk_create(
        [Annotation(comparison=comparison, source=batch) for comparison, _ in labelled], batch_size=500
    )
    judgments = [
        Judgment(
            annotation=annotation,
            objective=objectives[label.objective],
            choice=label.choice,
            strength=label.strength,
            score=label.score,
        )
        for annotation, (_, labels) in zip(annotations, labelled)
        for label in labels
    ]
    Judgment.objects.bulk_create(judgments, batch_size=2000)
    return len(judgments), len(annotations)
