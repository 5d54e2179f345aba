"""Every API error is JSON ``{"detail": ...}`` with a 4xx or 5xx code.

DRF views answer through ``exception_handler``; what never reaches a DRF view (a path no
route matches, a non-numeric id, an error in middleware) gets the same shape from
``UnknownPath`` and the Django error handlers below, for paths under ``/api/``.
"""

from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, JsonResponse
from django.views import defaults
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework.views import exception_handler as drf_exception_handler

from ..importers import FileTooLarge, ImportFormatError
from ..services.annotations import TaskConflict
from ..services.runs import RunQuotaExceeded

API_PREFIX = "/api/"


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
    if isinstance(exc, RunQuotaExceeded):
        return Response({"detail": _detail(exc.messages)}, status=status.HTTP_429_TOO_MANY_REQUESTS)
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


class UnknownPath(APIView):
    """Any ``/api/v1/`` path no route matches, a non-numeric id included: 404 for every method.

    Anonymous callers get the same 404 as members: an unknown path reveals nothing.
    """

    permission_classes = []
    schema = None  # not an operation of the API

    def http_method_not_allowed(self, request, *args, **kwargs):
        raise exceptions.NotFound(f"No API endpoint at {request.path}.")

    options = http_method_not_allowed  # APIView would describe the view with a 200


def _json_under_api(html_view, code: int, detail: str):
    """A Django error handler: ``{"detail": ...}`` for API paths, ``html_view``'s page elsewhere."""

    def handler(request, exception=None):
        if request.path_info.startswith(API_PREFIX):
            return JsonResponse({"detail": detail}, status=code)
        return html_view(request) if exception is None else html_view(request, exception)

    return handler


# Wired as handler400/403/404/500 in config/urls.py.
bad_request = _json_under_api(defaults.bad_request, 400, "Bad request.")
permission_denied = _json_under_api(defaults.permission_denied, 403, "Forbidden.")
page_not_found = _json_under_api(defaults.page_not_found, 404, "Not found.")
server_error = _json_under_api(defaults.server_error, 500, "Server error.")
