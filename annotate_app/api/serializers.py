"""API shapes. No business logic: validation of meaning lives in the services."""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from rm_worker.training.config import RewardModelConfig
from rm_worker.training.ppo_config import PPOConfig

from ..importers import FORMATS
from ..models import (
    Choice,
    ImportBatch,
    Membership,
    Objective,
    PolicyRun,
    PolicySample,
    Project,
    QueueOrder,
    RewardModelRun,
    Role,
    RunStatus,
    Snapshot,
    SnapshotFormat,
    Task,
    TaskStatus,
    Webhook,
    WebhookDelivery,
    WebhookEvent,
)
from ..selectors.queue import Progress, objectives_shown
from ..services.annotations import TIME_SPENT_MS_MAX
from .schema import config_overrides_schema


class ObjectiveSerializer(serializers.ModelSerializer):
    class Meta:
        model = Objective
        fields = ["key", "name", "guideline", "order"]


class ProjectSerializer(serializers.ModelSerializer):
    objectives = ObjectiveSerializer(many=True, read_only=True)

    class Meta:
        model = Project
        fields = [
            "slug", "name", "description", "overlap_k", "lease_minutes", "shuffle_sides",
            "ask_likert", "ask_flags", "flag_options", "gold_rate", "gold_pass_accuracy", "objectives", "created_at",
        ]


class ObjectiveInputSerializer(serializers.Serializer):
    key = serializers.SlugField(max_length=64)
    name = serializers.CharField(max_length=100)
    guideline = serializers.CharField(required=False, allow_blank=True, default="")


class ProjectCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    slug = serializers.SlugField(max_length=64, required=False, allow_blank=True, default="")
    description = serializers.CharField(required=False, allow_blank=True, default="")
    objectives = ObjectiveInputSerializer(many=True, required=False)
    overlap_k = serializers.IntegerField(min_value=1, max_value=50, default=3)
    lease_minutes = serializers.IntegerField(min_value=1, max_value=24 * 60, default=30)
    shuffle_sides = serializers.BooleanField(default=True)
    ask_likert = serializers.BooleanField(default=False)
    ask_flags = serializers.BooleanField(default=False)
    flag_options = serializers.ListField(child=serializers.SlugField(), required=False)
    gold_rate = serializers.FloatField(min_value=0, max_value=1, default=0.1)
    gold_pass_accuracy = serializers.FloatField(min_value=0, max_value=1, default=0.7)


class MembershipInputSerializer(serializers.Serializer):
    username = serializers.CharField()
    role = serializers.ChoiceField(choices=Role.choices)


class MembershipSerializer(serializers.ModelSerializer):
    username = serializers.CharField(source="user.username")

    class Meta:
        model = Membership
        fields = ["username", "role", "created_at"]


class ImportInputSerializer(serializers.Serializer):
    file = serializers.FileField()
    format = serializers.ChoiceField(choices=["auto", *FORMATS], default="auto")
    objective = serializers.SlugField(
        required=False, allow_blank=True, default="",
        help_text="Required for trl/hh files: the objective their preferences are about (a 400 without it). "
                  "For native/pku: import only this objective's labels.",
    )


class ImportBatchSerializer(serializers.ModelSerializer):
    created = serializers.IntegerField(source="created_count")
    skipped = serializers.IntegerField(source="skipped_count")
    labels = serializers.IntegerField(source="label_count")

    class Meta:
        model = ImportBatch
        fields = ["id", "filename", "format", "objective", "created", "skipped", "labels", "created_at"]


class ShownResponseSerializer(serializers.Serializer):
    label = serializers.CharField()
    text = serializers.CharField()


class ProgressSerializer(serializers.Serializer):
    done = serializers.IntegerField()
    remaining = serializers.IntegerField()


