"""Every API route answers with and without its trailing slash: same view, no redirect, no 404."""

import re

import pytest
from django.test import Client
from django.urls import resolve

from annotate_app.api import urls
from annotate_app.api.errors import UnknownPath

pytestmark = pytest.mark.django_db

# The routes as written (their slash twins have no name), each with its path arguments filled in.
ROUTES = [pattern for pattern in urls.urlpatterns if getattr(pattern, "name", None)]
ARGUMENT = re.compile(r"<(\w+):\w+>")
FILLED = {"slug": "some-project", "int": "1"}


def _both_forms(route: str) -> tuple[str, str]:
    path = "/api/v1/" + ARGUMENT.sub(lambda match: FILLED[match.group(1)], route)
    return (path, path[:-1]) if path.endswith("/") else (path, path + "/")


def test_the_walk_covers_the_routes_with_and_without_a_slash():
    routes = [str(pattern.pattern) for pattern in ROUTES]
    assert "projects/<slug:slug>/tasks/next" in routes and "projects/" in routes and "docs/" in routes
    assert len(routes) >= 25


@pytest.mark.parametrize("pattern", ROUTES, ids=lambda pattern: pattern.name)
def test_both_slash_forms_reach_the_same_view_without_a_redirect(pattern):
    written, twin = _both_forms(str(pattern.pattern))
    for path in (written, twin):
        view = resolve(path).func
        assert view.view_class is pattern.callback.view_class and view.view_class is not UnknownPath, path
    # Anonymous: each answers as its view does (401, 405, 200 for the schema and docs), the same for both forms.
    answers = [Client().get(path) for path in (written, twin)]
    assert answers[0].status_code == answers[1].status_code
    assert answers[0].status_code not in (301, 302, 308, 404), (written, answers[0].status_code)
