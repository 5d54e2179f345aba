"""The Webhooks page: an admin adds a webhook (its secret shown once), reads the delivery log of a receiver
that failed before it answered, pauses and deletes; other roles and other projects reach nothing."""

import re

import pytest

from annotate_app.models import Role, Webhook
from annotate_app.services import dispatch
from annotate_app.services.webhooks import webhook_create, webhook_deliver, webhook_event_emit
from tests.factories import logged_in_client, make_project, make_user, member
from tests.webhook_receiver import webhook_receiver

pytestmark = pytest.mark.django_db


@pytest.fixture
def project():
    return make_project()


@pytest.fixture
def admin(project):
    return logged_in_client(member(project, Role.ADMIN))


def test_an_admin_adds_a_webhook_and_sees_its_secret_once(project, admin, settings):
    settings.MORM_WEBHOOKS_ALLOW_PRIVATE = True
    page = f"/projects/{project.slug}/webhooks/"
    assert 'name="events" value="annotation.created"' in admin.get(page).content.decode()
    events = ["snapshot.created", "policy_run.finished"]
    response = admin.post(page, {"url": "http://127.0.0.1:9/hook", "events": events}, follow=True)
    webhook = Webhook.objects.get()
    html = response.content.decode()
    assert webhook.secret in html and "shown this once" in html
    assert webhook.events == ["snapshot.created", "policy_run.finished"]
    assert "http://127.0.0.1:9/hook" in html and "snapshot.created, policy_run.finished" in html
    again = admin.get(page).content.decode()
    assert webhook.secret not in again and "http://127.0.0.1:9/hook" in again


@pytest.mark.parametrize("data, field, message", [
    ({"url": "http://10.0.0.1/hook", "events": ["snapshot.created"]}, "url", "a private address"),
    ({"url": "ftp://93.184.215.14/", "events": ["snapshot.created"]}, "url", "http://"),
    ({"url": "https://93.184.215.14/"}, "events", "This field is required"),
    ({"url": "https://93.184.215.14/", "events": ["snapshot.deleted"]}, "events", "not one of the available"),
])
def test_a_refused_webhook_shows_why_beside_its_field(project, admin, data, field, message):
    response = admin.post(f"/projects/{project.slug}/webhooks/", data)
    assert response.status_code == 200 and message in response.content.decode()
    assert field in response.context["form"].errors and not Webhook.objects.exists()


def test_the_delivery_log_shows_each_attempt(project, admin, settings, monkeypatch,
                                            django_capture_on_commit_callbacks):
    settings.MORM_WEBHOOKS_ALLOW_PRIVATE = True
    queued = []
    monkeypatch.setattr(dispatch, "current_app", type("Broker", (), {
        "send_task": lambda self, name, args, countdown=None: queued.append(args[0])})())
    with webhook_receiver(500, 200) as receiver:
        webhook = webhook_create(project=project, url=receiver.url, events=["snapshot.created"])
        with django_capture_on_commit_callbacks(execute=True):
            webhook_event_emit(project_id=project.pk, event="snapshot.created", data={"snapshot": 3})
        for delivery_id in queued:
            with django_capture_on_commit_callbacks(execute=True):
                webhook_deliver(delivery_id=delivery_id)
    html = admin.get(f"/projects/{project.slug}/webhooks/{webhook.pk}/").content.decode()
    rows = re.findall(r'<tr data-delivery="\d+" data-status="(\w+)">(.*?)</tr>', html, re.S)
    assert [status for status, _ in rows] == ["succeeded", "failed"]  # newest first
    cells = [re.findall(r"<td>(.*?)</td>", row, re.S) for _, row in rows]
    assert [(c[1], c[3], c[5]) for c in cells] == [("snapshot.created", "2", "200"), ("snapshot.created", "1", "500")]
    assert "HTTP 500" in rows[1][1] and " ms" in cells[1][6]


def test_pause_resume_and_delete(project, admin):
    webhook = webhook_create(project=project, url="https://93.184.215.14/", events=["snapshot.created"])
    admin.post(f"/projects/{project.slug}/webhooks/{webhook.pk}/pause/")
    webhook.refresh_from_db()
    assert not webhook.active
    assert "Resume" in admin.get(f"/projects/{project.slug}/webhooks/").content.decode()
    admin.post(f"/projects/{project.slug}/webhooks/{webhook.pk}/pause/")
    webhook.refresh_from_db()
    assert webhook.active
    response = admin.post(f"/projects/{project.slug}/webhooks/{webhook.pk}/delete/", follow=True)
    assert "deleted" in response.content.decode() and not Webhook.objects.exists()


@pytest.mark.parametrize("role, code", [(Role.RESEARCHER, 403), (Role.ANNOTATOR, 403), (None, 404)])
def test_only_admins_reach_the_webhook_pages(project, role, code):
    webhook = webhook_create(project=project, url="https://93.184.215.14/", events=["snapshot.created"])
    client = logged_in_client(member(project, role) if role else make_user())
    assert client.get(f"/projects/{project.slug}/webhooks/").status_code == code
    assert client.get(f"/projects/{project.slug}/webhooks/{webhook.pk}/").status_code == code
    assert client.post(f"/projects/{project.slug}/webhooks/{webhook.pk}/delete/").status_code == code
    assert client.post(f"/projects/{project.slug}/webhooks/",
                       {"url": "https://93.184.215.14/", "events": ["snapshot.created"]}).status_code == code
    assert Webhook.objects.filter(active=True).count() == 1


def test_another_projects_webhook_is_not_found(project, admin):
    other = webhook_create(project=make_project(), url="https://93.184.215.14/", events=["snapshot.created"])
    assert admin.get(f"/projects/{project.slug}/webhooks/{other.pk}/").status_code == 404
    assert admin.post(f"/projects/{project.slug}/webhooks/{other.pk}/delete/").status_code == 404
    assert Webhook.objects.filter(pk=other.pk).exists()


def test_the_project_list_links_the_webhooks_page_for_admins_only(project, admin):
    link = f'href="/projects/{project.slug}/webhooks/"'
    assert link in admin.get("/").content.decode()
    assert link not in logged_in_client(member(project, Role.RESEARCHER)).get("/").content.decode()
