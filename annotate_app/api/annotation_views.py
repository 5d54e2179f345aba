"""An annotator's own submitted annotations: read one as seen, and edit it (the labeling page's Back)."""

from drf_spectacular.utils import extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from ..selectors.annotations import annotation_own, annotation_shown
from ..services.annotations import JudgmentInput, annotation_edit
from .bodies import JSONObjectBody
from .serializers import AnnotationEditInputSerializer, OwnAnnotationSerializer


def own_annotation_payload(annotation) -> dict:
    shown = annotation_shown(annotation)
    return {"annotation_id": annotation.pk, "task_id": annotation.task_id,
            "project": annotation.comparison.project.slug, "created_at": annotation.created_at,
            "judgments": shown.judgments, "flags_a": shown.flags_a, "flags_b": shown.flags_b,
            "revisions": annotation.revisions.count()}


class OwnAnnotationDetail(JSONObjectBody, APIView):
    """GET: one's own annotation, in the side order one saw. PUT: replace its judgments and flags.

    Only the annotator who made it, while a member of its project; anyone else gets 404. An
    edit keeps the replaced values as a revision, leaves the task submitted and leaves the
    snapshots already built as they were.
    """

    @extend_schema(responses={200: OwnAnnotationSerializer})
    def get(self, request, annotation_id):
        annotation = annotation_own(user=request.user, annotation_id=annotation_id)
        return Response(OwnAnnotationSerializer(own_annotation_payload(annotation)).data)

    @extend_schema(request=AnnotationEditInputSerializer, responses={200: OwnAnnotationSerializer})
    def put(self, request, annotation_id):
        annotation = annotation_own(user=request.user, annotation_id=annotation_id)
        data = AnnotationEditInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        annotation_edit(
            annotation=annotation,
            user=request.user,
            judgments={key: JudgmentInput(**value) for key, value in data.validated_data["judgments"].items()},
            flags_a=data.validated_data["flags_a"],
            flags_b=data.validated_data["flags_b"],
        )
        annotation.refresh_from_db()
        return Response(OwnAnnotationSerializer(own_annotation_payload(annotation)).data)
