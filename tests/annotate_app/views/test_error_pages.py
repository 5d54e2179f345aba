"""403, 404 and 500 pages in the app's layout (DEBUG is off in tests, as in production); the favicon."""

import pytest
from django.conf import settings
from django.contrib.staticfiles import finders
from django.test import Client

from annotate_app.models import Role
from tests.factories import logged_in_client, make_project, make_user, member

pytestmark = pytest.mark.django_db


def _in_layout(response) -> str:
    page = response.content.decode()
    assert "css/morm.css" in page and "favicon.svg" in page and 'class="topbar"' in page
    return page


def test_debug_is_off_so_the_error_templates_are_what_users_see():
    assert settings.DEBUG is False


def test_a_page_a_role_may_not_open_is_a_styled_403():
    project = make_project()
    response = logged_in_client(member(project, Role.ANNOTATOR)).get(f"/projects/{project.slug}/import/")
    assert response.status_code == 403
    assert "403 — not allowed" in _in_layout(response) and "Ask a project admin" in response.content.decode()


def test_an_unknown_page_is_a_styled_404_naming_the_path():
    response = logged_in_client(make_user()).get("/no/such/page/")
    assert response.status_code == 404
    assert "404 — not found" in _in_layout(response) and "<code>/no/such/page/</code>" in response.content.decode()


def test_an_unexpected_error_is_a_styled_500_that_reveals_nothing(monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("secret detail")

    monkeypatch.setattr("annotate_app.views.projects.page_of", broken)
    client = Client(raise_request_exception=False)
    client.force_login(make_user())
    response = client.get("/")
    assert response.status_code == 500
    page = _in_layout(response)
    assert "500 — something went wrong" in page and "secret detail" not in page


def test_the_favicon_is_a_static_file_linked_from_every_page_and_from_favicon_ico():
    assert finders.find("favicon.svg")
    response = Client().get("/favicon.ico")
    assert response.status_code == 301 and response["Location"] == "/static/favicon.svg"
    assert '<link rel="icon" href="/static/favicon.svg"' in Client().get("/accounts/login/").content.decode()
