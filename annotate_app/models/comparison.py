"""Comparisons (a prompt and two responses) and the import batches that created them."""

from django.conf import settings
from django.db import models

from .project import Project


class ImportBatch(models.Model):
    """One imported file: where comparisons and imported labels came from."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="import_batches")
    filename = models.CharField(max_length=255, blank=True)
    format = models.CharField(max_length=16)
    objective = models.CharField(max_length=64, blank=True)
    created_count = models.PositiveIntegerField(default=0)
    skipped_count = models.PositiveIntegerField(default=0)
    label_count = models.PositiveIntegerField(default=0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "import batches"

    def __str__(self) -> str:
        return f"{self.format}:{self.filename or self.pk}"


class Comparison(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="comparisons")
    external_id = models.CharField(max_length=255, blank=True)
    # Plain text, or chat turns [{"role": ..., "content": ...}] exactly as imported.
    prompt = models.JSONField()
    response_a = models.TextField()
    response_b = models.TextField()
    model_a = models.CharField(max_length=200, blank=True)
    model_b = models.CharField(max_length=200, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    # sha256 of (prompt, sorted responses): the same pair with sides swapped is the same comparison.
    content_hash = models.CharField(max_length=64)
    # Gold items have known answers; they are mixed into every annotator's queue (no
    # overlap cap) to measure annotator accuracy, and are never marked as such on screen.
    is_gold = models.BooleanField(default=False)
    # No angle brackets in the help: the admin renders help text as HTML.
    gold_expected = models.JSONField(
        default=dict, blank=True,
        help_text='The expected choice per objective, "A", "B" or "tie" with A the first response as imported '
                  '(canonical orientation), e.g. {"helpful": "A", "harmless": "tie"}.',
    )
    import_batch = models.ForeignKey(
        ImportBatch, null=True, blank=True, on_delete=models.SET_NULL, related_name="comparisons"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    # Queue counters, kept by the queue services in the transaction that changes a task
    # (annotate_app.services.queue): tasks holding a slot (submitted, or leased and not yet
    # reclaimed), submitted human annotations, and whether every one of the project's
    # overlap_k slots is held. ``is_full`` repeats what the counters say so that the partial
    # index below holds exactly the comparisons an annotator may still be handed.
    slots_held = models.PositiveIntegerField(default=0)
    submitted_count = models.PositiveIntegerField(default=0)
    is_full = models.BooleanField(default=False)
    # Where the comparison stands in the project's queue (lowest first, then by id), set by the
    # project's ``queue_order`` (annotate_app.services.queue_order): 0 for every comparison in import
    # order, a random number in [0, 1) in random order, the reward model's smallest normalized margin
    # in uncertain order (0 until scored). Never shown to annotators. A database default too, so rows
    # inserted by hand (bulk SQL) take their place in import order.
    queue_rank = models.FloatField(default=0.0, db_default=0.0)

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(
                fields=["project", "queue_rank", "id"], condition=models.Q(is_full=False, is_gold=False),
                name="comparison_open_queue_ranked",
            ),
            models.Index(fields=["project", "id"], condition=models.Q(is_gold=True), name="comparison_gold_items"),
            # The comparison browser's keyset pages (annotate_app.selectors.comparisons): a page walks one of
            # these from its cursor and stops after a page of rows, instead of sorting the whole project.
            models.Index(fields=["project", "id"], name="comparison_project_id"),
            models.Index(fields=["project", "submitted_count", "id"], name="comparison_project_submitted"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["project", "external_id"],
                condition=~models.Q(external_id=""),
                name="comparison_external_id_unique_per_project",
            ),
            models.UniqueConstraint(
                fields=["project", "content_hash"], name="comparison_content_unique_per_project"
            ),
        ]

    def __str__(self) -> str:
        return self.external_id or f"comparison {self.pk}"

    @property
    def prompt_turns(self) -> list[dict]:
        """The prompt as chat turns; a plain-text prompt is one user turn."""
        if isinstance(self.prompt, str):
            return [{"role": "user", "content": self.prompt}]
        return list(self.prompt)
