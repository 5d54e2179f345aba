"""Webhooks per Standard Webhooks (standardwebhooks.com): subscriptions, signed deliveries, retries.

The rest of the app calls ``webhook_event_emit`` when something happens; it costs one indexed
query when the project has no webhook. Each matching webhook gets a message (``msg_...``) whose
first attempt is logged as a pending ``WebhookDelivery`` and sent by name to a worker after
commit (``rm_worker.deliver_webhook``). The worker's ``webhook_deliver`` POSTs it signed with the
``standardwebhooks`` package (``webhook-id``, ``webhook-timestamp``, ``webhook-signature:
v1,<base64 HMAC-SHA256 of "id.timestamp.body">``); an answer other than 2xx, a timeout or a
connection error logs the attempt as failed and schedules the next with exponential backoff,
until ``MORM_WEBHOOK_MAX_ATTEMPTS``.

Against server-side request forgery, a URL whose host resolves to a private, loopback,
link-local, reserved or multicast address is refused when the webhook is created and again at
every delivery (DNS may have changed since), and the request goes to the address that was
checked; ``MORM_WEBHOOKS_ALLOW_PRIVATE`` lifts the rule for receivers on the operator's network.
"""

import base64
import http.client
import ipaddress
import json
import logging
import secrets
import socket
import ssl
import time
import uuid
from datetime import datetime, timedelta
from urllib.parse import SplitResult, urlsplit

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from standardwebhooks import Webhook as Signer

from ..models import (
    DeliveryStatus,
    Generation,
    PolicyRun,
    Project,
    RewardModelRun,
    Snapshot,
    TrainingRun,
    Webhook,
    WebhookDelivery,
    WebhookEvent,
)
from .dispatch import webhook_delivery_enqueue

logger = logging.getLogger(__name__)

MAX_WEBHOOKS_PER_PROJECT = 20
# Standard Webhooks asks for a key of 24 to 64 random bytes.
SECRET_BYTES = 32
# Retries wait 5 s, 25 s, 125 s, ... (five times longer each time), at most 6 hours.
FIRST_RETRY_SECONDS = 5
BACKOFF_FACTOR = 5
MAX_RETRY_SECONDS = 6 * 3600
EXCERPT_CHARS = WebhookDelivery._meta.get_field("response_body").max_length
# rm_worker.deliver_webhook's time limit: an attempt taken longer ago than this (and the stale margin) ended unlogged.
DELIVERY_TIME_LIMIT_SECONDS = 120
# Attempts resent per recovery pass (every MORM_RECOVER_EVERY_SECONDS): a backlog drains over a few passes.
RECOVER_BATCH = 500
DEFAULT_PORTS = {"http": 80, "https": 443}


class WebhookTargetRefused(Exception):
    """The webhook's host resolves to an address webhooks may not be sent to (``MORM_WEBHOOKS_ALLOW_PRIVATE``)."""


def webhook_create(*, project: Project, url: str, events: list[str], user: AbstractBaseUser | None = None) -> Webhook:
    """Subscribe ``url`` to the project's ``events``; the returned webhook's ``secret`` is for its creator's eyes.

    Raises ValidationError naming ``url`` (not http(s), unresolvable, or a refused address) or
    ``events`` (none, or unknown), or without a field when the project has MAX_WEBHOOKS_PER_PROJECT.
    """
    url = url.strip()
    errors = {}
    try:
        webhook_url_check(url)
    except ValidationError as error:
        errors.update(error.message_dict)
    unknown = sorted(set(events) - set(WebhookEvent.values))
    if unknown or not events:
        errors["events"] = [
            f"Unknown event: {', '.join(unknown)}; use any of {', '.join(WebhookEvent.values)}." if unknown
            else f"Choose at least one of {', '.join(WebhookEvent.values)}."
        ]
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        # The project row's lock makes the count and the insert one step for concurrent creates.
        Project.objects.select_for_update().values_list("pk", flat=True).get(pk=project.pk)
        if project.webhooks.count() >= MAX_WEBHOOKS_PER_PROJECT:
            raise ValidationError(f"A project has at most {MAX_WEBHOOKS_PER_PROJECT} webhooks; delete one first.")
        return Webhook.objects.create(
            project=project,
            url=url,
            events=[event for event in WebhookEvent.values if event in events],
            secret="whsec_" + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode(),
            created_by=user,
        )


