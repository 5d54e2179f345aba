"""The API's contract: every error is JSON {"detail": ...}, routes take either trailing slash,
bodies of nested input are JSON objects only, and the schema documents the error codes."""

import json

import pytest
from django.test import Client

from annotate_app.models import Project, RewardModelRun, Role
from tests.factories import labelled_project, make_user, member

pytestmark = pytest.mark.django_db


@pytest.fixture
def project():
    return labelled_project()


def _json_detail(response) -> str:
    assert response["Content-Type"].startswith("application/json"), response.content[:200]
    body = response.json()
    assert set(body) == {"detail"} and body["detail"]
    return body["detail"]


@pytest.mark.parametrize("path", [
    "/api/v1/tasks/abc/submit",
    "/api/v1/tasks/-1/skip",
    "/api/v1/projects/{slug}/reward-runs/first/",
    "/api/v1/projects/{slug}/snapshots/1e3/download",
    "/api/v1/projects/sl%00ug/",
    "/api/v1/no-such-thing",
    "/api/v2/projects/",
    "/api/",
])
def test_unknown_paths_and_non_numeric_ids_are_json_404s(api, path):
    api.force_authenticate(make_user(is_superuser=True))
    for method in ("get", "post", "put", "patch", "delete", "options"):
        response = getattr(api, method)(path.format(slug="some-project"))
        assert response.status_code == 404, method
        _json_detail(response)


def test_an_anonymous_caller_gets_the_same_json_404(api):
    response = api.post("/api/v1/tasks/abc/submit", {}, format="json")
    assert response.status_code == 404 and _json_detail(response)


def test_pages_outside_the_api_keep_the_html_404(client):
    response = client.get("/no-such-page/")
    assert response.status_code == 404 and response["Content-Type"].startswith("text/html")


def test_a_request_django_refuses_before_any_view_is_a_json_400_under_the_api(client):
    response = client.get("/api/v1/me", HTTP_HOST="evil.example")
    assert response.status_code == 400 and _json_detail(response) == "Bad request."
    page = client.get("/", HTTP_HOST="evil.example")
    assert page.status_code == 400 and page["Content-Type"].startswith("text/html")


