"""Memberships grant rights in their project only, and leaving a project ends what one held there."""

import random

import pytest
from django.core.management import CommandError, call_command

from annotate_app.models import Role, Task, TaskStatus
from annotate_app.services.annotations import annotation_submit, task_skip
from annotate_app.services.projects import membership_remove, membership_set
from annotate_app.services.queue import task_next_for
from tests.factories import logged_in_client, make_project, make_user, member
from tests.queue_checks import ALL_TIES, assert_counts_match_a_recount

pytestmark = pytest.mark.django_db

TIES = {"judgments": {key: {"choice": "tie"} for key in ("helpful", "harmless", "honest")}}


def _creates_a_project(api, user) -> int:
    api.force_authenticate(user)
    return api.post("/api/v1/projects/", {"name": f"By {user.username}"}, format="json").status_code


def test_a_project_admin_cannot_make_anyone_a_project_creator(api):
    project = make_project()
    admin = member(project, Role.ADMIN)
    newcomer = make_user()
    api.force_authenticate(admin)
    response = api.post(f"/api/v1/projects/{project.slug}/members/", {"username": newcomer.username, "role": "admin"})
    assert response.status_code == 200
    assert _creates_a_project(api, newcomer) == 403
    assert _creates_a_project(api, admin) == 403
    assert logged_in_client(admin).get("/projects/new/").status_code == 403
    assert not admin.groups.exists() and not newcomer.groups.exists()


def test_a_demoted_admin_loses_the_project_admin_rights(api):
    project = make_project()
    admin, other = member(project, Role.ADMIN), member(project, Role.ADMIN)
    api.force_authenticate(admin)
    api.post(f"/api/v1/projects/{project.slug}/members/", {"username": other.username, "role": "annotator"})
    api.force_authenticate(other)
    assert api.get(f"/api/v1/projects/{project.slug}/members/").status_code == 403
    assert api.get(f"/api/v1/projects/{project.slug}/tasks/next").status_code == 204  # still a member


def test_a_removed_member_cannot_submit_or_skip_the_lease_they_held_and_its_slot_is_free(api):
    project = make_project(comparisons=2, overlap_k=1, gold_rate=0)
    leaver, stayer = member(project), member(project)
    api.force_authenticate(leaver)
    held = api.get(f"/api/v1/projects/{project.slug}/tasks/next").json()
    membership = project.memberships.get(user=leaver)
    admin_page = logged_in_client(member(project, Role.ADMIN))
    admin_page.post(f"/projects/{project.slug}/members/", {"action": "remove", "membership": membership.pk})

    assert not project.memberships.filter(user=leaver).exists()
    assert Task.objects.get(pk=held["id"]).status == TaskStatus.EXPIRED
    for action in ("submit", "skip"):
        response = api.post(f"/api/v1/tasks/{held['id']}/{action}", TIES if action == "submit" else None,
                            format="json")
        assert response.status_code == 404, response.content
    page = logged_in_client(leaver).post(f"/projects/{project.slug}/tasks/{held['id']}/submit/", {})
    assert page.status_code == 404
    assert not Task.objects.filter(status=TaskStatus.SUBMITTED).exists()
    assert_counts_match_a_recount(project)
    # The slot came back: with one annotation wanted per comparison, both go to the one who stayed.
    for _ in range(2):
        annotation_submit(task=task_next_for(project=project, user=stayer), user=stayer, judgments=ALL_TIES)
    assert task_next_for(project=project, user=stayer) is None
    assert_counts_match_a_recount(project)


def test_members_coming_and_going_amid_labeling_keep_every_count_exact():
    rng = random.Random(16)
    project = make_project(comparisons=10, overlap_k=2, gold_rate=0)
    users = [member(project) for _ in range(4)]
    for _ in range(120):
        user, action = rng.choice(users), rng.random()
        is_member = project.memberships.filter(user=user).exists()
        task = Task.objects.filter(project=project, annotator=user, status=TaskStatus.LEASED).first()
        if not is_member:
            membership_set(project=project, user=user, role=Role.ANNOTATOR)
        elif action < 0.15:
            membership_remove(project=project, user=user)
            assert not Task.objects.filter(project=project, annotator=user, status=TaskStatus.LEASED).exists()
        elif task is None or action < 0.5:
            task_next_for(project=project, user=user)
        elif action < 0.85:
            annotation_submit(task=task, user=user, judgments=ALL_TIES)
        else:
            task_skip(task=task, user=user)
        assert_counts_match_a_recount(project)


def test_an_operator_grants_and_revokes_the_right_to_create_projects(api, capsys):
    user = make_user()
    assert _creates_a_project(api, user) == 403
    call_command("grant_role", user.username, "admin")
    assert "is now in the admin group" in capsys.readouterr().out
    assert _creates_a_project(api, user) == 201
    call_command("grant_role", user.username, "admin", "--revoke")
    assert _creates_a_project(api, user) == 403


@pytest.mark.parametrize("args, fragment", [(["ghost", "admin"], "No user 'ghost'"),
                                            (["{user}", "owners"], "No group named 'owners'")])
def test_grant_role_names_what_it_cannot_find(args, fragment):
    user = make_user()
    with pytest.raises(CommandError, match=fragment):
        call_command("grant_role", *[a.format(user=user.username) for a in args])
