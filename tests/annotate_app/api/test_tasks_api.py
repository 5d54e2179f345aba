"""GET tasks/next, POST tasks/{id}/submit and skip over REST."""

import json

import pytest
from django.test import Client
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from annotate_app.models import Annotation, Judgment, Role, Task
from tests.factories import make_project, make_user, member

pytestmark = pytest.mark.django_db

TIES = {"helpful": {"choice": "tie"}, "harmless": {"choice": "tie"}, "honest": {"choice": "tie"}}


@pytest.fixture
def setup(api):
    project = make_project(comparisons=3, overlap_k=1)
    user = member(project, Role.ANNOTATOR)
    api.force_authenticate(user)
    return project, user


def _next(api, project):
    return api.get(f"/api/v1/projects/{project.slug}/tasks/next")


def test_next_returns_a_task_in_shown_orientation_without_canonical_details(api, setup):
    project, _ = setup
    response = _next(api, project)
    assert response.status_code == 200
    body = response.json()
    task = Task.objects.get(pk=body["id"])
    shown = [r["text"] for r in body["responses"]]
    canonical = [task.comparison.response_a, task.comparison.response_b]
    assert shown == (canonical[::-1] if task.shown_swapped else canonical)
    assert [r["label"] for r in body["responses"]] == ["A", "B"]
    assert [o["key"] for o in body["objectives"]] == ["helpful", "harmless", "honest"]
    assert body["progress"] == {"done": 0, "remaining": 3}
    assert "shown_swapped" not in body and "model_a" not in str(body)


def test_submit_stores_mirrored_choice_and_resubmit_is_idempotent(api, setup):
    project, _ = setup
    task_id = _next(api, project).json()["id"]
    Task.objects.filter(pk=task_id).update(shown_swapped=True)
    payload = {"judgments": {**TIES, "helpful": {"choice": "A", "strength": 3, "rationale": "more complete"}},
               "time_spent_ms": 4200}
    first = api.post(f"/api/v1/tasks/{task_id}/submit", payload, format="json")
    assert first.status_code == 201
    assert first.json()["judgments"][0] == {"objective": "helpful", "choice": "A", "strength": 3,
                                            "rationale": "more complete"}
    helpful = Judgment.objects.get(objective__key="helpful")
    assert (helpful.choice, helpful.strength) == ("B", 3)
    again = api.post(f"/api/v1/tasks/{task_id}/submit", payload, format="json")
    assert again.status_code == 200
    assert again.json()["annotation_id"] == first.json()["annotation_id"] and again.json()["created"] is False
    assert Annotation.objects.count() == 1
    assert _next(api, project).json()["progress"]["done"] == 1


def test_a_second_submit_with_other_content_is_409_and_changes_nothing(api, setup):
    project, _ = setup
    task_id = _next(api, project).json()["id"]
    first = {"judgments": {**TIES, "helpful": {"choice": "A", "strength": 2}}, "time_spent_ms": 900}
    assert api.post(f"/api/v1/tasks/{task_id}/submit", first, format="json").status_code == 201
    others = [
        {"judgments": TIES},
        {"judgments": {**TIES, "helpful": {"choice": "A", "strength": 3}}},
        {"judgments": {**TIES, "helpful": {"choice": "A", "strength": 2, "rationale": "now with a reason"}}},
    ]
    for other in others:
        response = api.post(f"/api/v1/tasks/{task_id}/submit", other, format="json")
        assert response.status_code == 409 and "already submitted with other judgments" in response.json()["detail"]
    helpful = Judgment.objects.get(objective__key="helpful")
    assert (helpful.strength, helpful.rationale, Annotation.objects.count()) == (2, "", 1)


def test_a_second_submit_with_the_same_content_but_another_time_is_idempotent(api, setup):
    # A client retrying a submit whose answer it lost measures the time again.
    project, _ = setup
    task_id = _next(api, project).json()["id"]
    payload = {"judgments": {**TIES, "harmless": {"choice": "B", "strength": 1, "rationale": " why "}}}
    first = api.post(f"/api/v1/tasks/{task_id}/submit", {**payload, "time_spent_ms": 1000}, format="json")
    again = api.post(f"/api/v1/tasks/{task_id}/submit", {**payload, "time_spent_ms": 2500}, format="json")
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["annotation_id"] == first.json()["annotation_id"]
    assert Annotation.objects.get().time_spent_ms == 1000


