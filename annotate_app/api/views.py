"""REST API views: validate input, call one service or selector, serialize."""

from django.contrib.auth import get_user_model
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics, status
from rest_framework.response import Response
from rest_framework.views import APIView

from .. import access
from ..models import Role
from ..services.annotations import MIRRORED, JudgmentInput, annotation_submit, task_skip
from ..services.imports import comparison_import_upload
from ..services.project_settings import project_settings_update
from ..services.projects import membership_set, project_create
from ..services.queue import task_next
from .bodies import JSONObjectBody
from .permissions import CanCreateProjects
from .schema import error_response
from .serializers import (
    AnnotationResultSerializer,
    CurrentUserSerializer,
    ImportBatchSerializer,
    ImportInputSerializer,
    MembershipInputSerializer,
    MembershipSerializer,
    ProjectCreateSerializer,
    ProjectSerializer,
    ProjectSettingsSerializer,
    SubmitInputSerializer,
    TaskSerializer,
    task_payload,
)

TASK_CONFLICT = error_response("The task was skipped, submitted or given to someone else.")


class ProjectListCreate(JSONObjectBody, generics.ListAPIView):
    """Projects the user is a member of; POST creates one (admin group only)."""

    serializer_class = ProjectSerializer
    permission_classes = generics.ListAPIView.permission_classes + [CanCreateProjects]

    def get_queryset(self):
        return access.projects_visible_to(self.request.user).prefetch_related("objectives").distinct()

    @extend_schema(request=ProjectCreateSerializer, responses={201: ProjectSerializer})
    def post(self, request):
        data = ProjectCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        project = project_create(**data.validated_data, created_by=request.user)
        return Response(ProjectSerializer(project).data, status=status.HTTP_201_CREATED)


class ProjectDetail(JSONObjectBody, APIView):
    @extend_schema(responses=ProjectSerializer)
    def get(self, request, slug):
        return Response(ProjectSerializer(access.project_for(request.user, slug)).data)

    @extend_schema(request=ProjectSettingsSerializer, responses=ProjectSettingsSerializer)
    def patch(self, request, slug):
        """Change the project's settings (project admins): any of them, all or nothing."""
        project = access.project_for(request.user, slug, roles=frozenset({Role.ADMIN}))
        data = ProjectSettingsSerializer(data=request.data, partial=True, context={"project": project})
        data.is_valid(raise_exception=True)
        project = project_settings_update(project=project, user=request.user, data=data.validated_data)
        return Response(ProjectSettingsSerializer(project, context={"project": project}).data)


class ProjectMembers(generics.ListAPIView):
    """Project admins: the members, newest first, a page at a time; POST adds one or changes their role."""

    serializer_class = MembershipSerializer

    def get_queryset(self):
        project = access.project_for(self.request.user, self.kwargs["slug"], roles=frozenset({Role.ADMIN}))
        return project.memberships.select_related("user")

    @extend_schema(request=MembershipInputSerializer, responses={200: MembershipInputSerializer})
    def post(self, request, slug):
        """Add a member or change their role."""
        project = access.project_for(request.user, slug, roles=frozenset({Role.ADMIN}))
        data = MembershipInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = get_user_model().objects.filter(username=data.validated_data["username"]).first()
        if user is None:
            return Response({"detail": "No user with that username."}, status=status.HTTP_400_BAD_REQUEST)
        membership = membership_set(project=project, user=user, role=data.validated_data["role"])
        return Response({"username": user.get_username(), "role": membership.role})


class ImportBatchList(generics.ListAPIView):
    """The project's imported files with their counts, newest first, a page at a time (project admins)."""

    serializer_class = ImportBatchSerializer

    def get_queryset(self):
        project = access.project_for(self.request.user, self.kwargs["slug"], roles=frozenset({Role.ADMIN}))
        return project.import_batches.all()


class ComparisonImport(APIView):
    """Upload a comparison file (multipart: file, format, objective); all or nothing."""

    @extend_schema(request={"multipart/form-data": ImportInputSerializer},
                   responses={201: ImportBatchSerializer, 413: error_response("The file is over the upload limit.")})
    def post(self, request, slug):
        project = access.project_for(request.user, slug, roles=frozenset({Role.ADMIN}))
        data = ImportInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        batch = comparison_import_upload(
            project=project,
            upload=data.validated_data["file"],
            format=data.validated_data["format"],
            objective=data.validated_data["objective"] or None,
            user=request.user,
        )
        return Response(ImportBatchSerializer(batch).data, status=status.HTTP_201_CREATED)


class TaskNext(APIView):
    """The caller's current task in the project, leasing a new one if needed; 204 when none is left."""

    @extend_schema(responses={200: TaskSerializer, 204: OpenApiResponse(description="No task left for you.")})
    def get(self, request, slug):
        project = access.project_for(request.user, slug)
        following = task_next(project=project, user=request.user)
        if following.task is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        return Response(task_payload(following.task, following.progress, following.objectives))


class TaskSubmit(JSONObjectBody, APIView):
    """Submit judgments in the shown orientation; resubmitting returns the same annotation."""

    @extend_schema(request=SubmitInputSerializer, responses={200: AnnotationResultSerializer,
                                                            201: AnnotationResultSerializer, 409: TASK_CONFLICT})
    def post(self, request, task_id):
        task = access.task_for(request.user, task_id)
        data = SubmitInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        result = annotation_submit(
            task=task,
            user=request.user,
            judgments={key: JudgmentInput(**value) for key, value in data.validated_data["judgments"].items()},
            flags_a=data.validated_data["flags_a"],
            flags_b=data.validated_data["flags_b"],
            time_spent_ms=data.validated_data["time_spent_ms"],
        )
        shown = [
            {
                "objective": judgment.objective.key,
                "choice": MIRRORED[judgment.choice] if task.shown_swapped else judgment.choice,
                "strength": judgment.strength,
                "rationale": judgment.rationale,
            }
            for judgment in result.judgments
        ]
        body = {"annotation_id": result.annotation.pk, "task_id": task.pk, "created": result.created,
                "judgments": shown}
        return Response(body, status=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK)


class TaskSkip(APIView):
    @extend_schema(request=None, responses={200: TaskSerializer, 409: TASK_CONFLICT})
    def post(self, request, task_id):
        task = get_object_or_404(access.tasks_of(request.user), pk=task_id)
        return Response(task_payload(task_skip(task=task, user=request.user)))


class CurrentUser(APIView):
    """Who the token or session belongs to (a cheap call for clients checking their credentials)."""

    @extend_schema(responses=CurrentUserSerializer)
    def get(self, request):
        return Response(CurrentUserSerializer(request.user).data)
