"""Cursor pagination for every API list: ``{"next", "previous", "results"}``, newest first."""

from rest_framework.pagination import CursorPagination


class NewestFirstCursorPagination(CursorPagination):
    """Pages of ``PAGE_SIZE`` rows (``?page_size=`` up to ``max_page_size``), newest first.

    Ordered by the primary key alone: it is unique and only grows, so a cursor never
    repeats or skips a row while new rows arrive, and a later page is found with
    ``id < cursor`` rather than an OFFSET past the rows before it.
    """

    ordering = "-id"
    page_size_query_param = "page_size"
    max_page_size = 200
