"""Ids that pages read from buttons and query strings, hand-edited: they match nothing, never a 500.

"²" is a digit to str.isdigit() but not to int(); 2**63 is past every primary key (SQLite cannot
compare it); NUL and 5,000 digits are what fuzzers send.
"""

import pytest

from annotate_app.models import Role
from tests.factories import logged_in_client, make_project, member

pytestmark = pytest.mark.django_db

NOT_IDS = ["abc", "\u00b2", "\x00", str(2**63), "9" * 5000, "-1", ""]


@pytest.mark.parametrize("value", NOT_IDS)
def test_removing_a_member_by_a_value_that_is_no_id_removes_nobody(value):
    project = make_project()
    admin = member(project, Role.ADMIN)
    member(project, Role.ANNOTATOR)
    response = logged_in_client(admin).post(f"/projects/{project.slug}/members/",
                                            {"action": "remove", "membership": value})
    assert response.status_code == 302 and project.memberships.count() == 2


@pytest.mark.parametrize("value", NOT_IDS)
def test_comparing_runs_by_values_that_are_no_ids_shows_an_empty_comparison(value):
    project = make_project()
    client = logged_in_client(member(project, Role.RESEARCHER))
    response = client.get(f"/projects/{project.slug}/reward-runs/compare/", {"runs": [value, "1"]})
    assert response.status_code == 200


@pytest.mark.parametrize("value", ["\u00b2", str(2**63), "9" * 5000])
def test_marking_gold_by_a_number_that_is_no_id_is_a_form_error(value):
    project = make_project(comparisons=1)
    client = logged_in_client(member(project, Role.ADMIN))
    response = client.post(f"/projects/{project.slug}/gold/", {"comparison": value, "expected_helpful": "A"})
    assert response.status_code == 200 and "No comparison with that id" in response.content.decode()
    assert not project.comparisons.filter(is_gold=True).exists()
