"""The API's JSON parser: DRF's, refusing values that no database column stores."""

import io

from django.conf import settings
from rest_framework import parsers
from rest_framework.exceptions import ParseError

from ..importers import ImportFormatError
from ..importers.fields import storable, too_deep_field


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser plus the checks an imported line gets (``importers.fields.storable``).

    A string anywhere in the body, object keys included, holding NUL or a lone surrogate
    (JSON escapes ``\\u0000``, ``\\ud800``), a number too large to be finite, or nesting deeper
    than ``MORM_MAX_JSON_DEPTH`` is a 400 naming the field, whichever view reads the body:
    PostgreSQL would refuse the first two with a 500, and deep nesting overflows Python's
    stack. Serializer fields need not each remember it (dict keys and free-form JSON such
    as run configs have no field to check them).
    """

    def parse(self, stream, media_type=None, parser_context=None):
        max_depth = settings.MORM_MAX_JSON_DEPTH
        body = stream.read()
        try:
            data = super().parse(io.BytesIO(body), media_type, parser_context)
        except RecursionError:
            field = too_deep_field(body.decode("utf-8", errors="replace"), max_depth)
            where = f"field '{field}': " if field else ""
            raise ParseError(f"JSON parse error - {where}is nested more than {max_depth} levels deep") from None
        try:
            return storable(data, max_depth=max_depth)
        except ImportFormatError as error:
            raise ParseError(f"JSON parse error - {error}") from None
