"""Server-rendered pages: labeling form, project creation, members, imports; roles."""

import html

import pytest
from django.contrib.auth.models import Group
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from annotate_app.models import Annotation, Judgment, Project, Role, Task, TaskStatus
from tests.factories import jsonl, logged_in_client, make_project, make_user, member, native_line

pytestmark = pytest.mark.django_db



def _form(client, project):
    response = client.get(f"/projects/{project.slug}/label/")
    return response, response.context["task"]


def test_label_page_shows_prompt_responses_objectives_and_progress():
    project = make_project(comparisons=2, shuffle_sides=False)
    client = logged_in_client(member(project))
    response, task = _form(client, project)
    html = response.content.decode()
    for text in ["Question number 0?", "First answer to 0.", "Second answer to 0.", "Helpfulness",
                 "Harmlessness", "Honesty", "0 done · 2 remaining", "A strongly better", "B slightly better"]:
        assert text in html
    assert project.objectives.get(key="honest").guideline in html
    assert "Rating of A" not in html  # Likert is off by default


def test_posting_the_form_stores_canonical_judgments_and_shows_the_next_task():
    project = make_project(comparisons=2)
    client = logged_in_client(member(project))
    _, task = _form(client, project)
    Task.objects.filter(pk=task.pk).update(shown_swapped=True)
    response = client.post(
        f"/projects/{project.slug}/tasks/{task.pk}/submit/",
        {"choice_helpful": "-3", "choice_harmless": "2", "choice_honest": "0", "rationale_helpful": "A covers it",
         "time_spent_ms": "1500"},
    )
    assert response.status_code == 302
    stored = {j.objective.key: (j.choice, j.strength) for j in Judgment.objects.all()}
    assert stored == {"helpful": ("B", 3), "harmless": ("A", 2), "honest": ("tie", None)}
    assert Judgment.objects.get(objective__key="helpful").rationale == "A covers it"
    assert Annotation.objects.get().time_spent_ms == 1500
    _, next_task = _form(client, project)
    assert next_task.pk != task.pk


def test_missing_choice_redisplays_the_form_with_an_error():
    project = make_project(comparisons=1)
    client = logged_in_client(member(project))
    _, task = _form(client, project)
    response = client.post(f"/projects/{project.slug}/tasks/{task.pk}/submit/", {"choice_helpful": "1"})
    assert response.status_code == 200
    assert "Choose a judgment for Harmlessness" in response.content.decode()
    # One message beside Submit names every objective left out.
    assert "Missing a judgment for: Harmlessness, Honesty." in response.content.decode()
    assert not Annotation.objects.exists()


@pytest.mark.parametrize("value", ["9", "-4", "x"])
def test_out_of_scale_choice_is_rejected(value):
    project = make_project(comparisons=1)
    client = logged_in_client(member(project))
    _, task = _form(client, project)
    response = client.post(
        f"/projects/{project.slug}/tasks/{task.pk}/submit/",
        {"choice_helpful": value, "choice_harmless": "0", "choice_honest": "0"},
    )
    assert response.status_code == 200 and "Select a valid choice" in response.content.decode()
    assert not Annotation.objects.exists()


def test_a_second_post_of_a_task_with_other_judgments_is_refused_and_says_so():
    project = make_project(comparisons=2, shuffle_sides=False)
    client = logged_in_client(member(project))
    _, task = _form(client, project)
    url = f"/projects/{project.slug}/tasks/{task.pk}/submit/"
    client.post(url, {"choice_helpful": "-3", "choice_harmless": "0", "choice_honest": "0"})
    response = client.post(url, {"choice_helpful": "3", "choice_harmless": "0", "choice_honest": "0"}, follow=True)
    assert "already submitted with other judgments" in html.unescape(response.content.decode())
    helpful = Judgment.objects.get(objective__key="helpful")
    assert (helpful.choice, helpful.strength, Annotation.objects.count()) == ("A", 3, 1)