def test_an_unexpected_error_under_the_api_is_a_json_500(api, project, monkeypatch):
    def broken(**kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr("annotate_app.api.views.task_next", broken)
    client = Client(raise_request_exception=False)
    client.force_login(member(project))
    response = client.get(f"/api/v1/projects/{project.slug}/tasks/next")
    assert response.status_code == 500
    assert _json_detail(response) == "Server error." and "boom" not in response.content.decode()


@pytest.mark.parametrize("path", ["/api/v1/projects/{slug}/tasks/next", "/api/v1/projects/{slug}/tasks/next/",
                                  "/api/v1/projects/{slug}/", "/api/v1/projects/{slug}", "/api/v1/me", "/api/v1/me/"])
def test_routes_answer_with_and_without_the_trailing_slash(api, project, path):
    api.force_authenticate(member(project))
    response = api.get(path.format(slug=project.slug))
    assert response.status_code == 200, response.content[:200]


def test_a_post_without_the_trailing_slash_reaches_the_view(api, project):
    api.force_authenticate(member(project, Role.RESEARCHER))
    response = api.post(f"/api/v1/projects/{project.slug}/reward-runs", {}, format="json")
    assert response.status_code == 202 and RewardModelRun.objects.count() == 1


# Operations whose input nests objects take a JSON object and nothing else.
JSON_ONLY = {
    "reward runs": ("post", lambda p: f"/api/v1/projects/{p.slug}/reward-runs/", Role.RESEARCHER),
    "policy runs": ("post", lambda p: f"/api/v1/projects/{p.slug}/policy-runs/", Role.RESEARCHER),
    "gold": ("put", lambda p: f"/api/v1/projects/{p.slug}/comparisons/{p.comparisons.first().pk}/gold", Role.ADMIN),
    "projects": ("post", lambda p: "/api/v1/projects/", "superuser"),
}
MALFORMED = {
    "multipart": ({"data": b'--x\r\nContent-Disposition: form-data; name="config"\r\n\r\n{"epochs": 1}\r\n--',
                   "content_type": "multipart/form-data; boundary=x"}, 415),
    "form": ({"data": "config=%7B%7D&snapshot=", "content_type": "application/x-www-form-urlencoded"}, 415),
    "plain text": ({"data": "{}", "content_type": "text/plain"}, 415),
    "not json": ({"data": "{config: 1", "content_type": "application/json"}, 400),
    "a list": ({"data": "[]", "content_type": "application/json"}, 400),
    "a string": ({"data": '"go"', "content_type": "application/json"}, 400),
    "null": ({"data": "null", "content_type": "application/json"}, 400),
    "empty json": ({"data": "", "content_type": "application/json"}, 400),
    "empty multipart": ({"data": "", "content_type": "multipart/form-data; boundary=x"}, 400),
    "empty, no type": ({"data": "", "content_type": None}, 400),
}


def _send(api, method, url, request):
    """The body and Content-Type exactly as given (None: no Content-Type header at all)."""
    extra = {} if request["content_type"] is None else {"CONTENT_TYPE": request["content_type"]}
    return api.generic(method.upper(), url, request["data"], request["content_type"] or "", **extra)


def _caller(project, role):
    if role == "superuser":
        return make_user(is_superuser=True)
    return member(project, role)


@pytest.mark.parametrize("operation", JSON_ONLY)
def test_malformed_bodies_are_refused_and_change_nothing(api, project, operation):
    method, url, role = JSON_ONLY[operation]
    api.force_authenticate(_caller(project, role))
    projects_before = Project.objects.count()
    for kind, (request, code) in MALFORMED.items():
        response = _send(api, method, url(project), request)
        assert response.status_code == code, kind
        detail = _json_detail(response)
        if kind.startswith("empty"):
            assert "{} for all the defaults" in detail, kind
    assert not RewardModelRun.objects.exists() and Project.objects.count() == projects_before
    assert not project.comparisons.filter(is_gold=True).exists()


def test_a_submit_that_is_not_a_json_object_is_refused(api, project):
    user = member(project)
    api.force_authenticate(user)
    task_id = api.get(f"/api/v1/projects/{project.slug}/tasks/next").json()["id"]
    for request, code in MALFORMED.values():
        response = _send(api, "post", f"/api/v1/tasks/{task_id}/submit", request)
        assert response.status_code == code and _json_detail(response)
    assert not user.annotations.exists()


def test_an_explicit_empty_object_asks_for_the_defaults(api, project):
    api.force_authenticate(member(project, Role.RESEARCHER))
    response = api.post(f"/api/v1/projects/{project.slug}/reward-runs/", data="{}", content_type="application/json")
    assert response.status_code == 202 and response.json()["config"]["mode"] == RewardModelRun.objects.get().config[
        "mode"]


def _schema(api):
    api.force_authenticate(make_user())
    return api.get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()


def test_the_schema_documents_the_error_codes_of_every_operation(api):
    schema = _schema(api)
    error = {"$ref": "#/components/schemas/Error"}
    assert schema["components"]["schemas"]["Error"]["required"] == ["detail"]
    operations = [(path, method, op) for path, ops in schema["paths"].items() for method, op in ops.items()]
    assert len(operations) >= 30
    for path, method, op in operations:
        codes = set(op["responses"])
        assert "401" in codes, (method, path)
        if "{" in path:
            assert {"403", "404"} <= codes, (method, path)
        if "requestBody" in op:
            assert {"400", "415"} <= codes, (method, path)
        for code in codes - {"200", "201", "202", "204"}:
            assert op["responses"][code]["content"]["application/json"]["schema"] == error, (method, path, code)
    paths = schema["paths"]
    assert "429" in paths["/api/v1/projects/{slug}/reward-runs/"]["post"]["responses"]
    assert "429" in paths["/api/v1/projects/{slug}/policy-runs/"]["post"]["responses"]
    assert "409" in paths["/api/v1/tasks/{task_id}/submit"]["post"]["responses"]
    assert "409" in paths["/api/v1/projects/{slug}/snapshots/{snapshot_id}/download"]["get"]["responses"]
    assert "413" in paths["/api/v1/projects/{slug}/comparisons/import"]["post"]["responses"]
    assert "400" in paths["/api/v1/projects/{slug}/reward-runs/{run_id}/metrics"]["get"]["responses"]


def test_the_schema_lists_each_route_once_and_json_only_bodies_as_json(api):
    schema = _schema(api)
    assert "/api/v1/projects/{slug}/tasks/next/" not in schema["paths"]
    assert "/api/v1/projects" not in schema["paths"]
    run_create = schema["paths"]["/api/v1/projects/{slug}/reward-runs/"]["post"]
    assert list(run_create["requestBody"]["content"]) == ["application/json"]
    assert json.dumps(schema).count('"operationId"') == len(
        [op for ops in schema["paths"].values() for op in ops.values()])
