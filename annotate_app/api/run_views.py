"""Reward-model runs over REST: create, list, detail, metrics since a step, cancel."""

from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from .. import access
from ..selectors.runs import run_metrics
from ..services.reward_runs import reward_run_create
from ..services.runs import run_cancel
from .serializers import RewardRunCreateSerializer, RewardRunSerializer


def _run(request, slug, run_id):
    project = access.project_for(request.user, slug, roles=access.DATA_ROLES)
    return get_object_or_404(project.reward_runs.select_related("snapshot"), pk=run_id)


class RewardRunListCreate(APIView):
    @extend_schema(responses=RewardRunSerializer(many=True))
    def get(self, request, slug):
        project = access.project_for(request.user, slug, roles=access.DATA_ROLES)
        return Response(RewardRunSerializer(project.reward_runs.select_related("snapshot"), many=True).data)

    @extend_schema(request=RewardRunCreateSerializer, responses={202: RewardRunSerializer})
    def post(self, request, slug):
        """Queue a run: on ``snapshot`` if given, else on a new snapshot of the latest labels."""
        project = access.project_for(request.user, slug, roles=access.DATA_ROLES)
        data = RewardRunCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        snapshot = None
        if data.validated_data.get("snapshot") is not None:
            snapshot = get_object_or_404(project.snapshots, pk=data.validated_data["snapshot"])
        run = reward_run_create(project=project, snapshot=snapshot, overrides=data.validated_data["config"],
                                user=request.user)
        return Response(RewardRunSerializer(run).data, status=status.HTTP_202_ACCEPTED)


class RewardRunDetail(APIView):
    @extend_schema(responses=RewardRunSerializer)
    def get(self, request, slug, run_id):
        return Response(RewardRunSerializer(_run(request, slug, run_id)).data)


class RewardRunMetrics(APIView):
    """Metric points as {key: [[step, value], ...]}; ``since`` returns only later steps."""

    @extend_schema(
        parameters=[OpenApiParameter("since", int, description="Only points with a step after this one.")],
        responses=OpenApiTypes.OBJECT,
    )
    def get(self, request, slug, run_id):
        run = _run(request, slug, run_id)
        since = request.query_params.get("since")
        if since is not None and not since.lstrip("-").isdigit():
            return Response({"detail": "since must be an integer step."}, status=status.HTTP_400_BAD_REQUEST)
        return Response({"status": run.status, "step": run.step, "total_steps": run.total_steps,
                         "metrics": run_metrics(run, since_step=int(since) if since is not None else None)})


class RewardRunCancel(APIView):
    @extend_schema(request=None, responses=RewardRunSerializer)
    def post(self, request, slug, run_id):
        return Response(RewardRunSerializer(run_cancel(run=_run(request, slug, run_id))).data)
