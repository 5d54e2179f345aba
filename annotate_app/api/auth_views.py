"""Signing in to the API: username and password for a token, refused for a while after repeated failures."""

from django.conf import settings
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.exceptions import Throttled, ValidationError
from rest_framework.response import Response

from ..services.accounts import token_expires_at, token_for_login
from .throttles import AnonThrottle


class TokenObtain(ObtainAuthToken):
    """POST username and password: the user's API token (a new one when it had expired) and its expiry.

    After ``MORM_LOGIN_FAILURE_LIMIT`` failures for the username or from the address
    (django-axes, shared with the login page), 429 until the cool-off has passed. Calls
    from one address also count against ``MORM_API_THROTTLE_ANON``.
    """

    throttle_classes = [AnonThrottle]

    @extend_schema(
        responses={
            200: inline_serializer("TokenSerializer", {"token": serializers.CharField(),
                                                       "expires_at": serializers.DateTimeField(allow_null=True)}),
            400: OpenApiResponse(description="Wrong username or password."),
            429: OpenApiResponse(description="Too many failed logins for this username or from this address."),
        }
    )
    def post(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        if not serializer.is_valid():
            # django-axes marks the request it was handed (DRF's, here) when the login was refused.
            if getattr(request, "axes_locked_out", False):
                raise Throttled(wait=settings.AXES_COOLOFF_TIME.total_seconds(),
                                detail="Too many failed logins for this username or from this address.")
            raise ValidationError(serializer.errors)
        token = token_for_login(user=serializer.validated_data["user"])
        return Response({"token": token.key, "expires_at": token_expires_at(token)})
