"""Global rights and API tokens of user accounts.

Global groups (the ``admin`` group may create projects) are granted here, by an operator:
``manage.py grant_role`` or Django's admin site, which only superusers and staff reach.
Project admins manage memberships (services.projects), which grant nothing global.

API tokens live ``MORM_TOKEN_TTL_DAYS`` days from when they were made (0: forever). A new
one replaces the old; the old one stops working at once.
"""

from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, Group
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from rest_framework.authtoken.models import Token


def group_grant(*, user: AbstractBaseUser, group: str) -> None:
    """Put the user in an existing global group (idempotent)."""
    user.groups.add(_group(group))


def group_revoke(*, user: AbstractBaseUser, group: str) -> None:
    """Take the user out of an existing global group (idempotent)."""
    user.groups.remove(_group(group))


def _group(name: str) -> Group:
    group = Group.objects.filter(name=name).first()
    if group is None:
        known = ", ".join(Group.objects.order_by("name").values_list("name", flat=True))
        raise ValidationError(f"No group named {name!r}; the groups are: {known}.")
    return group


def token_expires_at(token: Token) -> datetime | None:
    """When the token stops working, or None when tokens do not expire."""
    if not settings.MORM_TOKEN_TTL_DAYS:
        return None
    return token.created + timedelta(days=settings.MORM_TOKEN_TTL_DAYS)


def token_of(user: AbstractBaseUser) -> Token | None:
    """The user's API token, if they have one (valid or expired)."""
    return Token.objects.filter(user=user).first()


def token_is_expired(token: Token) -> bool:
    expires_at = token_expires_at(token)
    return expires_at is not None and expires_at <= timezone.now()


@transaction.atomic
def token_rotate(*, user: AbstractBaseUser) -> Token:
    """Replace the user's API token with a new one; the old one stops working now."""
    Token.objects.filter(user=user).delete()
    return Token.objects.create(user=user)


@transaction.atomic
def token_for_login(*, user: AbstractBaseUser) -> Token:
    """The user's current token after they proved their password: kept while valid, else a new one."""
    token = Token.objects.select_for_update().filter(user=user).first()
    if token is None or token_is_expired(token):
        return token_rotate(user=user)
    return token
