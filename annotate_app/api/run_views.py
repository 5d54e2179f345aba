"""Training runs over REST: reward-model and PPO runs share list, detail, metrics since a step, cancel."""

from django.conf import settings
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import generics, status
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param
from rest_framework.views import APIView

from .. import access
from ..selectors.runs import run_metrics, run_progress
from ..selectors.tradeoffs import sweep_pareto
from ..services.policy_runs import policy_run_create
from ..services.policy_sweeps import policy_sweep_create
from ..services.reward_runs import reward_run_create
from ..services.runs import run_cancel
from .bodies import JSONObjectBody
from .schema import error_response
from .serializers import (
    MetricsQuerySerializer,
    ParetoSerializer,
    PolicyRunCreateSerializer,
    PolicyRunSerializer,
    PolicySampleSerializer,
    PolicySweepCreateSerializer,
    PolicySweepDetailSerializer,
    PolicySweepSerializer,
    RewardRunCreateSerializer,
    RewardRunReportSerializer,
    RewardRunSerializer,
    RunMetricsSerializer,
)

QUOTA_EXCEEDED = error_response("The project already has MORM_MAX_ACTIVE_RUNS_PER_PROJECT runs queued or running.")


class RunKindMixin:
    """Which runs a view serves: ``runs`` is the project's related name, ``serializer_class`` their shape."""

    runs = "reward_runs"
    serializer_class = RewardRunSerializer

    def project(self, request, slug):
        return access.project_for(request.user, slug, roles=access.DATA_ROLES)

    def run(self, request, slug, run_id):
        return get_object_or_404(getattr(self.project(request, slug), self.runs), pk=run_id)


class RunDetail(RunKindMixin, APIView):
    def get(self, request, slug, run_id):
        return Response(self.serializer_class(self.run(request, slug, run_id)).data)


class RunMetrics(RunKindMixin, APIView):
    """Metric points as {key: [[step, value], ...]}, ``since`` a step, in chunks of whole steps.

    A chunk holds at most ``MORM_METRICS_CHUNK_POINTS`` points; ``next`` is the URL of the
    rest (null at the end), so a client follows it until null, then polls with ``since``.
    """

    @extend_schema(parameters=[MetricsQuerySerializer], responses=RunMetricsSerializer)
    def get(self, request, slug, run_id):
        run = self.run(request, slug, run_id)
        query = MetricsQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        chunk = run_metrics(run, since_step=query.validated_data.get("since"),
                            max_points=settings.MORM_METRICS_CHUNK_POINTS)
        next_url = None
        if chunk.next_since is not None:
            next_url = replace_query_param(request.build_absolute_uri(), "since", chunk.next_since)
        # The shape is RunMetricsSerializer's, but the points go out as the selector built them:
        # its FloatField would turn every step into a float.
        return Response({**run_progress(run), "metrics": chunk.series, "next": next_url})


class RewardRunReport(RunKindMixin, APIView):
    """The reward-model report of a run: per objective, accuracy with its interval, calibration, agreement
    with the annotators next to theirs with each other, verbosity; the worker writes it when the run succeeds."""

    @extend_schema(responses=RewardRunReportSerializer)
    def get(self, request, slug, run_id):
        run = self.run(request, slug, run_id)
        return Response({"run": run.pk, "status": run.status, "report": run.report or None})


class RunCancel(RunKindMixin, APIView):
    @extend_schema(request=None)
    def post(self, request, slug, run_id):
        return Response(self.serializer_class(run_cancel(run=self.run(request, slug, run_id))).data)


class RewardRunListCreate(JSONObjectBody, RunKindMixin, generics.ListAPIView):
    """The project's reward-model runs, newest first, a page at a time; POST queues one."""

    def get_queryset(self):
        return self.project(self.request, self.kwargs["slug"]).reward_runs.select_related("snapshot", "created_by")

    @extend_schema(request=RewardRunCreateSerializer, responses={202: RewardRunSerializer, 429: QUOTA_EXCEEDED})
    def post(self, request, slug):
        """Queue a run: on ``snapshot`` if given, else on a new snapshot of the latest labels."""
        project = self.project(request, slug)
        data = RewardRunCreateSerializer(data=request.data, context={"project": project})
        data.is_valid(raise_exception=True)
        snapshot = None
        if data.validated_data.get("snapshot") is not None:
            snapshot = get_object_or_404(project.snapshots, pk=data.validated_data["snapshot"])
        run = reward_run_create(project=project, snapshot=snapshot, overrides=data.validated_data["config"],
                                user=request.user, init_heads_run=data.validated_data["init_heads_run"])
        return Response(RewardRunSerializer(run).data, status=status.HTTP_202_ACCEPTED)


