"""Template filters for showing stored values the way users type them back."""

import json

from django import template

register = template.Library()


@register.filter
def as_json(value) -> str:
    """``value`` as JSON (``true``, ``null``, ``{"helpful": 1.0}``): what ``--set key=value`` and the API read.

    The result is escaped like any other variable.
    """
    return json.dumps(value, ensure_ascii=False)