def webhook_delete(*, webhook: Webhook) -> None:
    """Remove the webhook and its delivery log; attempts still queued for it then find nothing to send."""
    webhook.delete()


def webhook_set_active(*, webhook: Webhook, active: bool) -> Webhook:
    """Pause or resume the webhook: a paused one is sent no new message, and its pending retries are dropped."""
    webhook.active = active
    webhook.save(update_fields=["active"])
    return webhook


def webhook_url_check(url: str) -> None:
    """ValidationError naming ``url`` unless it is an http(s) URL whose host resolves to addresses webhooks may use."""
    if len(url) > Webhook._meta.get_field("url").max_length:
        raise ValidationError({"url": "The URL is too long."})
    if any(char.isspace() or not char.isprintable() for char in url):
        raise ValidationError({"url": "The URL has spaces or control characters; percent-encode them."})
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:  # a bad port or IPv6 literal
        raise ValidationError({"url": f"Not a valid URL: {error}."}) from None
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        raise ValidationError({"url": "Give an http:// or https:// URL with a host."})
    try:
        _deliverable_address(parts.hostname, port or DEFAULT_PORTS[parts.scheme])
    except (socket.gaierror, UnicodeError):  # UnicodeError: a label IDNA cannot encode (empty or too long)
        raise ValidationError({"url": f"The host {parts.hostname} does not resolve."}) from None
    except WebhookTargetRefused as error:
        raise ValidationError({"url": str(error)}) from None


def webhook_event_emit(*, project_id: int, event: str, data: dict) -> None:
    """Queue a message about ``event`` to each of the project's active webhooks that subscribed to it.

    ``data`` (JSON values) becomes the message's ``data``, with the project's slug added as
    ``project``. Call it in the transaction that made the event happen: the messages are logged
    in it and sent once it commits (or never, if it rolls back). One indexed query when no
    webhook listens.
    """
    if event not in WebhookEvent.values:
        raise ValueError(f"Unknown webhook event {event!r}")
    webhooks = [
        webhook
        for webhook in Webhook.objects.filter(project_id=project_id, active=True).only("events", "project__slug")
        .select_related("project")
        if event in webhook.events
    ]
    if not webhooks:
        return
    now = timezone.now()
    deliveries = WebhookDelivery.objects.bulk_create(
        WebhookDelivery(
            webhook=webhook,
            message_id=f"msg_{uuid.uuid4().hex}",
            event=event,
            payload={"type": event, "timestamp": now.isoformat(), "data": {"project": webhook.project.slug, **data}},
            next_attempt_at=now,
        )
        for webhook in webhooks
    )
    for delivery in deliveries:
        webhook_delivery_enqueue(delivery.pk)


def snapshot_created_emit(snapshot: Snapshot) -> None:
    """``snapshot.created``: a snapshot's file and manifest are written."""
    webhook_event_emit(project_id=snapshot.project_id, event=WebhookEvent.SNAPSHOT_CREATED, data={
        "snapshot": snapshot.pk,
        "format": snapshot.format,
        "objective": snapshot.objective or None,
        "rows": snapshot.manifest.get("rows"),
        "sha256": snapshot.sha256,
        "size_bytes": snapshot.size_bytes,
    })


# The finished event of each kind of run, and the field that names what the run was trained on.
RUN_FINISHED = {
    RewardModelRun: (WebhookEvent.REWARD_RUN_FINISHED, "snapshot"),
    PolicyRun: (WebhookEvent.POLICY_RUN_FINISHED, "reward_run"),
}


def run_finished_emit(run: TrainingRun) -> None:
    """``reward_run.finished`` or ``policy_run.finished``: ``run`` succeeded, failed or was cancelled (as stored).

    A generation sends ``generation.finished`` (`generation_finished_emit`).
    """
    if isinstance(run, Generation):
        generation_finished_emit(run)
        return
    if type(run) not in RUN_FINISHED:
        return
    event, source = RUN_FINISHED[type(run)]
    run = type(run).objects.get(pk=run.pk)
    webhook_event_emit(project_id=run.project_id, event=event, data={
        "run": run.pk,
        source: getattr(run, f"{source}_id"),
        "status": run.status,
        "error": run.error,
        "final_metrics": run.final_metrics,
        "finished_at": run.finished_at and run.finished_at.isoformat(),
    })


