"""Every API error is JSON ``{"detail": ...}`` with a 4xx code."""

from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from ..importers import FileTooLarge, ImportFormatError
from ..services.annotations import TaskConflict


def _detail(payload):
    """Flatten DRF/Django error structures into one readable string."""
    if isinstance(payload, dict):
        return "; ".join(
            f"{key}: {_detail(value)}" if key not in ("detail", "__all__", "non_field_errors") else _detail(value)
            for key, value in payload.items()
        )
    if isinstance(payload, (list, tuple)):
        return " ".join(_detail(item) for item in payload)
    return str(payload)


def exception_handler(exc, context):
    """Map domain errors to HTTP codes and shape every error body as ``{"detail": str}``."""
    if isinstance(exc, FileTooLarge):
        return Response({"detail": str(exc)}, status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)
    if isinstance(exc, ImportFormatError):
        return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, TaskConflict):
        return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
    if isinstance(exc, ValidationError):
        payload = exc.message_dict if hasattr(exc, "error_dict") else exc.messages
        exc = exceptions.ValidationError(payload)
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound(str(exc) or "Not found.")
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or None)
    response = drf_exception_handler(exc, context)
    if response is not None:
        response.data = {"detail": _detail(response.data)}
    return response