def test_a_second_submit_with_other_flags_is_409(api):
    project = make_project(comparisons=1, ask_flags=True)
    api.force_authenticate(member(project, Role.ANNOTATOR))
    task_id = _next(api, project).json()["id"]
    api.post(f"/api/v1/tasks/{task_id}/submit", {"judgments": TIES, "flags_a": ["unsafe"]}, format="json")
    same = api.post(f"/api/v1/tasks/{task_id}/submit", {"judgments": TIES, "flags_a": ["unsafe"]}, format="json")
    other = api.post(f"/api/v1/tasks/{task_id}/submit", {"judgments": TIES, "flags_b": ["unsafe"]}, format="json")
    assert (same.status_code, other.status_code) == (200, 409)


DEEP = '{"a": ' * 30 + "1" + "}" * 30


@pytest.mark.parametrize(
    "body, field",
    [
        ({"judgments": TIES, "time_spent_ms": 2**31}, "time_spent_ms"),
        ({"judgments": TIES, "time_spent_ms": 2**63}, "time_spent_ms"),
        ({"judgments": TIES, "time_spent_ms": 10**40}, "time_spent_ms"),
        ({"judgments": {**TIES, "helpful": {"choice": "tie", "rationale": "a\x00b"}}}, "judgments.helpful.rationale"),
        ({"judgments": {**TIES, "helpful": {"choice": "tie", "rationale": "\ud800"}}}, "judgments.helpful.rationale"),
        ({"judgments": {**TIES, "hel\x00pful": {"choice": "tie"}}}, "judgments"),
        ({"judgments": TIES, "flags_a": ["\x00"]}, "flags_a[0]"),
        (f'{{"judgments": {json.dumps(TIES)}, "time_spent_ms": 1e400}}', "time_spent_ms"),
        (f'{{"judgments": {json.dumps(TIES)}, "extra": {DEEP}}}', "extra.a.a"),
        (f'{{"judgments": {json.dumps(TIES)}, "extra": {"[" * 50_000 + "]" * 50_000}}}', "extra"),
    ],
    ids=["time 2^31", "time 2^63", "time 10^40", "nul rationale", "surrogate rationale", "nul objective key",
         "nul flag", "time 1e400", "nested 30", "nested 50000"],
)
def test_hostile_submits_are_400_naming_the_field_and_store_nothing(api, setup, body, field):
    project, _ = setup
    task_id = _next(api, project).json()["id"]
    raw = body if isinstance(body, str) else json.dumps(body)
    response = api.post(f"/api/v1/tasks/{task_id}/submit", raw, content_type="application/json")
    assert response.status_code == 400 and field in response.json()["detail"]
    assert not Annotation.objects.exists() and Task.objects.get(pk=task_id).status == "leased"


def test_the_largest_time_spent_the_column_holds_is_stored(api, setup):
    project, _ = setup
    task_id = _next(api, project).json()["id"]
    response = api.post(f"/api/v1/tasks/{task_id}/submit", {"judgments": TIES, "time_spent_ms": 2**31 - 1},
                        format="json")
    assert response.status_code == 201 and Annotation.objects.get().time_spent_ms == 2**31 - 1


def test_skip_then_next_gives_another_comparison(api, setup):
    project, _ = setup
    first = _next(api, project).json()["id"]
    assert api.post(f"/api/v1/tasks/{first}/skip").json()["status"] == "skipped"
    assert _next(api, project).json()["id"] != first


def test_empty_queue_is_204(api, setup):
    project, _ = setup
    for _ in range(3):
        api.post(f"/api/v1/tasks/{_next(api, project).json()['id']}/skip")
    assert _next(api, project).status_code == 204


def test_token_auth_works(setup):
    project, user = setup
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    assert client.get(f"/api/v1/projects/{project.slug}/tasks/next").status_code == 200


def test_token_is_issued_for_username_and_password(api):
    make_user("tok", password="secret-pass-1")
    response = api.post("/api/v1/auth/token/", {"username": "tok", "password": "secret-pass-1"}, format="json")
    assert response.status_code == 200 and response.json()["token"]
    bad = api.post("/api/v1/auth/token/", {"username": "tok", "password": "nope"}, format="json")
    assert bad.status_code == 400 and "detail" in bad.json()


