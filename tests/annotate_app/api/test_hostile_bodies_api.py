"""JSON bodies holding what no database column stores, sent to every kind of API write.

The API's JSON parser (annotate_app/api/parsers.py) refuses NUL and lone surrogates anywhere
(keys too), numbers that parse as infinity, and nesting past MORM_MAX_JSON_DEPTH, with a 400
naming the field, before any view reads the body. On PostgreSQL the first two were 500s, and
a body nested some thousands deep overflowed Python's stack on every database.
"""

import json

import pytest
from django.contrib.auth.models import Group

from annotate_app.models import Project, RewardModelRun, Role
from tests.factories import make_project, make_user, member

pytestmark = pytest.mark.django_db

NESTED_PAST_THE_STACK = "[" * 100_000 + "]" * 100_000


def _post(api, url, body: str, method: str = "post"):
    response = getattr(api, method)(url, body, content_type="application/json")
    return response.status_code, response.json()["detail"]


@pytest.fixture
def creator(api):
    user = make_user()
    user.groups.add(Group.objects.get(name="admin"))
    api.force_authenticate(user)
    return user


@pytest.mark.parametrize(
    "body, field",
    [
        ({"name": "P\u0000"}, "name"),
        ({"name": "P", "description": "\ud83d"}, "description"),
        ({"name": "P", "objectives": [{"key": "k", "name": "K", "guideline": "g\u0000"}]}, "objectives[0].guideline"),
        ({"name": "P", "flag_options": ["ok", "\u0000"]}, "flag_options[1]"),
        ({"name": "P", "n\u0000ame": "x"}, None),
        ({"name": "P", "gold_rate": "1e400"}, "gold_rate"),
        ('{"name": "P", "objectives": ' + NESTED_PAST_THE_STACK + "}", "objectives"),
        ({"name": "P", "objectives": json.loads("[" * 20 + "]" * 20)}, "objectives" + "[0]" * 19),
    ],
    ids=["nul name", "surrogate description", "nul guideline", "nul flag option", "nul top-level key",
         "1e400", "nested past the stack", "nested 21"],
)
def test_hostile_project_bodies_are_400_naming_the_field_and_create_nothing(api, creator, body, field):
    raw = body if isinstance(body, str) else json.dumps(body).replace('"1e400"', "1e400")
    status, detail = _post(api, "/api/v1/projects/", raw)
    assert status == 400 and "\u0000" not in detail
    assert (f"field '{field}'" in detail or f"{field}:" in detail) if field else "a key contains a NUL" in detail
    assert not Project.objects.exists()


def test_a_member_username_with_nul_is_400(api):
    project = make_project()
    api.force_authenticate(member(project, Role.ADMIN))
    status, detail = _post(api, f"/api/v1/projects/{project.slug}/members/",
                           json.dumps({"username": "bob\u0000", "role": "annotator"}))
    assert status == 400 and "username" in detail


@pytest.mark.parametrize(
    "config, field",
    [({"lr\u0000": 0.1}, "config"), ({"notes": {"deep": "\ud800"}}, "config.notes.deep")],
)
def test_hostile_run_configs_are_400_naming_the_field_and_queue_nothing(api, config, field):
    project = make_project()
    api.force_authenticate(member(project, Role.RESEARCHER))
    status, detail = _post(api, f"/api/v1/projects/{project.slug}/reward-runs/", json.dumps({"config": config}))
    assert status == 400 and f"field '{field}'" in detail
    assert not RewardModelRun.objects.exists()


def test_a_gold_label_under_a_nul_objective_is_400(api):
    project = make_project(comparisons=1)
    api.force_authenticate(member(project, Role.ADMIN))
    comparison = project.comparisons.get()
    status, detail = _post(api, f"/api/v1/projects/{project.slug}/comparisons/{comparison.pk}/gold",
                           json.dumps({"expected": {"help\u0000ful": "A"}}), method="put")
    assert status == 400 and "field 'expected'" in detail
    comparison.refresh_from_db()
    assert comparison.gold_expected == {}


def test_the_depth_limit_is_a_setting(api, creator, settings):
    settings.MORM_MAX_JSON_DEPTH = 3
    body = {"name": "P", "objectives": [{"key": "k", "name": "K"}]}  # depth 3: object, list, object
    assert api.post("/api/v1/projects/", body, format="json").status_code == 201
    body = {"name": "Q", "objectives": [{"key": "k", "name": "K"}], "flag_options": [[["x"]]]}
    status, detail = _post(api, "/api/v1/projects/", json.dumps(body))
    assert status == 400 and "field 'flag_options[0][0]': is nested more than 3 levels deep" in detail
