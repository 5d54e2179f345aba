"""Back on the labeling page: reopen an earlier submission of one's own, pre-filled as seen, and save an edit."""

import html

import pytest

from annotate_app.models import Annotation, AnnotationRevision, Task
from tests.factories import annotate, logged_in_client, make_project, make_user, member

pytestmark = pytest.mark.django_db


def _project_with_submissions(count: int = 2):
    project = make_project(comparisons=3, overlap_k=1, gold_rate=0)
    user = member(project)
    annotations = [Annotation.objects.get(task=annotate(project, user, {"helpful": -2})) for _ in range(count)]
    return project, user, annotations


def test_back_opens_the_latest_submission_then_earlier_ones():
    project, user, (first, second) = _project_with_submissions()
    client = logged_in_client(user)
    response = client.get(f"/projects/{project.slug}/label/back/")
    assert response.status_code == 302 and response.url == f"/projects/{project.slug}/annotations/{second.pk}/edit/"
    response = client.get(f"/projects/{project.slug}/label/back/?before={second.pk}")
    assert response.url == f"/projects/{project.slug}/annotations/{first.pk}/edit/"
    # Nothing before the first: stay on it and say so.
    response = client.get(f"/projects/{project.slug}/label/back/?before={first.pk}", follow=True)
    assert "no earlier submission" in response.content.decode()
    assert response.redirect_chain[-1][0] == f"/projects/{project.slug}/annotations/{first.pk}/edit/"


def test_the_edit_page_shows_the_sides_as_seen_and_saving_records_a_revision():
    project, user, (annotation, _) = _project_with_submissions()
    Task.objects.filter(pk=annotation.task_id).update(shown_swapped=True)
    client = logged_in_client(user)
    url = f"/projects/{project.slug}/annotations/{annotation.pk}/edit/"
    response = client.get(url)
    page = response.content.decode()
    assert response.context["form"]["choice_helpful"].value() == "2"  # canonical A clearly, shown on the right
    assert 'id="editing-note"' in page and ">Save <kbd>" in page
    assert annotation.comparison.response_b in page.split('id="response-A"')[1].split("</div>")[0]

    response = client.post(url, {"choice_helpful": "-3", "choice_harmless": "0", "choice_honest": "1"})

    assert response.status_code == 302 and response.url == f"/projects/{project.slug}/label/"
    stored = {j.objective.key: (j.choice, j.strength) for j in annotation.judgments.select_related("objective")}
    assert stored == {"helpful": ("B", 3), "harmless": ("tie", None), "honest": ("A", 1)}
    assert AnnotationRevision.objects.get().previous["judgments"]["helpful"]["choice"] == "A"


def test_saving_with_an_objective_missing_names_it_and_changes_nothing():
    project, user, (annotation, _) = _project_with_submissions()
    client = logged_in_client(user)
    response = client.post(f"/projects/{project.slug}/annotations/{annotation.pk}/edit/", {"choice_helpful": "3"})
    assert response.status_code == 200
    assert "Missing a judgment for: Harmlessness, Honesty." in html.unescape(response.content.decode())
    assert not AnnotationRevision.objects.exists()


def test_another_users_annotation_and_other_projects_are_not_found():
    project, user, (annotation, _) = _project_with_submissions()
    colleague = logged_in_client(member(project))
    assert colleague.get(f"/projects/{project.slug}/annotations/{annotation.pk}/edit/").status_code == 404
    assert colleague.post(f"/projects/{project.slug}/annotations/{annotation.pk}/edit/",
                          {"choice_helpful": "3", "choice_harmless": "0", "choice_honest": "0"}).status_code == 404
    outsider = logged_in_client(make_user())
    assert outsider.get(f"/projects/{project.slug}/label/back/").status_code == 404
    assert not AnnotationRevision.objects.exists()


@pytest.mark.parametrize("before", ["abc", "-1", "1.5", str(2**63), "9" * 40])
def test_a_bad_before_is_rejected_naming_it(before):
    project, user, _ = _project_with_submissions()
    response = logged_in_client(user).get(f"/projects/{project.slug}/label/back/", {"before": before})
    assert response.status_code == 400 and "before" in response.content.decode()


@pytest.mark.parametrize("annotation_id", ["0", str(2**63), "9" * 40])
def test_an_annotation_id_out_of_range_is_not_found(annotation_id):
    project, user, _ = _project_with_submissions(1)
    response = logged_in_client(user).get(f"/projects/{project.slug}/annotations/{annotation_id}/edit/")
    assert response.status_code == 404