class TaskSerializer(serializers.Serializer):
    """A task as its annotator sees it: responses in shown order, labeled A (left) and B.

    The canonical orientation and model names are never sent, so they cannot bias the
    annotator; submits are in the shown orientation and the service maps them back.
    Documents the shape (OpenAPI); ``task_payload`` builds it, without a serializer's
    per-field machinery, because every ``tasks/next`` returns one.
    """

    id = serializers.IntegerField()
    project = serializers.CharField()
    status = serializers.ChoiceField(choices=TaskStatus.choices)
    prompt = serializers.ListField(child=serializers.DictField())
    responses = ShownResponseSerializer(many=True)
    objectives = ObjectiveSerializer(many=True)
    ask_likert = serializers.BooleanField()
    flag_options = serializers.ListField(child=serializers.CharField())
    expires_at = serializers.DateTimeField()
    progress = ProgressSerializer(required=False, help_text="The caller's progress (``tasks/next`` only).")


_DATETIME = serializers.DateTimeField()


def task_payload(task: Task, progress: Progress | None = None, objectives: list[dict] | None = None) -> dict:
    """The ``TaskSerializer`` shape of a task whose comparison and project are loaded (``objectives`` as
    ``objectives_shown`` gives them, if already read)."""
    comparison, project = task.comparison, task.project
    texts = [comparison.response_a, comparison.response_b]
    if task.shown_swapped:
        texts.reverse()
    payload = {
        "id": task.pk,
        "project": project.slug,
        "status": task.status,
        "prompt": comparison.prompt_turns,
        "responses": [{"label": "A", "text": texts[0]}, {"label": "B", "text": texts[1]}],
        "objectives": objectives_shown(project) if objectives is None else objectives,
        "ask_likert": project.ask_likert,
        "flag_options": project.flag_options if project.ask_flags else [],
        "expires_at": _DATETIME.to_representation(task.expires_at),
    }
    if progress is not None:
        payload["progress"] = {"done": progress.done, "remaining": progress.remaining}
    return payload


class JudgmentInputSerializer(serializers.Serializer):
    choice = serializers.ChoiceField(choices=Choice.values)
    strength = serializers.IntegerField(required=False, allow_null=True, default=None)
    rationale = serializers.CharField(required=False, allow_blank=True, default="", max_length=10000)
    likert_a = serializers.IntegerField(required=False, allow_null=True, default=None)
    likert_b = serializers.IntegerField(required=False, allow_null=True, default=None)


class SubmitInputSerializer(serializers.Serializer):
    judgments = serializers.DictField(child=JudgmentInputSerializer(), allow_empty=False)
    flags_a = serializers.ListField(child=serializers.CharField(), required=False, default=list)
    flags_b = serializers.ListField(child=serializers.CharField(), required=False, default=list)
    time_spent_ms = serializers.IntegerField(
        required=False, allow_null=True, default=None, min_value=0, max_value=TIME_SPENT_MS_MAX
    )


class SubmittedJudgmentSerializer(serializers.Serializer):
    """A judgment echoed back to its annotator, in the orientation they saw."""

    objective = serializers.CharField()
    choice = serializers.CharField()
    strength = serializers.IntegerField(allow_null=True)
    rationale = serializers.CharField()


class AnnotationResultSerializer(serializers.Serializer):
    annotation_id = serializers.IntegerField()
    task_id = serializers.IntegerField()
    created = serializers.BooleanField()
    judgments = SubmittedJudgmentSerializer(many=True)


class SnapshotCreateSerializer(serializers.Serializer):
    format = serializers.ChoiceField(choices=SnapshotFormat.choices)
    objective = serializers.SlugField(required=False, allow_blank=True, default="")
    objectives = serializers.ListField(child=serializers.SlugField(), required=False, default=list)
    min_annotations = serializers.IntegerField(min_value=1, default=1)
    min_agreement = serializers.FloatField(min_value=0, max_value=1, default=0.0)
    include_imported = serializers.BooleanField(default=True)
    exclude_failing_gold = serializers.BooleanField(default=False)
    gold_threshold = serializers.FloatField(min_value=0, max_value=1, required=False, allow_null=True, default=None)
    margin = serializers.BooleanField(default=False)