def generation_finished_emit(generation: Generation) -> None:
    """``generation.finished``: the generation succeeded (with how many comparisons it added and skipped as
    already there), failed or was cancelled (as stored)."""
    generation = Generation.objects.get(pk=generation.pk)
    webhook_event_emit(project_id=generation.project_id, event=WebhookEvent.GENERATION_FINISHED, data={
        "generation": generation.pk,
        "policy_run": generation.policy_run_id,
        "reward_run": generation.reward_run_id,
        "pairing": generation.config.get("pairing"),
        "status": generation.status,
        "created": generation.created_count,
        "skipped": generation.skipped_count,
        "import_batch": generation.import_batch_id,
        "error": generation.error,
        "final_metrics": generation.final_metrics,
        "finished_at": generation.finished_at and generation.finished_at.isoformat(),
    })


def webhook_retry_delay(attempt: int) -> int:
    """Seconds from the failure of ``attempt`` (1 for the first) to the next attempt: exponential, capped."""
    return min(FIRST_RETRY_SECONDS * BACKOFF_FACTOR ** (attempt - 1), MAX_RETRY_SECONDS)


def webhook_deliver(*, delivery_id: int) -> WebhookDelivery | None:
    """Send one pending attempt and log its outcome; a failure that is not the last attempt queues the next.

    At most one worker sends an attempt (it is taken with a conditional UPDATE), so a task
    delivered twice sends once. Returns the attempt as logged, or None when there was nothing to
    send (taken already, or its webhook deleted).
    """
    sent_at = timezone.now()
    taken = WebhookDelivery.objects.filter(pk=delivery_id, status=DeliveryStatus.PENDING, sent_at__isnull=True)
    if not taken.update(sent_at=sent_at):
        return None
    delivery = WebhookDelivery.objects.select_related("webhook").get(pk=delivery_id)
    started = time.monotonic()
    if delivery.webhook.active:
        code, answer, error = _send(delivery, sent_at)
    else:
        code, answer, error = None, "", "The webhook is paused."
    delivery.duration_ms = round((time.monotonic() - started) * 1000)
    delivery.response_status, delivery.response_body, delivery.error = code, answer, error[:EXCERPT_CHARS]
    delivery.status = DeliveryStatus.FAILED if error else DeliveryStatus.SUCCEEDED
    delivery.finished_at = timezone.now()
    delivery.save(update_fields=["duration_ms", "response_status", "response_body", "error", "status", "finished_at"])
    logger.info("webhook %s: %s attempt %d %s (%s)", delivery.webhook_id, delivery.message_id, delivery.attempt,
                delivery.status, error or code)
    if error and delivery.webhook.active and delivery.attempt < settings.MORM_WEBHOOK_MAX_ATTEMPTS:
        _retry_later(delivery)
    return delivery


def _retry_later(failed: WebhookDelivery) -> None:
    delay = webhook_retry_delay(failed.attempt)
    retry = WebhookDelivery.objects.create(
        webhook_id=failed.webhook_id,
        message_id=failed.message_id,
        event=failed.event,
        payload=failed.payload,
        attempt=failed.attempt + 1,
        next_attempt_at=failed.finished_at + timedelta(seconds=delay),
    )
    webhook_delivery_enqueue(retry.pk, delay_seconds=delay)


