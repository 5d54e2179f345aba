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


@register.filter
def weights(value) -> str:
    """Scalarization weights ``{"helpful": 0.4, "harmless": 0.45}`` as ``helpful 0.40 · harmless 0.45``, in the
    config's objective order; anything that is not such a mapping as it is."""
    if not isinstance(value, dict):
        return "" if value is None else str(value)
    return " · ".join(f"{key} {float(weight):.2f}" for key, weight in value.items())