class PolicyRunMixin(RunKindMixin):
    runs = "policy_runs"
    serializer_class = PolicyRunSerializer


class PolicyRunListCreate(JSONObjectBody, PolicyRunMixin, generics.ListAPIView):
    """The project's PPO runs, newest first, a page at a time; POST queues one."""

    def get_queryset(self):
        return self.project(self.request, self.kwargs["slug"]).policy_runs.select_related("created_by")

    @extend_schema(request=PolicyRunCreateSerializer, responses={202: PolicyRunSerializer, 429: QUOTA_EXCEEDED})
    def post(self, request, slug):
        """Queue PPO against a succeeded reward-model run of this project."""
        project = self.project(request, slug)
        data = PolicyRunCreateSerializer(data=request.data, context={"project": project})
        data.is_valid(raise_exception=True)
        run = policy_run_create(project=project, reward_run=data.validated_data["reward_run"],
                                overrides=data.validated_data["config"], user=request.user)
        return Response(PolicyRunSerializer(run).data, status=status.HTTP_202_ACCEPTED)


class PolicySweepListCreate(JSONObjectBody, RunKindMixin, generics.ListAPIView):
    """The project's weight sweeps, newest first, a page at a time; POST queues one."""

    serializer_class = PolicySweepSerializer

    def get_queryset(self):
        return self.project(self.request, self.kwargs["slug"]).policy_sweeps.prefetch_related("runs")

    @extend_schema(request=PolicySweepCreateSerializer, responses={202: PolicySweepSerializer, 429: QUOTA_EXCEEDED})
    def post(self, request, slug):
        """Queue a weight sweep: one PPO run per weight vector of ``grid``, all with the other settings of
        ``config``, sent to the training workers as one Celery group. All or none: a bad grid point or setting
        is a 400, fewer free run slots than runs a 429, and then no run is queued."""
        project = self.project(request, slug)
        data = PolicySweepCreateSerializer(data=request.data, context={"project": project})
        data.is_valid(raise_exception=True)
        sweep = policy_sweep_create(project=project, reward_run=data.validated_data["reward_run"],
                                    grid=data.validated_data["grid"], overrides=data.validated_data["config"],
                                    name=data.validated_data["name"], user=request.user)
        return Response(PolicySweepSerializer(sweep).data, status=status.HTTP_202_ACCEPTED)


class PolicySweepDetail(RunKindMixin, APIView):
    @extend_schema(responses=PolicySweepDetailSerializer)
    def get(self, request, slug, sweep_id):
        """A sweep with the Pareto front of its succeeded runs over their objectives and its hypervolume."""
        sweep = get_object_or_404(self.project(request, slug).policy_sweeps.select_related("reward_run"), pk=sweep_id)
        return Response({**PolicySweepSerializer(sweep).data,
                         "pareto": ParetoSerializer(pareto).data if (pareto := sweep_pareto(sweep)) else None})


class PolicyRunSamples(PolicyRunMixin, generics.ListAPIView):
    """Sample generations with each head's reward, newest first, a page at a time."""

    serializer_class = PolicySampleSerializer

    def get_queryset(self):
        return self.run(self.request, self.kwargs["slug"], self.kwargs["run_id"]).samples.all()


class RewardRunDetail(RunDetail):
    @extend_schema(responses=RewardRunSerializer)
    def get(self, request, slug, run_id):
        return super().get(request, slug, run_id)


class PolicyRunDetail(PolicyRunMixin, RunDetail):
    @extend_schema(responses=PolicyRunSerializer)
    def get(self, request, slug, run_id):
        return super().get(request, slug, run_id)


class PolicyRunMetrics(PolicyRunMixin, RunMetrics):
    """Metric points of a PPO run (see RunMetrics)."""


class PolicyRunCancel(PolicyRunMixin, RunCancel):
    """Cancel a PPO run (see RunCancel)."""
