"""Request bodies that must be JSON objects.

An operation whose input nests objects (a run's ``config``, a submit's ``judgments``, gold's
``expected``, a project's ``objectives``) cannot be written as a form: DRF reads a form or
multipart body without those fields, as if they had been left out, so a malformed upload used
to queue a training run with every default. These operations take JSON only: another content
type is a 415, a body that is not valid JSON or not an object a 400, and an empty body a 400
too. ``{}`` is how a client asks for all the defaults.
"""

from rest_framework.exceptions import ParseError

from .parsers import JSONParser

BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


class JSONObjectBody:
    """View mixin: JSON bodies only, and a body is required on POST, PUT and PATCH."""

    parser_classes = [JSONParser]

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        # DRF reads a missing body as {} without asking a parser (no content type to check):
        # defaults must be asked for with an explicit {}.
        if request.method in BODY_METHODS and request.stream is None:
            raise ParseError("The body is empty: send a JSON object ({} for all the defaults).")
