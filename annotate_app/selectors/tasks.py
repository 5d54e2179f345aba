"""The task queue: which comparison an annotator labels next.

Rules (DESIGN.md, Domain): a comparison gets at most ``overlap_k`` submitted
annotations; an annotator never gets the same comparison twice; a slot is held by at
most one open lease. Every write to a comparison's slots (lease, submit) first locks the
comparison row, so counting slots after taking that lock sees every committed change.
On Postgres candidates are locked with ``SELECT ... FOR UPDATE SKIP LOCKED`` so
annotators asking at once take different comparisons instead of queueing on one row;
on SQLite every transaction is ``BEGIN IMMEDIATE`` (settings), which serializes them.

Gold items sit outside the slot rules: every annotator may get each one once, drawn at
the project's ``gold_rate`` while ordinary comparisons remain for them.
"""

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Count, Exists, IntegerField, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from ..models import Comparison, Project, Task, TaskStatus


def _slot_holders(now: datetime) -> Q:
    """Tasks that hold a slot: submitted ones and unexpired leases."""
    return Q(status=TaskStatus.SUBMITTED) | Q(status=TaskStatus.LEASED, expires_at__gt=now)


def _not_finished_by(user: AbstractBaseUser) -> Exists:
    return Exists(
        Task.objects.filter(
            comparison=OuterRef("pk"), annotator=user, status__in=[TaskStatus.SUBMITTED, TaskStatus.SKIPPED]
        )
    )


def _available_comparisons(project: Project, user: AbstractBaseUser, now: datetime) -> QuerySet[Comparison]:
    """Ordinary comparisons the user may still be handed: not done or skipped by them, slots free."""
    taken_by_others = (
        Task.objects.filter(_slot_holders(now), comparison=OuterRef("pk"))
        .exclude(annotator=user)
        .order_by()
        .values("comparison")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return (
        Comparison.objects.filter(project=project, is_gold=False)
        .annotate(taken=Coalesce(Subquery(taken_by_others, output_field=IntegerField()), Value(0)))
        .filter(taken__lt=project.overlap_k)
        .exclude(_not_finished_by(user))
    )


def _gold_candidate(project: Project, user: AbstractBaseUser) -> Comparison | None:
    gold = Comparison.objects.filter(project=project, is_gold=True).exclude(_not_finished_by(user))
    return gold.order_by("?").first()


def slots_taken(comparison: Comparison, *, now: datetime, excluding: AbstractBaseUser | None = None) -> int:
    """How many of the comparison's slots are held (call with the comparison row locked)."""
    holders = Task.objects.filter(_slot_holders(now), comparison=comparison)
    if excluding is not None:
        holders = holders.exclude(annotator=excluding)
    return holders.count()


def open_task_for(*, project: Project, user: AbstractBaseUser, now: datetime | None = None) -> Task | None:
    """The user's unexpired lease in this project, if any."""
    now = now or timezone.now()
    return (
        Task.objects.filter(project=project, annotator=user, status=TaskStatus.LEASED, expires_at__gt=now)
        .order_by("leased_at", "id")
        .first()
    )


def task_next_for(*, project: Project, user: AbstractBaseUser) -> Task | None:
    """The task the user should label now: their open lease, else a new lease, else None.

    Writes the lease (or renews the user's own expired one) in its own transaction.
    """
    now = timezone.now()
    with transaction.atomic():
        current = open_task_for(project=project, user=user, now=now)
        if current is not None:
            return current
        rejected: list[int] = []
        while True:
            candidate = (
                _available_comparisons(project, user, now)
                .exclude(pk__in=rejected)
                .order_by("id")
                .select_for_update(skip_locked=True, of=("self",))
                .first()
            )
            if candidate is None:
                return None
            if project.gold_rate and random.random() < project.gold_rate:
                if (gold := _gold_candidate(project, user)) is not None:
                    return _lease(gold, user, now)
            # The candidate query ran on a snapshot taken before we held the row lock;
            # recount now that no other lease or submit can touch this comparison.
            if slots_taken(candidate, now=now, excluding=user) < project.overlap_k:
                return _lease(candidate, user, now)
            rejected.append(candidate.pk)


def _lease(comparison: Comparison, user: AbstractBaseUser, now: datetime) -> Task:
    expires_at = now + timedelta(minutes=comparison.project.lease_minutes)
    task, created = Task.objects.get_or_create(
        comparison=comparison,
        annotator=user,
        defaults={
            "project": comparison.project,
            "shown_swapped": comparison.project.shuffle_sides and random.random() < 0.5,
            "leased_at": now,
            "expires_at": expires_at,
        },
    )
    if not created:
        # The user's own lease on this comparison expired unsubmitted: renew it, keeping
        # the side order they may already have seen.
        task.status = TaskStatus.LEASED
        task.leased_at = now
        task.expires_at = expires_at
        task.save(update_fields=["status", "leased_at", "expires_at"])
    return task


@dataclass(frozen=True)
class Progress:
    done: int
    remaining: int

    @property
    def total(self) -> int:
        return self.done + self.remaining


def annotator_progress(*, project: Project, user: AbstractBaseUser) -> Progress:
    """The user's submitted count and how many comparisons they may still get."""
    now = timezone.now()
    done = Task.objects.filter(project=project, annotator=user, status=TaskStatus.SUBMITTED).count()
    return Progress(done=done, remaining=_available_comparisons(project, user, now).count())
