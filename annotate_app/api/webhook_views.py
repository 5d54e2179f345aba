"""Webhooks over REST (project admins): subscribe a URL, list, pause, delete, and read the delivery log."""

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import generics, status
from rest_framework.response import Response
from rest_framework.views import APIView

from .. import access
from ..models import Role
from ..services.webhooks import webhook_create, webhook_delete, webhook_set_active
from .bodies import JSONObjectBody
from .serializers import (
    WebhookCreatedSerializer,
    WebhookCreateSerializer,
    WebhookDeliverySerializer,
    WebhookSerializer,
    WebhookUpdateSerializer,
)

ADMIN_ONLY = frozenset({Role.ADMIN})


class WebhookMixin:
    def project(self, request, slug):
        return access.project_for(request.user, slug, roles=ADMIN_ONLY)

    def webhook(self, request, slug, webhook_id):
        return get_object_or_404(self.project(request, slug).webhooks, pk=webhook_id)


class WebhookListCreate(JSONObjectBody, WebhookMixin, generics.ListAPIView):
    """The project's webhooks, newest first, a page at a time; POST subscribes a URL to events."""

    serializer_class = WebhookSerializer

    def get_queryset(self):
        return self.project(self.request, self.kwargs["slug"]).webhooks.all()

    @extend_schema(request=WebhookCreateSerializer, responses={201: WebhookCreatedSerializer})
    def post(self, request, slug):
        """Subscribe ``url`` to ``events``; the answer holds the signing secret, which is never shown again."""
        project = self.project(request, slug)
        data = WebhookCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        webhook = webhook_create(project=project, url=data.validated_data["url"],
                                 events=data.validated_data["events"], user=request.user)
        return Response(WebhookCreatedSerializer(webhook).data, status=status.HTTP_201_CREATED)


class WebhookDetail(JSONObjectBody, WebhookMixin, APIView):
    @extend_schema(responses=WebhookSerializer)
    def get(self, request, slug, webhook_id):
        return Response(WebhookSerializer(self.webhook(request, slug, webhook_id)).data)

    @extend_schema(request=WebhookUpdateSerializer, responses=WebhookSerializer)
    def patch(self, request, slug, webhook_id):
        """Pause (``{"active": false}``) or resume the webhook."""
        webhook = self.webhook(request, slug, webhook_id)
        data = WebhookUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        webhook = webhook_set_active(webhook=webhook, active=data.validated_data["active"])
        return Response(WebhookSerializer(webhook).data)

    @extend_schema(responses={204: None})
    def delete(self, request, slug, webhook_id):
        """Delete the webhook and its delivery log."""
        webhook_delete(webhook=self.webhook(request, slug, webhook_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class WebhookDeliveryList(WebhookMixin, generics.ListAPIView):
    """The webhook's delivery log: one row per attempt, newest first, a page at a time."""

    serializer_class = WebhookDeliverySerializer

    def get_queryset(self):
        return self.webhook(self.request, self.kwargs["slug"], self.kwargs["webhook_id"]).deliveries.all()
