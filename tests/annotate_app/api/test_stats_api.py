"""GET projects/{slug}/stats: figures for admins and researchers, nothing for anyone else."""

import pytest
from rest_framework.test import APIClient

from annotate_app.models import Role
from annotate_app.services.annotations import JudgmentInput, annotation_submit
from annotate_app.services.queue import task_next_for
from tests.factories import import_lines, make_project, member, native_line

pytestmark = pytest.mark.django_db

# Both annotators: helpful A clearly better, harmless B slightly better, honest a tie.
JUDGMENTS = {"helpful": JudgmentInput("A", 2), "harmless": JudgmentInput("B", 1), "honest": JudgmentInput("tie")}


@pytest.fixture
def project():
    project = make_project(comparisons=2, overlap_k=2, gold_rate=0, shuffle_sides=False)
    import_lines(project, [native_line(5, labels={"helpful": "B"})])
    for user in (member(project), member(project)):
        while (task := task_next_for(project=project, user=user)) is not None:
            annotation_submit(task=task, user=user, judgments=JUDGMENTS)
    return project


def _stats(api, project, user, **params):
    api.force_authenticate(user)
    return api.get(f"/api/v1/projects/{project.slug}/stats", params)


@pytest.mark.parametrize("role", [Role.ADMIN, Role.RESEARCHER])
def test_admins_and_researchers_get_the_figures(api, project, role):
    response = _stats(api, project, member(project, role))
    assert response.status_code == 200
    body = response.json()
    # Two annotators labeled all three comparisons; one of them also carries an imported label.
    assert body["progress"] == {"comparisons": 3, "gold": 0, "overlap_k": 2, "complete": 3, "human_annotations": 6,
                                "imported_label_sets": 1, "annotators": 2}
    helpful = body["objectives"][0]
    assert helpful["key"] == "helpful"
    assert helpful["distribution"] == {"-3": 0, "-2": 6, "-1": 0, "0": 0, "1": 0, "2": 0, "3": 0, "unspecified": 0}
    assert helpful["percent_agreement"] == 1.0
    assert helpful["position_bias"] == {"left_won": 1.0, "n": 6}
    assert body["objective_correlation"]["helpful"]["harmless"] == {"conflict_rate": 1.0, "pearson": None, "n": 3}
    assert body["include_imported"] is False


def test_include_imported_adds_imported_labels_to_the_distribution(api, project):
    body = _stats(api, project, member(project, Role.RESEARCHER), include_imported="true").json()
    assert body["include_imported"] is True
    assert body["objectives"][0]["distribution"]["unspecified"] == 1


def test_a_bad_include_imported_value_is_a_400_naming_the_parameter(api, project):
    response = _stats(api, project, member(project, Role.ADMIN), include_imported="maybe")
    assert response.status_code == 400
    assert "include_imported" in response.json()["detail"]


def test_annotators_are_refused(api, project):
    response = _stats(api, project, member(project, Role.ANNOTATOR))
    assert response.status_code == 403
    assert "admin or researcher" in response.json()["detail"]


def test_non_members_get_404_as_for_an_unknown_project(api, project):
    outsider = make_project()
    response = _stats(api, project, member(outsider, Role.ADMIN))
    assert response.status_code == 404
    assert response.json() == {"detail": "No such project."}


def test_anonymous_requests_are_refused(project):
    response = APIClient().get(f"/api/v1/projects/{project.slug}/stats")
    assert response.status_code == 401  # token auth comes first and asks for credentials
    assert "detail" in response.json()