class SnapshotSerializer(serializers.ModelSerializer):
    created_by = serializers.CharField(source="created_by.username", default=None, allow_null=True)

    class Meta:
        model = Snapshot
        fields = ["id", "format", "objective", "filters", "status", "judgments_total", "judgments_read", "sha256",
                  "size_bytes", "manifest", "error", "created_by", "created_at", "finished_at", "attempts",
                  "heartbeat_at"]


class GoldInputSerializer(serializers.Serializer):
    expected = serializers.DictField(child=serializers.ChoiceField(choices=Choice.values), allow_empty=False)


class ProjectRewardRunField(serializers.PrimaryKeyRelatedField):
    """A reward-model run by id, among the runs of the project in the serializer's context only:
    another project's run is as unknown as a missing one (400 naming the field)."""

    def __init__(self, **kwargs):
        super().__init__(queryset=RewardModelRun.objects.all(), **kwargs)

    def get_queryset(self):
        return super().get_queryset().filter(project=self.context["project"])


@extend_schema_field(config_overrides_schema(RewardModelConfig))
class RewardConfigField(serializers.DictField):
    """RewardModelConfig overrides, documented from its schema (description included); the service validates them."""


@extend_schema_field(config_overrides_schema(PPOConfig))
class PPOConfigField(serializers.DictField):
    """PPOConfig overrides, documented from its schema (description included); the service validates them."""


class RewardRunCreateSerializer(serializers.Serializer):
    snapshot = serializers.IntegerField(required=False, allow_null=True, default=None)
    init_heads_run = ProjectRewardRunField(
        required=False, allow_null=True, default=None,
        help_text="A succeeded reward-model run of this project whose heads start this run's (e.g. frozen, then "
                  "multi_head).",
    )
    config = RewardConfigField(required=False, default=dict)


class RewardRunSerializer(serializers.ModelSerializer):
    snapshot_sha256 = serializers.CharField(source="snapshot.sha256")
    created_by = serializers.CharField(source="created_by.username", default=None, allow_null=True)

    class Meta:
        model = RewardModelRun
        fields = ["id", "status", "snapshot", "snapshot_sha256", "init_heads_run", "config", "step", "total_steps",
                  "cancel_requested", "final_metrics", "data_report", "error", "created_by", "created_at",
                  "started_at", "finished_at", "attempts", "resumed_from_step", "heartbeat_at", "stage",
                  "seconds_per_step", "step_at"]


class PolicyRunCreateSerializer(serializers.Serializer):
    reward_run = ProjectRewardRunField(help_text="A succeeded reward-model run of this project.")
    config = PPOConfigField(required=False, default=dict)


class ProjectSettingsSerializer(serializers.Serializer):
    """A project's settings (``PATCH projects/{slug}/``): send any of them. Shapes only; the service checks the
    rest (an overlap_k change, the uncertain order's run, each config against its schema)."""

    name = serializers.CharField(max_length=200)
    description = serializers.CharField(allow_blank=True)
    overlap_k = serializers.IntegerField(
        min_value=1, max_value=50, help_text="Annotations wanted per comparison; fixed once the project has some.")
    lease_minutes = serializers.IntegerField(min_value=1, max_value=24 * 60)
    shuffle_sides = serializers.BooleanField()
    ask_likert = serializers.BooleanField()
    ask_flags = serializers.BooleanField()
    gold_rate = serializers.FloatField(min_value=0, max_value=1)
    gold_pass_accuracy = serializers.FloatField(min_value=0, max_value=1)
    queue_order = serializers.ChoiceField(choices=QueueOrder.choices)
    queue_reward_run = ProjectRewardRunField(
        allow_null=True, help_text="The succeeded reward-model run whose scores order the queue (uncertain order).")
    retrain_every = serializers.IntegerField(
        min_value=0, max_value=10**9, help_text="Start a round after this many new human annotations; 0: off.")
    retrain_config = RewardConfigField(help_text="The reward-model settings of each round's run ({}: the defaults).")
    repolicy_config = PPOConfigField(
        allow_null=True, help_text="PPO settings (weights too) of a run on each round's reward model; null: none.")
    regenerate_config = serializers.DictField(
        allow_null=True, help_text="Generation settings for each round's PPO policy; null: no generation step.")

    def validate(self, attrs):
        unknown = sorted(set(self.initial_data) - set(self.fields))
        if unknown:
            raise serializers.ValidationError({field: "Not a setting that can be changed." for field in unknown})
        return attrs


