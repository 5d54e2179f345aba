"""The loop's rounds over REST: list them (snapshot → reward run → PPO run → generation, fixed-set accuracy), or
start one now."""

from drf_spectacular.utils import extend_schema
from rest_framework import generics, status
from rest_framework.response import Response

from .. import access
from ..models import RoundTrigger
from ..services.rounds import round_start
from .round_serializers import RoundSerializer
from .run_views import QUOTA_EXCEEDED
from .schema import error_response


class RoundListCreate(generics.ListAPIView):
    """The project's rounds, newest first, a page at a time (researchers, admins); POST starts one now."""

    serializer_class = RoundSerializer

    def get_queryset(self):
        project = access.project_for(self.request.user, self.kwargs["slug"], roles=access.DATA_ROLES)
        return project.rounds.all()

    @extend_schema(request=None, responses={
        202: RoundSerializer, 429: QUOTA_EXCEEDED,
        400: error_response("A round's reward-model run is still queued or running, or retrain_config no longer "
                            "validates."),
    })
    def post(self, request, slug):
        """Start a round now, whatever the count of new labels: a snapshot of the labels and a reward-model run with
        the project's retrain_config (then PPO and a generation as the project's settings say)."""
        project = access.project_for(request.user, slug, roles=access.DATA_ROLES)
        started = round_start(project=project, trigger=RoundTrigger.MANUAL, user=request.user)
        return Response(RoundSerializer(started).data, status=status.HTTP_202_ACCEPTED)
