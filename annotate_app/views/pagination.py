"""Long lists on server-rendered pages come a page at a time."""

from django.core.paginator import Page, Paginator
from django.http import HttpRequest

PER_PAGE = 50


def page_of(request: HttpRequest, rows, *, param: str = "page", per_page: int = PER_PAGE) -> Page:
    """The page of ``rows`` that ``?<param>=N`` names: the first when absent or not a number, the last when past it.

    ``rows`` must be ordered (a queryset with an ordering), so a page holds the same rows on every visit.
    """
    return Paginator(rows, per_page).get_page(request.GET.get(param))
