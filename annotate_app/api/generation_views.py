"""Generations over REST: queue one, list them, read one (status, progress in prompts, counts), cancel."""

import io

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import generics, status
from rest_framework.response import Response
from rest_framework.views import APIView

from .. import access
from ..services.generations import generation_create
from ..services.runs import run_cancel
from .bodies import JSONObjectBody
from .generation_serializers import GenerationCreateSerializer, GenerationSerializer
from .run_views import QUOTA_EXCEEDED


class GenerationMixin:
    def project(self, request, slug):
        return access.project_for(request.user, slug, roles=access.DATA_ROLES)

    def generation(self, request, slug, generation_id):
        return get_object_or_404(self.project(request, slug).generations, pk=generation_id)


class GenerationListCreate(JSONObjectBody, GenerationMixin, generics.ListAPIView):
    """The project's generations, newest first, a page at a time; POST queues one."""

    serializer_class = GenerationSerializer

    def get_queryset(self):
        return self.project(self.request, self.kwargs["slug"]).generations.select_related("created_by")

    @extend_schema(request=GenerationCreateSerializer, responses={202: GenerationSerializer, 429: QUOTA_EXCEEDED})
    def post(self, request, slug):
        """Queue a generation: responses sampled from a PPO run's policy (or the base policy), one pair per prompt
        by the config's pairing, imported as new comparisons (deduplicated like any import)."""
        project = self.project(request, slug)
        data = GenerationCreateSerializer(data=request.data, context={"project": project})
        data.is_valid(raise_exception=True)
        prompts = data.validated_data["prompts"]
        generation = generation_create(
            project=project, user=request.user, policy_run=data.validated_data["policy_run"],
            reward_run=data.validated_data["reward_run"],
            prompts_file=io.BytesIO(prompts.encode("utf-8")) if prompts is not None else None,
            overrides=data.validated_data["config"],
        )
        return Response(GenerationSerializer(generation).data, status=status.HTTP_202_ACCEPTED)


class GenerationDetail(GenerationMixin, APIView):
    @extend_schema(responses=GenerationSerializer)
    def get(self, request, slug, generation_id):
        return Response(GenerationSerializer(self.generation(request, slug, generation_id)).data)


class GenerationCancel(GenerationMixin, APIView):
    """Cancel a generation: a queued one at once, a running one between batches (it imports nothing)."""

    @extend_schema(request=None, responses=GenerationSerializer)
    def post(self, request, slug, generation_id):
        return Response(GenerationSerializer(run_cancel(run=self.generation(request, slug, generation_id))).data)