@pytest.mark.parametrize(
    "extra, message",
    [({"time_spent_ms": str(2**31)}, "between 0 and 2147483647"), ({"rationale_helpful": "a\x00b"}, "Null characters")],
)
def test_hostile_form_values_redisplay_the_form_and_store_nothing(extra, message):
    project = make_project(comparisons=1)
    client = logged_in_client(member(project))
    _, task = _form(client, project)
    response = client.post(f"/projects/{project.slug}/tasks/{task.pk}/submit/",
                           {"choice_helpful": "1", "choice_harmless": "0", "choice_honest": "0", **extra})
    assert response.status_code == 200 and message in response.content.decode()
    assert not Annotation.objects.exists()


def test_likert_and_flags_are_shown_and_stored_when_asked():
    project = make_project(comparisons=1, ask_likert=True, ask_flags=True, shuffle_sides=False)
    client = logged_in_client(member(project))
    response, task = _form(client, project)
    html = response.content.decode()
    assert "Rating of A" in html and "refuses needlessly" in html
    client.post(
        f"/projects/{project.slug}/tasks/{task.pk}/submit/",
        {"choice_helpful": "1", "choice_harmless": "0", "choice_honest": "0", "likert_a_helpful": "3",
         "likert_b_helpful": "6", "flags_a": ["refuses_needlessly"], "flags_b": ["unsafe"]},
    )
    annotation = Annotation.objects.get()
    assert (annotation.flags_a, annotation.flags_b) == (["refuses_needlessly"], ["unsafe"])
    helpful = annotation.judgments.get(objective__key="helpful")
    assert (helpful.likert_a, helpful.likert_b) == (3, 6)


def test_skip_button_skips():
    project = make_project(comparisons=2)
    client = logged_in_client(member(project))
    _, task = _form(client, project)
    client.post(f"/projects/{project.slug}/tasks/{task.pk}/skip/")
    assert Task.objects.get(pk=task.pk).status == TaskStatus.SKIPPED


def test_done_page_when_nothing_is_left():
    project = make_project()
    response = logged_in_client(member(project)).get(f"/projects/{project.slug}/label/")
    assert "Nothing left to label" in response.content.decode()


def test_non_member_gets_404_on_every_project_page():
    project = make_project(comparisons=1)
    client = logged_in_client(make_user())
    for page in ("label/", "import/", "members/"):
        assert client.get(f"/projects/{project.slug}/{page}").status_code == 404


def test_annotator_cannot_post_to_another_annotators_task():
    project = make_project(comparisons=1, overlap_k=2)
    _, task = _form(logged_in_client(member(project)), project)
    intruder = logged_in_client(member(project))
    response = intruder.post(
        f"/projects/{project.slug}/tasks/{task.pk}/submit/",
        {"choice_helpful": "0", "choice_harmless": "0", "choice_honest": "0"},
    )
    assert response.status_code == 404 and not Annotation.objects.exists()


@pytest.mark.parametrize("role", [Role.ANNOTATOR, Role.RESEARCHER])
def test_admin_pages_are_403_for_other_roles(role):
    project = make_project()
    client = logged_in_client(member(project, role))
    assert client.get(f"/projects/{project.slug}/import/").status_code == 403
    assert client.get(f"/projects/{project.slug}/members/").status_code == 403
    assert client.get("/projects/new/").status_code == 403


