"""Reads of an annotator's own submitted annotations (the labeling page's Back)."""

from django.contrib.auth.models import AbstractBaseUser
from django.shortcuts import get_object_or_404

from ..models import Annotation, Project, signed_score


def annotation_previous(*, project: Project, user: AbstractBaseUser, before: int | None = None) -> Annotation | None:
    """The user's latest submitted annotation in the project, or the latest one submitted before ``before``.

    Annotations are numbered as they are submitted, so walking ids down walks the user's
    submissions back. Reads the user's annotations through their annotator index. Only
    annotations with their task: the task says which side the annotator saw on the left.
    """
    annotations = Annotation.objects.filter(annotator=user, comparison__project_id=project.pk, task__isnull=False)
    if before is not None:
        annotations = annotations.filter(pk__lt=before)
    return annotations.order_by("-pk").select_related("comparison", "task").first()


def annotation_own(*, project: Project, user: AbstractBaseUser, annotation_id: int) -> Annotation:
    """One of the user's own annotations in the project; Http404 for anyone else's (a guessed id reaches nothing)."""
    return get_object_or_404(
        Annotation.objects.select_related("comparison", "task"),
        pk=annotation_id, annotator=user, comparison__project_id=project.pk, task__isnull=False,
    )


def annotation_as_shown(annotation: Annotation) -> dict:
    """The annotation's values as the judgment form's initial data, in the side order its annotator saw."""
    swapped = bool(annotation.task and annotation.task.shown_swapped)
    initial = {}
    for judgment in annotation.judgments.select_related("objective"):
        key = judgment.objective.key
        score = signed_score(judgment.choice, judgment.strength)
        initial[f"choice_{key}"] = str(int(-score if swapped else score))
        initial[f"rationale_{key}"] = judgment.rationale
        likert = (judgment.likert_b, judgment.likert_a) if swapped else (judgment.likert_a, judgment.likert_b)
        for side, value in zip("ab", likert):
            if value is not None:
                initial[f"likert_{side}_{key}"] = str(int(value))
    flags = (annotation.flags_b, annotation.flags_a) if swapped else (annotation.flags_a, annotation.flags_b)
    initial["flags_a"], initial["flags_b"] = list(flags[0]), list(flags[1])
    return initial
