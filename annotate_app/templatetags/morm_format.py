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
def weights(value, objectives=None) -> str:
    """Scalarization weights ``{"helpful": 0.4, "harmless": 0.45}`` as ``helpful 0.40 · harmless 0.45``, in the
    order of ``objectives`` when given (the run's config: Postgres keeps a JSON object's keys in its own order),
    the others after; anything that is not such a mapping as it is."""
    if not isinstance(value, dict):
        return "" if value is None else str(value)
    order = [key for key in objectives or [] if key in value] + [key for key in value if key not in (objectives or [])]
    return " · ".join(f"{key} {float(value[key]):.2f}" for key in order)