def test_anonymous_is_sent_to_login():
    response = Client().get("/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_home_lists_only_member_projects_with_progress():
    mine = make_project(comparisons=2, name="Mine")
    make_project(name="Not mine")
    html = logged_in_client(member(mine)).get("/").content.decode()
    assert "Mine" in html and "Not mine" not in html


def test_admin_creates_a_project_adds_a_member_and_imports_in_the_browser():
    creator = make_user()
    client = logged_in_client(creator)
    assert client.get("/projects/new/").status_code == 403
    creator.groups.add(Group.objects.get(name="admin"))
    response = client.post(
        "/projects/new/",
        {"name": "Browser made", "slug": "browser-made", "overlap_k": "2", "lease_minutes": "15",
         "shuffle_sides": "on", "objectives": ["helpful", "harmless"], "gold_rate": "0.05", "gold_pass_accuracy": "0.8",
         "extra_objectives": "concise | Concision | Shorter is better"},
    )
    assert response.status_code == 302
    project = Project.objects.get(slug="browser-made")
    assert (project.gold_rate, project.gold_pass_accuracy) == (0.05, 0.8)
    assert list(project.objectives.values_list("key", flat=True)) == ["helpful", "harmless", "concise"]
    annotator = make_user()
    client.post(f"/projects/{project.slug}/members/", {"action": "add", "username": annotator.username,
                                                       "role": "annotator"})
    assert project.memberships.get(user=annotator).role == "annotator"
    upload = SimpleUploadedFile("pairs.jsonl", jsonl([native_line(i) for i in range(3)]))
    response = client.post(f"/projects/{project.slug}/import/", {"file": upload, "format": "auto"}, follow=True)
    assert "3 created, 0 skipped" in response.content.decode()
    assert project.comparisons.count() == 3


def test_bad_extra_objective_line_is_a_form_error():
    user = make_user()
    user.groups.add(Group.objects.get(name="admin"))
    response = logged_in_client(user).post("/projects/new/", {"name": "X", "slug": "x", "overlap_k": "1",
                                                     "lease_minutes": "5", "extra_objectives": "lonely"})
    assert response.status_code == 200 and "key | name | guideline" in response.content.decode()


def test_bad_import_file_in_the_browser_imports_nothing_and_says_why():
    project = make_project()
    client = logged_in_client(member(project, Role.ADMIN))
    upload = SimpleUploadedFile("bad.jsonl", jsonl([native_line(1), {"response_a": "x"}]))
    response = client.post(f"/projects/{project.slug}/import/", {"file": upload, "format": "native"})
    html = response.content.decode()
    assert "Nothing was imported" in html and "line 2" in html
    assert not project.comparisons.exists()


def test_hh_import_without_objective_in_the_browser_is_an_error_on_the_objective_field():
    project = make_project()
    client = logged_in_client(member(project, Role.ADMIN))
    record = {"chosen": "Human: hi\n\nAssistant: hello", "rejected": "Human: hi\n\nAssistant: go away"}
    upload = SimpleUploadedFile("hh.jsonl", jsonl([record]))
    response = client.post(f"/projects/{project.slug}/import/", {"file": upload, "format": "auto"})
    assert response.status_code == 200
    assert response.context["form"].errors["objective"] == [
        "Nothing was imported: a hh file says which response is preferred but not on which objective; name the "
        "objective its preferences are about (--objective), or no label would be imported"
    ]
    assert not project.comparisons.exists() and not project.import_batches.exists()


def test_recent_imports_show_the_detected_format():
    project = make_project()
    client = logged_in_client(member(project, Role.ADMIN))
    upload = SimpleUploadedFile("pairs.jsonl", jsonl([native_line(1)]))
    client.post(f"/projects/{project.slug}/import/", {"file": upload, "format": "auto"})
    page = client.get(f"/projects/{project.slug}/import/").content.decode()
    assert "<td>pairs.jsonl</td><td>native</td>" in page


def test_too_large_upload_in_the_browser_is_refused(settings):
    settings.MORM_MAX_UPLOAD_BYTES = 10
    project = make_project()
    client = logged_in_client(member(project, Role.ADMIN))
    upload = SimpleUploadedFile("big.jsonl", jsonl([native_line(1)]))
    response = client.post(f"/projects/{project.slug}/import/", {"file": upload, "format": "auto"})
    assert "limited to" in response.content.decode() and not project.comparisons.exists()