@pytest.mark.parametrize(
    "payload, fragment",
    [
        ({}, "judgments"),
        ({"judgments": {}}, "judgments"),
        ({"judgments": "tie"}, "judgments"),
        ({"judgments": {"helpful": {"choice": "tie"}}}, "Missing a judgment"),
        ({"judgments": {**TIES, "helpful": {"choice": "maybe"}}}, "choice"),
        ({"judgments": {**TIES, "helpful": {"choice": "A"}}}, "strength"),
        ({"judgments": {**TIES, "helpful": {"choice": "A", "strength": 9}}}, "strength"),
        ({"judgments": {**TIES, "helpful": {"choice": "tie", "strength": 1}}}, "tie has no strength"),
        ({"judgments": {**TIES, "helpful": {"choice": "A", "strength": "strong"}}}, "strength"),
        ({"judgments": {**TIES, "extra": {"choice": "tie"}}}, "Unknown objective"),
        ({"judgments": TIES, "time_spent_ms": -1}, "time_spent_ms"),
        ({"judgments": TIES, "flags_a": ["unsafe"]}, "does not ask for flags"),
        ({"judgments": {**TIES, "honest": {"choice": "tie", "likert_a": 4}}}, "Likert"),
    ],
)
def test_bad_submits_are_400_with_a_detail(api, setup, payload, fragment):
    project, _ = setup
    task_id = _next(api, project).json()["id"]
    response = api.post(f"/api/v1/tasks/{task_id}/submit", payload, format="json")
    assert response.status_code == 400
    assert fragment in response.json()["detail"]
    assert not Annotation.objects.exists()


def test_submit_of_a_skipped_task_is_409(api, setup):
    project, _ = setup
    task_id = _next(api, project).json()["id"]
    api.post(f"/api/v1/tasks/{task_id}/skip")
    response = api.post(f"/api/v1/tasks/{task_id}/submit", {"judgments": TIES}, format="json")
    assert response.status_code == 409 and "skipped" in response.json()["detail"]


def test_skip_of_a_submitted_task_is_409(api, setup):
    project, _ = setup
    task_id = _next(api, project).json()["id"]
    api.post(f"/api/v1/tasks/{task_id}/submit", {"judgments": TIES}, format="json")
    assert api.post(f"/api/v1/tasks/{task_id}/skip").status_code == 409


def test_malformed_json_is_400(api, setup):
    project, _ = setup
    task_id = _next(api, project).json()["id"]
    response = api.post(f"/api/v1/tasks/{task_id}/submit", "{not json", content_type="application/json")
    assert response.status_code == 400 and "detail" in response.json()


def test_unknown_task_is_404(api, setup):
    response = api.post("/api/v1/tasks/999999/submit", {"judgments": TIES}, format="json")
    assert response.status_code == 404 and "detail" in response.json()


def test_another_annotators_task_is_404_for_submit_and_skip(api, setup):
    project, _ = setup
    task_id = _next(api, project).json()["id"]
    api.force_authenticate(member(project, Role.ANNOTATOR))
    assert api.post(f"/api/v1/tasks/{task_id}/submit", {"judgments": TIES}, format="json").status_code == 404
    assert api.post(f"/api/v1/tasks/{task_id}/skip").status_code == 404
    assert not Annotation.objects.exists()


def test_non_member_gets_404_for_next(api, setup):
    project, _ = setup
    api.force_authenticate(make_user())
    response = _next(api, project)
    assert response.status_code == 404 and response.json() == {"detail": "No such project."}


def test_anonymous_is_401_or_403(setup):
    project, _ = setup
    response = APIClient().get(f"/api/v1/projects/{project.slug}/tasks/next")
    assert response.status_code in (401, 403) and "detail" in response.json()


def test_an_annotator_never_sees_another_annotators_judgments(api):
    project = make_project(comparisons=1, overlap_k=2)
    first, second = member(project), member(project)
    api.force_authenticate(first)
    task_id = _next(api, project).json()["id"]
    judgments = {**TIES, "honest": {"choice": "B", "strength": 2, "rationale": "SECRET-RATIONALE"}}
    api.post(f"/api/v1/tasks/{task_id}/submit", {"judgments": judgments}, format="json")

    api.force_authenticate(second)
    body = _next(api, project).json()
    assert body["id"] != task_id and Task.objects.get(pk=body["id"]).comparison_id == project.comparisons.get().pk
    assert "SECRET-RATIONALE" not in str(body) and "judgments" not in body
    client = Client()
    client.force_login(second)
    assert "SECRET-RATIONALE" not in client.get(f"/projects/{project.slug}/label/").content.decode()
    assert "SECRET-RATIONALE" not in client.get("/").content.decode()
    assert api.post(f"/api/v1/tasks/{task_id}/submit", {"judgments": judgments}, format="json").status_code == 404


def test_me_names_the_token_holder_and_refuses_anonymous_callers(api):
    user = make_user()
    assert api.get("/api/v1/me").status_code == 401
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    assert api.get("/api/v1/me").json() == {"id": user.pk, "username": user.username}


@pytest.mark.parametrize("task_id", [0, 2**63, 2**64])
def test_a_task_id_out_of_range_is_a_404_not_a_500(api, setup, task_id):
    response = api.post(f"/api/v1/tasks/{task_id}/submit", {"judgments": TIES}, format="json")
    assert response.status_code == 404
