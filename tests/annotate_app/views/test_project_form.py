"""The New project form: its settings in groups with help beside each field, the slug made from the name."""

import re

import pytest
from django.contrib.auth.models import Group

from annotate_app.forms import ProjectForm
from annotate_app.models import Project
from tests.factories import logged_in_client, make_project, make_user

pytestmark = pytest.mark.django_db

PROJECT = {"name": "Kitchen Pilot", "slug": "", "overlap_k": "3", "lease_minutes": "30", "shuffle_sides": "on",
           "objectives": ["helpful", "harmless"], "gold_rate": "0.1", "gold_pass_accuracy": "0.7"}


@pytest.fixture
def admin_client():
    user = make_user()
    user.groups.add(Group.objects.get(name="admin"))
    return logged_in_client(user)


def _row(page: str, name: str) -> str:
    """The field row (label, input, errors, help) of the input ``name`` on ``page``."""
    rows = re.findall(r'<div class="field[^"]*">.*?</div>\s*(?:<p class="helptext".*?</p>\s*)?</div>', page, re.S)
    (row,) = [row for row in rows if f'name="{name}"' in row]
    return row


def test_the_new_project_page_shows_its_settings_in_groups_with_help_beside_each_field(admin_client):
    page = admin_client.get("/projects/new/").content.decode()
    legends = re.findall(r"<legend>(.*?)</legend>", page)
    assert legends == ["Basics", "Objectives", "Queue", "Extra questions", "Gold"]
    groups = re.split(r"<legend>", page)[1:]
    assert 'name="name"' in groups[0] and 'name="slug"' in groups[0] and 'name="overlap_k"' in groups[2]
    assert 'name="ask_likert"' in groups[3] and 'name="gold_pass_accuracy"' in groups[4]
    for name in ("name", "slug", "overlap_k", "lease_minutes", "shuffle_sides", "ask_likert", "gold_rate"):
        row = _row(page, name)
        # The help is the row's second column, and the input points at it for screen readers.
        assert f'<p class="helptext" id="id_{name}_helptext">' in row, name
        assert f'aria-describedby="id_{name}_helptext"' in row, name
    assert ">Ask for Likert ratings</label>" in _row(page, "ask_likert")
    assert "Ask likert" not in page
    assert "js/project_form.js" in page


def test_every_project_setting_is_in_exactly_one_group():
    grouped = [name for _title, names in ProjectForm.GROUPS for name in names]
    assert sorted(grouped) == sorted(ProjectForm().fields) and len(set(grouped)) == len(grouped)


def test_a_project_named_with_a_blank_slug_gets_the_slug_of_its_name(admin_client):
    response = admin_client.post("/projects/new/", PROJECT)
    assert response.status_code == 302
    project = Project.objects.get(name="Kitchen Pilot")
    assert project.slug == "kitchen-pilot"
    assert response["Location"] == f"/projects/{project.slug}/members/"


@pytest.mark.parametrize(("values", "message"), [
    ({"slug": "kitchen pilot"}, "Use only letters, digits, hyphens and underscores"),
    ({"slug": "küche"}, "Use only letters, digits, hyphens and underscores"),
    ({"slug": "x" * 65}, "at most 64 characters"),
    ({"name": "日本語", "slug": ""}, "The name has no letters or digits to make a slug of"),
])
def test_a_bad_slug_is_refused_with_a_message_at_the_slug(admin_client, values, message):
    response = admin_client.post("/projects/new/", {**PROJECT, **values})
    assert response.status_code == 200
    assert message in " ".join(response.context["form"].errors["slug"])
    assert message in _row(response.content.decode(), "slug").replace("&#x27;", "'")
    assert not Project.objects.exists()


def test_a_slug_already_taken_is_refused_at_the_slug(admin_client):
    make_project(slug="kitchen-pilot")
    response = admin_client.post("/projects/new/", PROJECT)
    assert response.status_code == 200
    assert response.context["form"].errors["slug"] == ["Another project has this slug: choose another."]
    assert Project.objects.filter(name="Kitchen Pilot").count() == 0
