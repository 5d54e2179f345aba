"""Snapshots (create, list, manifest, download) and gold items over REST: admins and researchers."""

from django.http import FileResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics, status
from rest_framework.response import Response
from rest_framework.views import APIView

from .. import access
from ..models import Role, SnapshotStatus
from ..services.gold import comparison_mark_gold, comparison_unmark_gold
from ..services.snapshots import ExportFilters, snapshot_create, snapshot_path
from .bodies import JSONObjectBody
from .schema import error_response
from .serializers import GoldInputSerializer, SnapshotCreateSerializer, SnapshotSerializer

ADMIN_ONLY = frozenset({Role.ADMIN})


class SnapshotListCreate(generics.ListAPIView):
    """A project's snapshots, newest first, a page at a time; POST creates one."""

    serializer_class = SnapshotSerializer

    def get_queryset(self):
        project = access.project_for(self.request.user, self.kwargs["slug"], roles=access.DATA_ROLES)
        return project.snapshots.select_related("created_by")

    @extend_schema(request=SnapshotCreateSerializer, responses={201: SnapshotSerializer, 202: SnapshotSerializer})
    def post(self, request, slug):
        """Create a snapshot: 201 when it was built at once, 202 when a worker builds it."""
        project = access.project_for(request.user, slug, roles=access.DATA_ROLES)
        data = SnapshotCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        options = dict(data.validated_data)
        snapshot = snapshot_create(
            project=project,
            format=options.pop("format"),
            objective=options.pop("objective"),
            filters=ExportFilters(**options),
            user=request.user,
        )
        code = status.HTTP_201_CREATED if snapshot.status == SnapshotStatus.READY else status.HTTP_202_ACCEPTED
        return Response(SnapshotSerializer(snapshot).data, status=code)


class SnapshotDetail(APIView):
    """One snapshot: status, progress and manifest."""

    @extend_schema(responses=SnapshotSerializer)
    def get(self, request, slug, snapshot_id):
        project = access.project_for(request.user, slug, roles=access.DATA_ROLES)
        return Response(SnapshotSerializer(get_object_or_404(project.snapshots, pk=snapshot_id)).data)


class SnapshotDownload(APIView):
    """The snapshot's file; 409 while it is still being written."""

    @extend_schema(responses={(200, "application/octet-stream"): OpenApiResponse(description="The file."),
                              409: error_response("The snapshot is still being written (or it failed).")})
    def get(self, request, slug, snapshot_id):
        project = access.project_for(request.user, slug, roles=access.DATA_ROLES)
        snapshot = get_object_or_404(project.snapshots, pk=snapshot_id)
        if snapshot.status != SnapshotStatus.READY:
            return Response({"detail": f"Snapshot {snapshot.pk} is {snapshot.status}, not ready."},
                            status=status.HTTP_409_CONFLICT)
        response = FileResponse(snapshot_path(snapshot).open("rb"), as_attachment=True, filename=snapshot.filename)
        response["X-Content-SHA256"] = snapshot.sha256
        return response


class ComparisonGold(JSONObjectBody, APIView):
    """Mark a comparison as a gold item with expected choices (PUT), or unmark it (DELETE)."""

    @extend_schema(request=GoldInputSerializer, responses={200: GoldInputSerializer})
    def put(self, request, slug, comparison_id):
        project = access.project_for(request.user, slug, roles=ADMIN_ONLY)
        comparison = get_object_or_404(project.comparisons, pk=comparison_id)
        data = GoldInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        comparison = comparison_mark_gold(comparison=comparison, expected=data.validated_data["expected"])
        return Response({"expected": comparison.gold_expected})

    @extend_schema(request=None, responses={204: None})
    def delete(self, request, slug, comparison_id):
        project = access.project_for(request.user, slug, roles=ADMIN_ONLY)
        comparison_unmark_gold(comparison=get_object_or_404(project.comparisons, pk=comparison_id))
        return Response(status=status.HTTP_204_NO_CONTENT)