class PolicyRunSerializer(serializers.ModelSerializer):
    created_by = serializers.CharField(source="created_by.username", default=None, allow_null=True)

    class Meta:
        model = PolicyRun
        fields = ["id", "status", "reward_run", "config", "step", "total_steps", "cancel_requested", "final_metrics",
                  "eval_before", "eval_after", "error", "created_by", "created_at", "started_at", "finished_at",
                  "attempts", "resumed_from_step", "heartbeat_at", "stage", "seconds_per_step", "step_at"]


_WEIGHT = {"type": "number", "minimum": 0}


@extend_schema_field({
    "type": "object",
    "description": "The weight vectors to sweep, in one of three shapes: per-objective values (every "
                   "combination), a simplex step (every vector of multiples of it summing to 1 over `objectives`, "
                   "default all, the others 0), or a list of vectors. At most MORM_MAX_SWEEP_RUNS vectors; "
                   "objectives a vector leaves out weigh what config.weights, else the default, gives them.",
    "oneOf": [
        {"type": "object", "required": ["values"], "additionalProperties": False, "properties": {
            "values": {"type": "object", "additionalProperties": {"type": "array", "items": _WEIGHT, "minItems": 1},
                       "example": {"helpful": [0.2, 0.5, 0.8], "harmless": [0.2, 0.8]}}}},
        {"type": "object", "required": ["simplex_step"], "additionalProperties": False, "properties": {
            "simplex_step": {"type": "number", "exclusiveMinimum": True, "minimum": 0, "maximum": 1,
                             "example": 0.25},
            "objectives": {"type": "array", "items": {"type": "string"}, "minItems": 1}}},
        {"type": "object", "required": ["weights"], "additionalProperties": False, "properties": {
            "weights": {"type": "array", "minItems": 1, "items": {"type": "object", "additionalProperties": _WEIGHT}}}},
    ],
})
class SweepGridField(serializers.DictField):
    """A weight sweep's grid (services.policy_sweeps); the service validates it."""


class PolicySweepCreateSerializer(serializers.Serializer):
    reward_run = ProjectRewardRunField(help_text="A succeeded reward-model run of this project.")
    grid = SweepGridField()
    name = serializers.CharField(required=False, default="", allow_blank=True, max_length=200)
    config = PPOConfigField(required=False, default=dict, help_text="PPO settings shared by every run of the sweep.")


class PolicySweepSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    reward_run = serializers.IntegerField(source="reward_run_id")
    grid = serializers.JSONField()
    runs = serializers.SerializerMethodField(help_text="The ids of the sweep's PPO runs, one per weight vector.")
    created_at = serializers.DateTimeField()

    def get_runs(self, sweep) -> list[int]:
        return sorted(run.pk for run in sweep.runs.all())


class ParetoSerializer(serializers.Serializer):
    """selectors.tradeoffs.Volume: the front of a sweep's succeeded runs and its hypervolume."""

    objectives = serializers.ListField(child=serializers.CharField(),
                                       help_text="The objectives every succeeded run has, all maximized.")
    reference = serializers.ListField(
        child=serializers.FloatField(),
        help_text="The reference point, per objective: the reference policy's mean normalized held-out reward "
                  "(adapters off), the lowest of the runs' where they differ.")
    front = serializers.ListField(child=serializers.IntegerField(),
                                  help_text="Ids of the runs no other run beats on every objective at once.")
    hypervolume = serializers.FloatField(
        source="value", allow_null=True,
        help_text="The volume the front dominates above the reference point, over the objectives (mean normalized "
                  "held-out rewards); null when too costly to compute exactly (many objectives and front runs).")


