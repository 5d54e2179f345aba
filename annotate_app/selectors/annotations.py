"""Reads of an annotator's own submitted annotations (the labeling page's Back)."""

from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser
from django.http import Http404
from django.shortcuts import get_object_or_404

from .. import access
from ..models import Annotation, Project, signed_score
from ..scale import choice_from_score


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


def annotation_own(*, user: AbstractBaseUser, annotation_id: int, project: Project | None = None) -> Annotation:
    """One of the user's own annotations (in ``project`` when given) in a project they are still a member of.

    Http404 for anyone else's, or once they left its project: a guessed id reaches nothing.
    """
    annotations = Annotation.objects.select_related("comparison__project", "task").filter(
        pk=annotation_id, annotator_id=user.pk, task__isnull=False)
    if project is not None:
        annotations = annotations.filter(comparison__project_id=project.pk)
    annotation = get_object_or_404(annotations)
    if project is None and access.project_role(user, annotation.comparison.project) is None:
        raise Http404("No such annotation.")
    return annotation


@dataclass(frozen=True)
class ShownAnnotation:
    """An annotation as its annotator saw the task: A is the response shown on the left."""

    judgments: list[dict]  # {objective, choice, strength, rationale, likert_a, likert_b}, objective order
    flags_a: list[str]
    flags_b: list[str]


def annotation_shown(annotation: Annotation) -> ShownAnnotation:
    """The annotation's judgments and flags mirrored into the side order its annotator saw."""
    swapped = bool(annotation.task and annotation.task.shown_swapped)
    judgments = []
    for judgment in annotation.judgments.select_related("objective").order_by("objective__order", "objective_id"):
        likert = (judgment.likert_b, judgment.likert_a) if swapped else (judgment.likert_a, judgment.likert_b)
        judgments.append({
            "objective": judgment.objective.key,
            # Mirroring negates the score; the strength stays.
            "choice": choice_from_score(-judgment.signed_score)[0] if swapped else str(judgment.choice),
            "strength": judgment.strength,
            "rationale": judgment.rationale,
            "likert_a": None if likert[0] is None else int(likert[0]),
            "likert_b": None if likert[1] is None else int(likert[1]),
        })
    flags = (annotation.flags_b, annotation.flags_a) if swapped else (annotation.flags_a, annotation.flags_b)
    return ShownAnnotation(judgments=judgments, flags_a=list(flags[0]), flags_b=list(flags[1]))


def annotation_as_shown(annotation: Annotation) -> dict:
    """The annotation's values as the judgment form's initial data, in the side order its annotator saw."""
    shown = annotation_shown(annotation)
    initial = {"flags_a": shown.flags_a, "flags_b": shown.flags_b}
    for judgment in shown.judgments:
        key = judgment["objective"]
        initial[f"choice_{key}"] = str(int(signed_score(judgment["choice"], judgment["strength"])))
        initial[f"rationale_{key}"] = judgment["rationale"]
        for side in ("a", "b"):
            if judgment[f"likert_{side}"] is not None:
                initial[f"likert_{side}_{key}"] = str(judgment[f"likert_{side}"])
    return initial
