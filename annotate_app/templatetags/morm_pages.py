"""Links between the pages of a long list."""

from django import template

register = template.Library()


@register.simple_tag(takes_context=True)
def page_url(context, param: str, number: int) -> str:
    """The current query string with ``param`` set to ``number``: the other lists' pages and filters stay."""
    query = context["request"].GET.copy()
    query[param] = number
    return f"?{query.urlencode()}"