class PolicySweepDetailSerializer(PolicySweepSerializer):
    pareto = ParetoSerializer(allow_null=True, help_text="Null until one of the sweep's runs has succeeded.")


class MetricsQuerySerializer(serializers.Serializer):
    since = serializers.IntegerField(required=False, help_text="Only points with a step after this one.")


class RunMetricsSerializer(serializers.Serializer):
    """A chunk of a run's metric points, with the run's status and progress."""

    status = serializers.ChoiceField(choices=RunStatus.choices)
    step = serializers.IntegerField()
    total_steps = serializers.IntegerField(help_text="0 while not known yet (before the worker read the data).")
    stage = serializers.CharField(help_text='What the worker is doing ("loading backbone", "training", ...); '
                                            'empty unless running.')
    eta_seconds = serializers.FloatField(
        allow_null=True,
        help_text="Seconds left: the remaining steps at the moving average of the recent step times, less the time "
                  "spent on the current step; null before the first step and unless running.",
    )
    cancel_requested = serializers.BooleanField(help_text="A cancel was asked for; a running run stops between steps.")
    metrics = serializers.DictField(
        child=serializers.ListField(child=serializers.ListField(child=serializers.FloatField())),
        help_text="{key: [[step, value], ...]} in step order; whole steps only.",
    )
    next = serializers.URLField(
        allow_null=True,
        help_text="The rest of the points when this chunk stopped at the size limit (same query, a later since); "
                  "null when this chunk reached the last point logged.",
    )


class ProportionSerializer(serializers.Serializer):
    """A share with its 95% Wilson score interval; rate, low and high are null when n is 0."""

    rate = serializers.FloatField(allow_null=True)
    low = serializers.FloatField(allow_null=True)
    high = serializers.FloatField(allow_null=True)
    hits = serializers.IntegerField()
    n = serializers.IntegerField()


class ReliabilityBinSerializer(serializers.Serializer):
    low = serializers.FloatField(help_text="The bin covers predicted P(A preferred) from low to high.")
    high = serializers.FloatField()
    count = serializers.IntegerField(help_text="Pairs whose prediction falls in the bin.")
    mean_predicted = serializers.FloatField(allow_null=True, help_text="Mean σ(r_A − r_B); null when empty.")
    observed = serializers.FloatField(allow_null=True, help_text="Share of them labeled A; null when empty.")


class CalibrationSerializer(serializers.Serializer):
    ece = serializers.FloatField(allow_null=True, help_text="Count-weighted mean |observed − mean predicted|.")
    bins = ReliabilityBinSerializer(many=True)


class AgreementSerializer(serializers.Serializer):
    pairs = serializers.IntegerField(help_text="Pairs with an annotator's judgment (ties left out).")
    model_annotator = ProportionSerializer(help_text="Judgments whose side the head prefers.")
    annotator_annotator = ProportionSerializer(
        help_text="Two judgments of one pair by different annotators choosing the same side: the ceiling.")
    model_annotator_same_pairs = ProportionSerializer(
        help_text="model_annotator on the pairs annotator_annotator counts, to read next to it.")


class CorrelationSerializer(serializers.Serializer):
    pearson = serializers.FloatField(allow_null=True)
    spearman = serializers.FloatField(allow_null=True)
    n = serializers.IntegerField(help_text="Responses (both sides of every pair).")


class ObjectiveReportSerializer(serializers.Serializer):
    accuracy = ProportionSerializer(help_text="Pairs labeled with a side whose chosen response has the higher reward.")
    ties = serializers.IntegerField(help_text="Pairs labeled as a tie, not scored.")
    calibration = CalibrationSerializer()
    agreement = AgreementSerializer()
    length_correlation = CorrelationSerializer(help_text="The head's reward against the response length.")


