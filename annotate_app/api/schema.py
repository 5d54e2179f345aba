"""The OpenAPI schema's error responses, added in one place for every operation.

``ErrorCodesAutoSchema`` documents the codes that follow from how an operation is built: 400
(it takes a body or query parameters), 401 (a missing or bad token), 403 (a role or CSRF), 404 (a
path id or slug, or a page cursor), 415 (a body of another content type) and 429 (throttled).
Codes that come from what a view does (409, 413, the run quota's 429) are declared on the view
with ``error_response``. Every error body is ``{"detail": "..."}`` (``errors.exception_handler``).
"""

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers
from rest_framework.permissions import SAFE_METHODS, AllowAny

from rm_worker.training.schema import TrainingConfig

from ..services.run_settings import MODEL_FIELDS, SERVER_FIELDS

# Query parameters of cursor pagination: a bad cursor is a 404 (DRF), a bad page size is ignored.
PAGINATION_PARAMETERS = {"cursor", "page_size"}

DESCRIPTIONS = {
    400: "The body or a query parameter is invalid; detail names the field.",
    401: "No credentials, or a token or session that is not valid.",
    403: "Your role in the project does not allow this (or a session request without its CSRF token).",
    404: "No such project, object or page for you (projects you are not a member of included).",
    415: "The body is not of the content type this operation takes.",
    429: "Too many requests; retry later.",
}


class ErrorSerializer(serializers.Serializer):
    detail = serializers.CharField(help_text="What went wrong, naming the field where one is at fault.")


def error_response(description: str) -> OpenApiResponse:
    """A documented error code whose body is ``{"detail": ...}`` (for ``extend_schema(responses=...)``)."""
    return OpenApiResponse(response=ErrorSerializer, description=description)


def drop_slash_twins(endpoints, **kwargs):
    """Preprocessing hook: one operation per view and method; the trailing-slash twins of
    ``urls.with_slash_twins`` (same view, listed after the route as written) are left out."""
    seen, kept = set(), []
    for path, path_regex, method, callback in endpoints:
        if (callback, method) not in seen:
            seen.add((callback, method))
            kept.append((path, path_regex, method, callback))
    return kept


class ErrorCodesAutoSchema(AutoSchema):
    """drf-spectacular's AutoSchema plus the error responses every operation can give."""

    def get_operation(self, *args, **kwargs):
        operation = super().get_operation(*args, **kwargs)
        if operation is None:
            return None
        responses = operation["responses"]
        for code in self._error_codes(operation):
            responses.setdefault(str(code), {"description": DESCRIPTIONS[code]})
        for code, response in responses.items():
            # A view may declare an error code with a description only: its body is still {"detail": ...}.
            if code >= "400" and "content" not in response:
                responses[code] = self._get_response_for_code(error_response(response["description"]), code)
        operation["responses"] = dict(sorted(responses.items()))
        return operation

    def _error_codes(self, operation: dict) -> set[int]:
        parameters = operation.get("parameters", [])
        in_path = any(parameter["in"] == "path" for parameter in parameters)
        query = {parameter["name"] for parameter in parameters if parameter["in"] == "query"}
        takes_body = "requestBody" in operation
        needs_login = not all(issubclass(permission, AllowAny) for permission in self.view.permission_classes)
        codes = {401}  # any request with a bad token, whatever the permissions
        if takes_body or query - PAGINATION_PARAMETERS:
            codes.add(400)
        if needs_login and (in_path or self.method not in SAFE_METHODS):
            codes.add(403)
        if in_path or query & PAGINATION_PARAMETERS:
            codes.add(404)
        if takes_body:
            codes.add(415)
        if self.view.throttle_classes:
            codes.add(429)
        return codes


def config_overrides_schema(config_class: type[TrainingConfig]) -> dict:
    """The OpenAPI schema of a run's ``config`` body: the config's own schema (ranges, choices, defaults,
    help), every field optional, without the fields the server sets, models named as ``run_settings`` takes
    them."""
    schema = _openapi_30(config_class.model_json_schema())
    schema.pop("required", None)
    properties = schema["properties"]
    server_fields = sorted(SERVER_FIELDS.keys() & properties.keys())
    schema["description"] = " ".join([
        f"{config_class.__name__} fields to override, each optional (manage.py config_fields prints them).",
        *(f"{name}: {SERVER_FIELDS[name]}" for name in server_fields),
    ])
    for name in server_fields:
        del properties[name]
    for name in MODEL_FIELDS.keys() & properties.keys():
        properties[name]["description"] = (
            f"A model's name under the operator's MORM_MODEL_DIRS (the dashboard lists them), never a path; "
            f"default {MODEL_FIELDS[name][1]}."
        )
    return schema


def _openapi_30(schema: dict) -> dict:
    """A JSON Schema as pydantic writes it (draft 2020-12) in OpenAPI 3.0's dialect, which drf-spectacular
    writes: ``nullable`` instead of a null type, boolean exclusive bounds, choice help in the description,
    the modes that read a field as ``x-modes``, a setting a first run needs as ``x-basic``."""
    schema = {key: value for key, value in schema.items() if key != "title"}
    options = schema.pop("anyOf", None)
    if options is not None:
        others = [option for option in options if option != {"type": "null"}]
        schema = {**_openapi_30(others[0]), **schema, "nullable": True} if len(others) == 1 else {
            **schema, "anyOf": [_openapi_30(option) for option in options]}
    for exclusive, inclusive in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if type(schema.get(exclusive)) in (int, float):
            schema[inclusive], schema[exclusive] = schema[exclusive], True
    for key in ("items", "additionalProperties"):
        if isinstance(schema.get(key), dict):
            schema[key] = _openapi_30(schema[key])
    if "properties" in schema:
        schema["properties"] = {name: _openapi_30(value) for name, value in schema["properties"].items()}
    if choice_help := schema.pop("choice_help", None):
        described = "; ".join(f"{value}: {text}" for value, text in choice_help.items())
        schema["description"] = f"{schema.get('description', '')} ({described})".strip()
    if modes := schema.pop("modes", None):  # OpenAPI takes extra keywords only as x- extensions
        schema["x-modes"] = modes
        schema["description"] = f"({', '.join(modes)} only) {schema.get('description', '')}".strip()
    if schema.pop("basic", False):
        schema["x-basic"] = True
    return schema
