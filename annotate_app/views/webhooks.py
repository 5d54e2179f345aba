"""The Webhooks page of a project (admins): subscribe a URL, pause, delete, and read each webhook's delivery log."""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from .. import access
from ..forms import WebhookForm
from ..models import Role
from ..services.webhooks import webhook_create, webhook_delete, webhook_set_active
from .pagination import page_of

ADMIN_ONLY = frozenset({Role.ADMIN})
# The new webhook's secret waits here, in the creator's session, for the page after the redirect: shown once.
NEW_SECRET = "webhook_new_secret"


@login_required
@require_http_methods(["GET", "POST"])
def project_webhooks(request, slug):
    project = access.project_for(request.user, slug, roles=ADMIN_ONLY)
    form = WebhookForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            webhook = webhook_create(project=project, url=form.cleaned_data["url"],
                                     events=form.cleaned_data["events"], user=request.user)
        except ValidationError as error:
            for field, errors in error.message_dict.items():
                form.add_error(field if field in form.fields else None, errors)
        else:
            request.session[NEW_SECRET] = {"webhook": webhook.pk, "secret": webhook.secret}
            return redirect("project-webhooks", slug=slug)
    return render(request, "annotate_app/project_webhooks.html", {
        "project": project,
        "form": form,
        "webhooks": page_of(request, project.webhooks.all()),
        "new_secret": request.session.pop(NEW_SECRET, None),
        "timeout": settings.MORM_WEBHOOK_TIMEOUT_SECONDS,
    })


@login_required
def webhook_log(request, slug, webhook_id):
    project = access.project_for(request.user, slug, roles=ADMIN_ONLY)
    webhook = get_object_or_404(project.webhooks, pk=webhook_id)
    return render(request, "annotate_app/webhook_log.html", {
        "project": project, "webhook": webhook, "deliveries": page_of(request, webhook.deliveries.all()),
    })


@login_required
@require_POST
def webhook_pause(request, slug, webhook_id):
    """Pause an active webhook or resume a paused one."""
    project = access.project_for(request.user, slug, roles=ADMIN_ONLY)
    webhook = get_object_or_404(project.webhooks, pk=webhook_id)
    webhook_set_active(webhook=webhook, active=not webhook.active)
    return redirect("project-webhooks", slug=slug)


@login_required
@require_POST
def webhook_remove(request, slug, webhook_id):
    project = access.project_for(request.user, slug, roles=ADMIN_ONLY)
    webhook = get_object_or_404(project.webhooks, pk=webhook_id)
    webhook_delete(webhook=webhook)
    messages.success(request, f"Webhook to {webhook.url} deleted, with its delivery log.")
    return redirect("project-webhooks", slug=slug)
