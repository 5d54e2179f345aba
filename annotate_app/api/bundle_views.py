"""Export for training over REST: a succeeded reward run as a bundle for TRL, verl or OpenRLHF (services.bundles)."""

from django.http import FileResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.views import APIView

from ..services.bundles import PROMPT_SOURCES, TARGETS, run_bundle_archive
from .bodies import JSONObjectBody
from .run_views import RunKindMixin
from .schema import error_response


class RunBundleSerializer(serializers.Serializer):
    target = serializers.ChoiceField(choices=TARGETS, help_text="The framework that trains with the bundle.")
    weights = serializers.DictField(
        child=serializers.FloatField(), required=False, default=dict,
        help_text="{objective: weight} over the house weights (helpful 0.40, harmless 0.45, honest 0.15, others 1).")
    prompts = serializers.ChoiceField(choices=PROMPT_SOURCES, default="project",
                                      help_text="The project's prompts (PPO's) or the run's training snapshot's.")
    reward_url = serializers.URLField(required=False, default="", allow_blank=True,
                                      help_text="openrlhf: the served reward model's URL; the model is not copied.")


class RunBundle(JSONObjectBody, RunKindMixin, APIView):
    """POST: the bundle as a .tar.gz download, built in the request (model folders up to
    MORM_BUNDLE_MAX_MODEL_BYTES; larger ones with ``manage.py export_bundle``)."""

    @extend_schema(request=RunBundleSerializer, responses={
        (200, "application/gzip"): OpenApiResponse(OpenApiTypes.BINARY, description="The bundle, a .tar.gz."),
        400: error_response("A bad field, a run that has not succeeded, or a model over the size limit."),
    })
    def post(self, request, slug, run_id):
        run = self.run(request, slug, run_id)
        data = RunBundleSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        archive, name = run_bundle_archive(project=run.project, reward_run=run, **data.validated_data)
        return FileResponse(archive, as_attachment=True, filename=name, content_type="application/gzip")