def webhook_deliveries_recover() -> int:
    """Send again the attempts a worker lost (crash recovery, ``services.recovery``); how many.

    An attempt still pending MORM_STALE_AFTER_SECONDS after it was due was never taken: its task
    was lost (the filesystem broker does not redeliver; a stopped worker drops the retries it held
    as countdowns). One taken but never logged was cut off by its worker's death: it is logged as
    failed and its next attempt queued. A task that was only late still sends once (the attempt
    is taken with a conditional UPDATE).
    """
    now = timezone.now()
    stale = now - timedelta(seconds=settings.MORM_STALE_AFTER_SECONDS)
    pending = WebhookDelivery.objects.filter(status=DeliveryStatus.PENDING)
    lost = list(pending.filter(sent_at__isnull=True, next_attempt_at__lt=stale).values_list("pk", flat=True)
                [:RECOVER_BATCH])
    # Due again from now, so it is resent once per stale period, not at every pass while the workers are down.
    pending.filter(pk__in=lost, sent_at__isnull=True).update(next_attempt_at=now)
    for delivery_id in lost:
        webhook_delivery_enqueue(delivery_id)
    cut_off = pending.filter(sent_at__lt=stale - timedelta(seconds=DELIVERY_TIME_LIMIT_SECONDS))
    for attempt in cut_off.select_related("webhook")[:RECOVER_BATCH]:
        attempt.status, attempt.error, attempt.finished_at = (
            DeliveryStatus.FAILED, "The worker stopped during this attempt.", now)
        if pending.filter(pk=attempt.pk).update(status=attempt.status, error=attempt.error, finished_at=now):
            if attempt.webhook.active and attempt.attempt < settings.MORM_WEBHOOK_MAX_ATTEMPTS:
                _retry_later(attempt)
            lost.append(attempt.pk)
    return len(lost)


def _send(delivery: WebhookDelivery, now: datetime) -> tuple[int | None, str, str]:
    """POST the attempt: (HTTP code or None, the start of the answer, an error or "" for a 2xx)."""
    body = json.dumps(delivery.payload, separators=(",", ":"), sort_keys=True)
    headers = {
        "content-type": "application/json",
        "user-agent": "morm-webhooks",
        "webhook-id": delivery.message_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Signer(delivery.webhook.secret).sign(delivery.message_id, now, body),
    }
    try:
        code, answer = _post(delivery.webhook.url, body.encode(), headers)
    except (OSError, http.client.HTTPException, WebhookTargetRefused) as error:
        return None, "", f"{type(error).__name__}: {error}"
    return code, answer, "" if 200 <= code < 300 else f"HTTP {code}"


def _post(url: str, body: bytes, headers: dict) -> tuple[int, str]:
    parts: SplitResult = urlsplit(url)
    port = parts.port or DEFAULT_PORTS[parts.scheme]
    address = _deliverable_address(parts.hostname, port)
    timeout = settings.MORM_WEBHOOK_TIMEOUT_SECONDS
    if parts.scheme == "https":
        connection = http.client.HTTPSConnection(parts.hostname, port, timeout=timeout,
                                                 context=ssl.create_default_context())
    else:
        connection = http.client.HTTPConnection(parts.hostname, port, timeout=timeout)
    # Connect to the address just checked rather than resolve the name again (a second answer could
    # point inside, DNS rebinding); the Host header and TLS certificate check still use the name.
    connection._create_connection = lambda _, *args: socket.create_connection((address, port), *args)
    try:
        connection.request("POST", (parts.path or "/") + (f"?{parts.query}" if parts.query else ""), body, headers)
        response = connection.getresponse()
        return response.status, response.read(EXCERPT_CHARS).decode("utf-8", "replace")
    finally:
        connection.close()


def _deliverable_address(host: str, port: int) -> str:
    """The address to connect to for ``host``; WebhookTargetRefused when any of its addresses is refused."""
    addresses = [
        ipaddress.ip_address(info[4][0].partition("%")[0])  # an IPv6 zone (fe80::1%eth0) is no part of the address
        for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    ]
    if not settings.MORM_WEBHOOKS_ALLOW_PRIVATE:
        for address in addresses:
            if kind := _refused_kind(address):
                raise WebhookTargetRefused(
                    f"{host} resolves to {address}, a {kind} address: webhooks go to public addresses only "
                    "(the operator can allow others with MORM_WEBHOOKS_ALLOW_PRIVATE=1)."
                )
    return str(addresses[0])


def _refused_kind(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    if address.version == 6 and address.ipv4_mapped:
        address = address.ipv4_mapped
    for kind in ("loopback", "link_local", "multicast", "unspecified", "reserved", "private"):
        if getattr(address, f"is_{kind}"):
            return kind.replace("_", "-")
    return None if address.is_global else "non-public"
