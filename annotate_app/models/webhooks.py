"""Webhooks (Standard Webhooks): a project's subscriptions to its events, and the log of every delivery attempt."""

from django.conf import settings
from django.db import models

from .project import Project


class WebhookEvent(models.TextChoices):
    ANNOTATION_CREATED = "annotation.created", "An annotation was submitted"
    SNAPSHOT_CREATED = "snapshot.created", "A snapshot was written"
    REWARD_RUN_FINISHED = "reward_run.finished", "A reward-model run finished (succeeded, failed or cancelled)"
    POLICY_RUN_FINISHED = "policy_run.finished", "A PPO run finished (succeeded, failed or cancelled)"
    GENERATION_FINISHED = "generation.finished", "A generation of comparisons finished"


class Webhook(models.Model):
    """An endpoint that receives the project's ``events``, signed with ``secret`` (``services.webhooks``)."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="webhooks")
    url = models.CharField(max_length=2000, help_text="http(s) URL the events are POSTed to.")
    events = models.JSONField(help_text="The event types it receives, e.g. [\"snapshot.created\"].")
    secret = models.CharField(
        max_length=120, help_text="whsec_ + base64 of the signing key; shown to its creator once."
    )
    active = models.BooleanField(default=True, help_text="A paused webhook receives nothing.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        # Every annotation submit asks which active webhooks its project has: one index lookup.
        indexes = [models.Index(fields=["project", "active"], name="webhook_project_active")]

    def __str__(self) -> str:
        return f"webhook {self.pk} ({self.project_id}: {self.url})"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class WebhookDelivery(models.Model):
    """One attempt to deliver one message; a message's attempts share its ``message_id`` (the ``webhook-id``).

    A failed attempt that is not the last creates the next one, pending until ``next_attempt_at``.
    """

    webhook = models.ForeignKey(Webhook, on_delete=models.CASCADE, related_name="deliveries")
    message_id = models.CharField(max_length=40, help_text="msg_...: the webhook-id header, the same on every retry.")
    event = models.CharField(max_length=64)
    payload = models.JSONField(help_text='{"type", "timestamp", "data"} as sent.')
    attempt = models.PositiveSmallIntegerField(default=1)
    status = models.CharField(max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True, help_text="The receiver's HTTP code.")
    response_body = models.CharField(max_length=500, blank=True, help_text="The start of the receiver's answer.")
    error = models.CharField(max_length=500, blank=True, help_text="Why the attempt failed, when no answer came.")
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(help_text="When this attempt is due to be sent.")
    sent_at = models.DateTimeField(null=True, blank=True, help_text="When a worker took it (at most one does).")
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["webhook", "-id"], name="webhook_delivery_log"),
            # Crash recovery looks for lost attempts among the few pending ones, never through the whole log.
            models.Index(fields=["next_attempt_at"], condition=models.Q(status="pending"),
                         name="webhook_delivery_pending"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["message_id", "attempt"], name="webhook_delivery_attempt_once"),
            models.CheckConstraint(
                condition=models.Q(status__in=DeliveryStatus.values), name="webhook_delivery_status"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.message_id} attempt {self.attempt} ({self.status})"
