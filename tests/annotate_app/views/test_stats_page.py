"""The project statistics page: figures for researchers and admins, nothing for anyone else."""

import pytest
from django.test import Client

from annotate_app.models import Role
from annotate_app.services.annotations import JudgmentInput, annotation_submit
from annotate_app.services.gold import comparison_mark_gold
from annotate_app.services.queue import task_next_for
from tests.factories import make_project, member

pytestmark = pytest.mark.django_db


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def project():
    """Two annotators on two comparisons, the first a gold item expecting A on helpful."""
    project = make_project(comparisons=2, overlap_k=2, gold_rate=1.0, shuffle_sides=False)
    comparison_mark_gold(comparison=project.comparisons.get(external_id="c0"), expected={"helpful": "A"})
    for username, helpful in [("ann", JudgmentInput("A", 3)), ("bob", JudgmentInput("B", 1))]:
        user = member(project, username=username)
        while (task := task_next_for(project=project, user=user)) is not None:
            annotation_submit(task=task, user=user, judgments={
                "helpful": helpful, "harmless": JudgmentInput("B", 2), "honest": JudgmentInput("tie"),
            })
    return project


def test_researcher_sees_progress_objectives_trade_offs_and_gold(project):
    response = _client(member(project, Role.RESEARCHER)).get(f"/projects/{project.slug}/stats/")
    assert response.status_code == 200
    html = response.content.decode()
    for text in [
        "1 of 2 comparisons have 2 or more human annotations",  # the gold item never counts as complete
        "4 human annotations by 2 annotators",
        "Helpfulness", "Harmlessness", "Honesty",
        # Helpful means are -1 on both comparisons, harmless ones 2: always in conflict, and r is
        # undefined for constant scores.
        "conflict 100% · r=— (n=2)",
        "<td>ann</td><td>1</td><td>1</td><td>100%</td><td>yes</td>",
        "<td>bob</td><td>1</td><td>0</td><td>0%</td><td>no</td>",
    ]:
        assert text in html
    helpful, harmless, _ = response.context["objectives"]
    assert helpful["counts"] == [2, 0, 0, 0, 2, 0, 0]
    assert (helpful["percent_agreement"], helpful["position_bias"]) == (0.0, {"left_won": 0.5, "n": 4})
    assert (harmless["percent_agreement"], harmless["position_bias"]) == (1.0, {"left_won": 0.0, "n": 4})


def test_admin_may_see_the_page(project):
    assert _client(member(project, Role.ADMIN)).get(f"/projects/{project.slug}/stats/").status_code == 200


def test_annotators_are_refused(project):
    assert _client(member(project, Role.ANNOTATOR)).get(f"/projects/{project.slug}/stats/").status_code == 403


def test_non_members_get_404(project):
    outsider = member(make_project(), Role.RESEARCHER)
    assert _client(outsider).get(f"/projects/{project.slug}/stats/").status_code == 404


def test_anonymous_users_are_sent_to_log_in(project):
    response = Client().get(f"/projects/{project.slug}/stats/")
    assert response.status_code == 302 and "/login" in response["Location"]
