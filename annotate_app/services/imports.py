"""Importing comparison files (formats: see ``annotate_app.importers``)."""

import itertools
from collections import Counter
from typing import BinaryIO

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction

from ..importers import FileTooLarge, ImportFormatError, ParsedComparison, first_line_with_id, iter_parsed
from ..importers.fields import describe
from ..models import Annotation, Comparison, ImportBatch, Judgment, Objective, Project
from .queue import comparisons_added
from .queue_order import comparisons_imported, comparisons_ranked_on_import


class UploadTooLarge(FileTooLarge):
    """The uploaded file is over ``MORM_MAX_UPLOAD_BYTES`` before decompression."""


# Lines parsed, checked and written at a time: memory holds one chunk, whatever the file's size.
IMPORT_CHUNK_LINES = 2000


def comparison_import(
    *,
    project: Project,
    fileobj: BinaryIO,
    format: str = "auto",
    objective: str | None = None,
    filename: str = "",
    user: AbstractBaseUser | None = None,
    max_bytes: int | None = None,
) -> ImportBatch:
    """Import a file of comparisons (and the labels it carries) into the project.

    All or nothing: the file is read a chunk of lines at a time inside one transaction,
    and a bad line raises ImportFormatError naming the line and field, which rolls back
    everything written before it. Comparisons already in the project (same external id
    or same content, including earlier lines of the same file) are skipped, so
    re-importing a file creates nothing; an id new to the project on two lines of the
    file is an error naming both. ``objective`` names what a ``trl``/``hh`` preference is
    about (those formats are refused without it, field "objective"); for ``native`` and
    ``pku`` it keeps only that objective's labels. The batch records the format the file
    was read in, the detected one for "auto". ``max_bytes``
    caps the file's decompressed size (FileTooLarge); JSON nesting is capped by
    ``MORM_MAX_JSON_DEPTH``.
    """
    objectives = {o.key: o for o in project.objectives.all()}
    if objective and objective not in objectives:
        raise ImportFormatError(
            f"unknown objective {objective!r}; this project has {', '.join(objectives)}", field="objective"
        )
    max_depth = settings.MORM_MAX_JSON_DEPTH
    totals = Counter()
    first_id = None
    with transaction.atomic():
        batch = ImportBatch.objects.create(
            project=project,
            filename=filename[:255],
            format=format,
            objective=objective or "",
            created_by=user,
        )

        def format_chosen(name: str) -> None:
            _check_objective_named(name, objective)
            batch.format = name

        parsed = iter_parsed(
            fileobj, format=format, objective=objective, max_bytes=max_bytes, max_depth=max_depth,
            on_format=format_chosen,
        )
        while chunk := list(itertools.islice(parsed, IMPORT_CHUNK_LINES)):
            _check_labels(chunk, objectives, only=objective)
            new = _new_comparisons(project, batch, chunk, fileobj=fileobj, max_depth=max_depth)
            rows = [_comparison(project, batch, item) for item in new]
            comparisons_ranked_on_import(project=project, comparisons=rows)
            comparisons = Comparison.objects.bulk_create(rows, batch_size=500)
            first_id = first_id or (comparisons[0].pk if comparisons else None)
            judgments, labelled = _create_labels(batch, zip(new, comparisons), objectives, only=objective)
            totals.update(lines=len(chunk), created=len(comparisons), judgments=judgments, labelled=labelled)
        comparisons_added(project=project, created=totals["created"], labelled=totals["labelled"])
        if first_id is not None:
            comparisons_imported(project=project, first_id=first_id)
        batch.created_count = totals["created"]
        batch.skipped_count = totals["lines"] - totals["created"]
        batch.label_count = totals["judgments"]
        batch.save(update_fields=["format", "created_count", "skipped_count", "label_count"])
    return batch


# Formats whose lines say which response is better but not on which objective.
PREFERENCE_FORMATS = ("trl", "hh")


def _check_objective_named(format: str, objective: str | None) -> None:
    """Refuse a trl/hh file without an objective: every preference in it would be dropped."""
    if format in PREFERENCE_FORMATS and not objective:
        raise ImportFormatError(
            f"a {format} file says which response is preferred but not on which objective; name the objective "
            f"its preferences are about (--objective), or no label would be imported",
            field="objective",
        )


def _comparison(project: Project, batch: ImportBatch, item: ParsedComparison) -> Comparison:
    return Comparison(
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
        project=project, fileobj=upload, format=format, objective=objective, filename=upload.name or "", user=user,
        max_bytes=limit,
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


def _new_comparisons(
    project: Project, batch: ImportBatch, chunk: list[ParsedComparison], *, fileobj: BinaryIO, max_depth: int
) -> list[ParsedComparison]:
    """The chunk's comparisons not yet in the project, first occurrence kept.

    Earlier chunks of the same file are already written (same transaction), so two
    indexed lookups per chunk find every duplicate without holding the file's keys. A
    line repeating an id that this file brought (earlier in the chunk, or in an earlier
    chunk: written by this batch) is an error naming both lines, not a skip: the two
    lines may differ, and skipping one would drop it silently. Ids the project had
    before are skipped, so re-importing a file stays idempotent.
    """
    ids = [item.external_id for item in chunk if item.external_id]
    batch_of_id = dict(
        project.comparisons.filter(external_id__in=ids).values_list("external_id", "import_batch_id")
    )
    hashes = [item.content_hash for item in chunk]
    seen_hashes = set(project.comparisons.filter(content_hash__in=hashes).values_list("content_hash", flat=True))
    line_of_new_id: dict[str, int] = {}
    new = []
    for item in chunk:
        if item.external_id:
            first_line = line_of_new_id.get(item.external_id)
            if first_line is None and batch_of_id.get(item.external_id) == batch.pk:
                first_line = first_line_with_id(fileobj, item.external_id, max_depth=max_depth)
            if first_line is not None:
                raise ImportFormatError(
                    f"id {describe(item.external_id)} is also on line {first_line}; an id may appear once in a file",
                    line=item.line,
                    field="id",
                )
            if item.external_id in batch_of_id:
                continue
            line_of_new_id[item.external_id] = item.line
        if item.content_hash in seen_hashes:
            continue
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
            likert_a=label.likert_a,
            likert_b=label.likert_b,
        )
        for annotation, (_, labels) in zip(annotations, labelled)
        for label in labels
    ]
    Judgment.objects.bulk_create(judgments, batch_size=2000)
    return len(judgments), len(annotations)
