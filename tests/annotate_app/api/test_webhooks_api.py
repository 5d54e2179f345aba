"""Webhooks over REST: a project admin subscribes a URL (the secret shown once), reads the delivery log of a
real receiver that failed twice, pauses and deletes; bad URLs and events are 400s naming the field; other
roles and other projects reach nothing."""

import pytest
from standardwebhooks import Webhook as Verifier

from annotate_app.models import Role, Webhook
from annotate_app.services import dispatch
from annotate_app.services.webhooks import webhook_create, webhook_deliver, webhook_event_emit
from tests.factories import make_project, make_user, member
from tests.webhook_receiver import webhook_receiver

pytestmark = pytest.mark.django_db


@pytest.fixture
def project():
    return make_project()


@pytest.fixture
def admin(api, project):
    user = member(project, Role.ADMIN)
    api.force_authenticate(user)
    return user


def _hooks(project) -> str:
    return f"/api/v1/projects/{project.slug}/webhooks/"


def test_an_admin_subscribes_and_sees_the_secret_once(api, admin, project):
    response = api.post(_hooks(project), {"url": "https://93.184.215.14/hooks", "events": ["snapshot.created"]},
                        format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) == {"id", "url", "events", "active", "created_at", "secret"}
    assert body["secret"].startswith("whsec_") and body["events"] == ["snapshot.created"] and body["active"]
    assert Webhook.objects.get(pk=body["id"]).created_by == admin
    listed = api.get(_hooks(project)).json()
    assert set(listed) == {"next", "previous", "results"}
    assert [row["id"] for row in listed["results"]] == [body["id"]] and "secret" not in listed["results"][0]
    assert "secret" not in api.get(f"{_hooks(project)}{body['id']}/").json()


def test_the_log_of_a_receiver_that_failed_twice_shows_each_attempt(
        api, admin, project, settings, monkeypatch, django_capture_on_commit_callbacks):
    settings.MORM_WEBHOOKS_ALLOW_PRIVATE = True
    queued = []
    monkeypatch.setattr(dispatch, "current_app", type("Broker", (), {
        "send_task": lambda self, name, args, countdown=None: queued.append((args[0], countdown))})())
    with webhook_receiver(500, 502, 204) as receiver:
        created = api.post(_hooks(project), {"url": receiver.url, "events": ["reward_run.finished"]}, format="json")
        assert created.status_code == 201, created.content
        with django_capture_on_commit_callbacks(execute=True):
            webhook_event_emit(project_id=project.pk, event="reward_run.finished", data={"run": 9, "status": "failed"})
        for delivery_id, _ in queued:  # grows as each failed attempt queues the next
            with django_capture_on_commit_callbacks(execute=True):
                webhook_deliver(delivery_id=delivery_id)
    for got in receiver.received:
        Verifier(created.json()["secret"]).verify(got.body, got.headers)
    log = api.get(f"{_hooks(project)}{created.json()['id']}/deliveries/").json()["results"]
    assert [(row["attempt"], row["status"], row["response_status"]) for row in log] == [
        (3, "succeeded", 204), (2, "failed", 502), (1, "failed", 500)]  # newest first
    assert len({row["message_id"] for row in log}) == 1 and [c for _, c in queued] == [None, 5, 25]
    assert log[2]["error"] == "HTTP 500" and log[0]["payload"]["data"] == {
        "project": project.slug, "run": 9, "status": "failed"}


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:8000/hook", "http://10.0.0.5/hook", "http://169.254.169.254/latest/meta-data/",
    "http://[::1]/hook", "gopher://93.184.215.14/", "not a url",
])
def test_a_private_or_malformed_url_is_a_400_naming_url(api, admin, project, url):
    response = api.post(_hooks(project), {"url": url, "events": ["snapshot.created"]}, format="json")
    assert response.status_code == 400 and response.json()["detail"].startswith("url: ")
    assert not Webhook.objects.exists()


