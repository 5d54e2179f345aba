"""Annotations (one submit, or one imported label set) and their per-objective judgments.

Choices are stored in canonical A/B orientation, whatever side the annotator saw on the
left. Signed scores read like the 7-point scale: negative means A is better, positive
means B is better, 0 is a tie; the magnitude is the strength (1 slight, 2 clear, 3 strong).
"""

from django.conf import settings
from django.db import models

from .annotation_task import Task
from .comparison import Comparison, ImportBatch
from .project import Objective


class Choice(models.TextChoices):
    A = "A", "A is better"
    B = "B", "B is better"
    TIE = "tie", "Tie"


class Annotation(models.Model):
    comparison = models.ForeignKey(Comparison, on_delete=models.CASCADE, related_name="annotations")
    annotator = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="annotations"
    )
    # Imported labels have a source instead of an annotator.
    source = models.ForeignKey(
        ImportBatch, null=True, blank=True, on_delete=models.CASCADE, related_name="annotations"
    )
    task = models.OneToOneField(Task, null=True, blank=True, on_delete=models.SET_NULL, related_name="annotation")
    flags_a = models.JSONField(default=list, blank=True)
    flags_b = models.JSONField(default=list, blank=True)
    time_spent_ms = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["comparison", "annotator"],
                condition=models.Q(annotator__isnull=False),
                name="annotation_once_per_annotator",
            ),
            models.UniqueConstraint(
                fields=["comparison", "source"],
                condition=models.Q(source__isnull=False),
                name="annotation_once_per_import",
            ),
            models.CheckConstraint(
                condition=models.Q(annotator__isnull=False, source__isnull=True)
                | models.Q(annotator__isnull=True, source__isnull=False),
                name="annotation_has_annotator_xor_source",
            ),
        ]

    def __str__(self) -> str:
        who = self.annotator or self.source
        return f"annotation {self.pk} by {who}"


class AnnotationRevision(models.Model):
    """What an annotation held before its annotator edited it: each edit keeps the values it replaced.

    ``previous`` is ``{"judgments": {objective key: {choice, strength, rationale, likert_a,
    likert_b}}, "flags_a": [...], "flags_b": [...]}`` in canonical orientation, as stored.
    """

    annotation = models.ForeignKey(Annotation, on_delete=models.CASCADE, related_name="revisions")
    editor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    edited_at = models.DateTimeField()
    previous = models.JSONField()

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"revision {self.pk} of annotation {self.annotation_id}"


class Judgment(models.Model):
    annotation = models.ForeignKey(Annotation, on_delete=models.CASCADE, related_name="judgments")
    objective = models.ForeignKey(Objective, on_delete=models.CASCADE, related_name="judgments")
    choice = models.CharField(max_length=3, choices=Choice.choices)
    # 1 slight, 2 clear, 3 strong; none for a tie, and none for an imported label that
    # only says which side won.
    strength = models.PositiveSmallIntegerField(null=True, blank=True)
    rationale = models.TextField(blank=True)
    # Likert ratings of each response on this objective, 1..7: a whole point from an annotator; an imported
    # rating may be a mean (a re-imported export's), kept exact as the imported score is.
    likert_a = models.FloatField(null=True, blank=True)
    likert_b = models.FloatField(null=True, blank=True)
    # Exact signed score -3..3 of an imported numeric label (e.g. a re-imported export's
    # mean); None for human judgments, whose score follows from choice and strength.
    score = models.FloatField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["annotation", "objective"], name="judgment_once_per_objective"),
            models.CheckConstraint(condition=models.Q(choice__in=Choice.values), name="judgment_choice_valid"),
            models.CheckConstraint(
                condition=models.Q(choice=Choice.TIE, strength__isnull=True)
                | models.Q(choice__in=[Choice.A, Choice.B], strength__isnull=True)
                | models.Q(choice__in=[Choice.A, Choice.B], strength__gte=1, strength__lte=3),
                name="judgment_strength_valid",
            ),
            models.CheckConstraint(
                condition=models.Q(score__isnull=True)
                | models.Q(choice=Choice.TIE, score=0)
                | models.Q(choice=Choice.A, score__gte=-3, score__lt=0)
                | models.Q(choice=Choice.B, score__gt=0, score__lte=3),
                name="judgment_score_matches_choice",
            ),
            models.CheckConstraint(
                condition=models.Q(likert_a__isnull=True) | models.Q(likert_a__gte=1, likert_a__lte=7),
                name="judgment_likert_a_range",
            ),
            models.CheckConstraint(
                condition=models.Q(likert_b__isnull=True) | models.Q(likert_b__gte=1, likert_b__lte=7),
                name="judgment_likert_b_range",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.objective.key}: {self.choice}{self.strength or ''}"

    @property
    def signed_score(self) -> float:
        """-3..3: negative favours A, positive favours B (see ``signed_score``)."""
        return signed_score(self.choice, self.strength, self.score)


def signed_score(choice: str, strength: int | None, score: float | None = None) -> float:
    """A judgment's position on the -3..3 scale; an unspecified strength counts as 1 (slight)."""
    if score is not None:
        return score
    if choice == Choice.TIE:
        return 0.0
    magnitude = float(strength or 1)
    return -magnitude if choice == Choice.A else magnitude
