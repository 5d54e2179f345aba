"""Projects (labeling campaigns), their objectives and their members."""

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

DEFAULT_FLAG_OPTIONS = ["unsafe", "factually_wrong", "refuses_needlessly"]


def default_flag_options() -> list[str]:
    return list(DEFAULT_FLAG_OPTIONS)


class Role(models.TextChoices):
    ANNOTATOR = "annotator", "Annotator"
    ADMIN = "admin", "Admin"
    RESEARCHER = "researcher", "Researcher"


class QueueOrder(models.TextChoices):
    IMPORT = "import", "Import order"
    RANDOM = "random", "Random"
    UNCERTAIN = "uncertain", "Most uncertain first (by a reward run's scores)"


class Project(models.Model):
    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    overlap_k = models.PositiveSmallIntegerField(
        default=3,
        validators=[MinValueValidator(1), MaxValueValidator(50)],
        help_text="Annotations wanted per comparison.",
    )
    lease_minutes = models.PositiveSmallIntegerField(
        default=30,
        validators=[MinValueValidator(1), MaxValueValidator(24 * 60)],
        help_text="How long a task stays reserved for the annotator who got it.",
    )
    shuffle_sides = models.BooleanField(
        default=True, help_text="Show the two responses in random order, against position bias."
    )
    ask_likert = models.BooleanField(
        default=False, help_text="Ask a 1-7 rating of each response on every objective."
    )
    ask_flags = models.BooleanField(default=False, help_text="Ask for content flags on each response.")
    flag_options = models.JSONField(default=default_flag_options, blank=True)
    gold_rate = models.FloatField(
        default=0.1,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="Share of tasks drawn from gold items while an annotator has gold items left.",
    )
    gold_pass_accuracy = models.FloatField(
        default=0.7,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="Gold accuracy below which an annotator can be excluded from exports.",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    # Maintained counts (annotate_app.services.queue), so progress never counts the project:
    # comparisons, ordinary comparisons with a free slot, ordinary comparisons with
    # overlap_k submitted annotations, and annotations imported with labels.
    comparison_count = models.PositiveIntegerField(default=0)
    open_count = models.PositiveIntegerField(default=0)
    complete_count = models.PositiveIntegerField(default=0)
    imported_label_sets = models.PositiveIntegerField(default=0)
    # Which open comparison an annotator gets first; ``uncertain`` ranks by queue_reward_run's scores.
    queue_order = models.CharField(max_length=16, choices=QueueOrder.choices, default=QueueOrder.IMPORT)
    queue_reward_run = models.ForeignKey(
        "annotate_app.RewardModelRun", null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        help_text="The succeeded reward-model run whose scores order the queue when queue_order is uncertain.",
    )
    # Where the worker stands in putting the queue in that order (services.queue_order):
    # {"order", "run", "ranked", "started_at", "finished_at"}; empty until the order first changed.
    queue_ranking = models.JSONField(default=dict, blank=True)
    # The loop (services.rounds): after every retrain_every new human annotations, a reward-model run
    # with retrain_config on a new snapshot, then optionally PPO (repolicy_config) and a generation
    # (regenerate_config). The configs are overrides of the run configs' defaults, checked like a run form.
    retrain_every = models.PositiveIntegerField(
        default=0, help_text="Queue a reward-model run after this many new human annotations; 0 turns it off."
    )
    retrain_config = models.JSONField(default=dict, blank=True)
    repolicy_config = models.JSONField(null=True, blank=True, help_text="PPO settings; empty: no PPO step.")
    regenerate_config = models.JSONField(
        null=True, blank=True, help_text="Generation settings; empty: no generation step."
    )
    # Human annotations submitted since the last automatic retrain started (maintained, never counted).
    labels_since_retrain = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(condition=models.Q(overlap_k__gte=1), name="project_overlap_k_positive"),
            models.CheckConstraint(condition=models.Q(lease_minutes__gte=1), name="project_lease_positive"),
            models.CheckConstraint(condition=models.Q(gold_rate__gte=0, gold_rate__lte=1), name="project_gold_rate"),
        ]

    def __str__(self) -> str:
        return self.name


class Objective(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="objectives")
    key = models.SlugField(max_length=64)
    name = models.CharField(max_length=100)
    guideline = models.TextField(blank=True)
    order = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["order", "id"]
        constraints = [
            models.UniqueConstraint(fields=["project", "key"], name="objective_key_unique_per_project"),
        ]

    def __str__(self) -> str:
        return f"{self.project.slug}:{self.key}"


class Membership(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=20, choices=Role.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "user"], name="membership_unique"),
            models.CheckConstraint(condition=models.Q(role__in=Role.values), name="membership_role_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.user} @ {self.project.slug} ({self.role})"
