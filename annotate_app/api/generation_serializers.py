"""API shapes of generations (new comparisons sampled from a policy). No business logic: the service checks
meaning."""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from rm_worker.training.generation import GenerationConfig

from ..models import Generation, PolicyRun
from ..services.generations import PROMPTS_MAX_BYTES
from .schema import config_overrides_schema
from .serializers import ProjectRewardRunField


class ProjectPolicyRunField(serializers.PrimaryKeyRelatedField):
    """A PPO run by id, among the runs of the project in the serializer's context only (another project's run
    is as unknown as a missing one: 400 naming the field)."""

    def __init__(self, **kwargs):
        super().__init__(queryset=PolicyRun.objects.all(), **kwargs)

    def get_queryset(self):
        return super().get_queryset().filter(project=self.context["project"])


@extend_schema_field(config_overrides_schema(GenerationConfig))
class GenerationConfigField(serializers.DictField):
    """GenerationConfig overrides, documented from its schema; the service validates them."""


class GenerationCreateSerializer(serializers.Serializer):
    policy_run = ProjectPolicyRunField(
        required=False, allow_null=True, default=None,
        help_text="A succeeded PPO run of this project whose adapters sample; null: the base policy.",
    )
    reward_run = ProjectRewardRunField(
        required=False, allow_null=True, default=None,
        help_text="A succeeded reward-model run of this project that scores the responses (max_min and uncertain "
                  "need one).",
    )
    prompts = serializers.CharField(
        required=False, allow_null=True, default=None, trim_whitespace=False, max_length=PROMPTS_MAX_BYTES,
        help_text='A prompt file\'s text: one {"prompt": text or chat turns} or plain text per line. Null: the '
                  "project's prompts without those PPO holds out (unless config include_heldout_prompts).",
    )
    config = GenerationConfigField(required=False, default=dict)


class GenerationSerializer(serializers.ModelSerializer):
    created = serializers.IntegerField(source="created_count", help_text="New comparisons imported.")
    skipped = serializers.IntegerField(
        source="skipped_count", help_text="Generated pairs the project had already (same prompt and responses)."
    )
    created_by = serializers.CharField(source="created_by.username", default=None, allow_null=True)

    class Meta:
        model = Generation
        fields = ["id", "status", "policy_run", "reward_run", "config", "step", "total_steps", "stage",
                  "cancel_requested", "created", "skipped", "import_batch", "final_metrics", "error", "created_by",
                  "created_at", "started_at", "finished_at", "attempts", "heartbeat_at"]
        extra_kwargs = {"step": {"help_text": "Prompts sampled so far."},
                        "total_steps": {"help_text": "Prompts to sample."}}
