"""Project statistics over REST: aggregates of everyone's labels, so admins and researchers only."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from .. import access
from ..selectors.stats import project_stats


class StatsQuerySerializer(serializers.Serializer):
    include_imported = serializers.BooleanField(
        default=False, help_text="Count imported labels in the per-objective distribution."
    )


class ProjectStats(APIView):
    """Progress, per-objective distribution, agreement and position bias, objective trade-offs, gold accuracy.

    Annotators get 403: gold accuracy names other annotators.
    """

    @extend_schema(parameters=[StatsQuerySerializer], responses={200: OpenApiTypes.OBJECT})
    def get(self, request, slug):
        project = access.project_for(request.user, slug, roles=access.DATA_ROLES)
        query = StatsQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        return Response(project_stats(project, include_imported=query.validated_data["include_imported"]))