class HeadCorrelationSerializer(serializers.Serializer):
    objectives = serializers.ListField(child=serializers.CharField(), help_text="Row and column order.")
    pearson = serializers.ListField(child=serializers.ListField(child=serializers.FloatField(allow_null=True)))
    spearman = serializers.ListField(child=serializers.ListField(child=serializers.FloatField(allow_null=True)))


class ReportSerializer(serializers.Serializer):
    """How far to trust the model: rm_worker.training.report.reward_model_report on the run's held-out pairs."""

    pairs = serializers.IntegerField()
    length_unit = serializers.CharField()
    objectives = serializers.DictField(child=ObjectiveReportSerializer())
    head_correlation = HeadCorrelationSerializer()


class RewardRunReportSerializer(serializers.Serializer):
    run = serializers.IntegerField()
    status = serializers.ChoiceField(choices=RunStatus.choices)
    report = ReportSerializer(
        allow_null=True,
        help_text="Null until the run succeeds, and for a run that held no pairs out (eval_fraction 0).",
    )


class PolicySampleSerializer(serializers.ModelSerializer):
    class Meta:
        model = PolicySample
        fields = ["step", "prompt", "response", "rewards", "normalized", "combined"]


class CurrentUserSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()


class AnnotationEditInputSerializer(serializers.Serializer):
    """A new version of one's own annotation, in the orientation the task was shown (as submitted)."""

    judgments = serializers.DictField(child=JudgmentInputSerializer(), allow_empty=False)
    flags_a = serializers.ListField(child=serializers.CharField(), required=False, default=list)
    flags_b = serializers.ListField(child=serializers.CharField(), required=False, default=list)


class ShownJudgmentSerializer(SubmittedJudgmentSerializer):
    likert_a = serializers.IntegerField(allow_null=True)
    likert_b = serializers.IntegerField(allow_null=True)


class OwnAnnotationSerializer(serializers.Serializer):
    """One's own annotation as one saw the task: A is the response shown on the left."""

    annotation_id = serializers.IntegerField()
    task_id = serializers.IntegerField()
    project = serializers.CharField(help_text="The project's slug.")
    created_at = serializers.DateTimeField()
    judgments = ShownJudgmentSerializer(many=True)
    flags_a = serializers.ListField(child=serializers.CharField())
    flags_b = serializers.ListField(child=serializers.CharField())
    revisions = serializers.IntegerField(help_text="Edits so far; each kept the values it replaced.")


class WebhookCreateSerializer(serializers.Serializer):
    url = serializers.CharField(
        max_length=2000,
        help_text="http(s) URL the events are POSTed to; its host must resolve to public addresses unless the "
                  "operator set MORM_WEBHOOKS_ALLOW_PRIVATE=1.",
    )
    events = serializers.ListField(
        child=serializers.ChoiceField(choices=WebhookEvent.choices), allow_empty=False, max_length=len(WebhookEvent)
    )


class WebhookSerializer(serializers.ModelSerializer):
    events = serializers.ListField(child=serializers.ChoiceField(choices=WebhookEvent.choices))

    class Meta:
        model = Webhook
        fields = ["id", "url", "events", "active", "created_at"]


class WebhookCreatedSerializer(WebhookSerializer):
    secret = serializers.CharField(
        help_text="whsec_ + base64 of the key that signs every delivery (Standard Webhooks); shown this once."
    )

    class Meta(WebhookSerializer.Meta):
        fields = [*WebhookSerializer.Meta.fields, "secret"]


class WebhookUpdateSerializer(serializers.Serializer):
    active = serializers.BooleanField(help_text="false pauses the webhook (its pending retries are dropped).")


class WebhookDeliverySerializer(serializers.ModelSerializer):
    class Meta:
        model = WebhookDelivery
        fields = [
            "id", "message_id", "event", "attempt", "status", "response_status", "response_body", "error",
            "duration_ms", "next_attempt_at", "sent_at", "finished_at", "payload",
        ]