def test_the_operator_setting_allows_a_private_receiver(api, admin, project, settings):
    settings.MORM_WEBHOOKS_ALLOW_PRIVATE = True
    response = api.post(_hooks(project), {"url": "http://10.0.0.5/hook", "events": ["snapshot.created"]},
                        format="json")
    assert response.status_code == 201


@pytest.mark.parametrize("body", [
    {"url": "https://93.184.215.14/", "events": []},
    {"url": "https://93.184.215.14/", "events": ["snapshot.deleted"]},
    {"url": "https://93.184.215.14/", "events": "snapshot.created"},
    {"url": "https://93.184.215.14/", "events": [{"type": "snapshot.created"}]},
    {"url": "https://93.184.215.14/"},
])
def test_a_bad_events_list_is_a_400_naming_events(api, admin, project, body):
    response = api.post(_hooks(project), body, format="json")
    assert response.status_code == 400 and "events" in response.json()["detail"]
    assert not Webhook.objects.exists()


def test_pause_and_delete(api, admin, project, settings):
    webhook = webhook_create(project=project, url="https://93.184.215.14/", events=["snapshot.created"])
    path = f"{_hooks(project)}{webhook.pk}/"
    paused = api.patch(path, {"active": False}, format="json")
    assert paused.status_code == 200 and paused.json()["active"] is False
    assert api.patch(path, {"active": "maybe"}, format="json").status_code == 400
    assert api.delete(path).status_code == 204
    assert api.get(path).status_code == 404 and not Webhook.objects.exists()


@pytest.mark.parametrize("role, code", [(Role.RESEARCHER, 403), (Role.ANNOTATOR, 403), (None, 404)])
def test_only_project_admins_reach_webhooks(api, project, role, code):
    webhook = webhook_create(project=project, url="https://93.184.215.14/", events=["snapshot.created"])
    api.force_authenticate(member(project, role) if role else make_user())
    for method, path, body in [
        ("get", _hooks(project), None),
        ("post", _hooks(project), {"url": "https://93.184.215.14/", "events": ["snapshot.created"]}),
        ("get", f"{_hooks(project)}{webhook.pk}/", None),
        ("patch", f"{_hooks(project)}{webhook.pk}/", {"active": False}),
        ("delete", f"{_hooks(project)}{webhook.pk}/", None),
        ("get", f"{_hooks(project)}{webhook.pk}/deliveries/", None),
    ]:
        response = getattr(api, method)(path, body, format="json")
        assert response.status_code == code, (method, path)
        assert "detail" in response.json()
    assert Webhook.objects.filter(pk=webhook.pk, active=True).count() == 1


def test_another_projects_webhook_is_unreachable(api, admin, project):
    other = webhook_create(project=make_project(), url="https://93.184.215.14/", events=["snapshot.created"])
    for method in ("get", "patch", "delete"):
        response = getattr(api, method)(f"{_hooks(project)}{other.pk}/", {"active": False}, format="json")
        assert response.status_code == 404, method
    assert api.get(f"{_hooks(project)}{other.pk}/deliveries/").status_code == 404
    assert api.get(_hooks(project)).json()["results"] == []
    other.refresh_from_db()
    assert other.active


def test_the_schema_documents_the_webhook_operations_and_their_errors(api):
    schema = api.get("/api/v1/schema/", HTTP_ACCEPT="application/json").json()
    hooks = schema["paths"]["/api/v1/projects/{slug}/webhooks/"]
    assert {"201", "400", "403", "404"} <= set(hooks["post"]["responses"])
    created = hooks["post"]["responses"]["201"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    assert "secret" in schema["components"]["schemas"][created]["properties"]
    detail = schema["paths"]["/api/v1/projects/{slug}/webhooks/{webhook_id}/"]
    assert {"get", "patch", "delete"} <= set(detail) and "404" in detail["delete"]["responses"]
    assert "/api/v1/projects/{slug}/webhooks/{webhook_id}/deliveries/" in schema["paths"]
