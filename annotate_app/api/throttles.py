"""API rate limits and the client address that login lockouts and limits count by.

DRF's own throttle classes read their rates once, at import; these ask ``settings`` on every
request (operators and tests change them there). An empty rate turns a limit off. Counts
live in Django's cache: set ``DJANGO_CACHE_URL`` to a Redis URL so that every gunicorn
process shares them.
"""

from django.conf import settings
from rest_framework.throttling import AnonRateThrottle, UserRateThrottle


def client_address(request) -> str | None:
    """The client's address: ``REMOTE_ADDR``, or behind ``MORM_PROXY_COUNT`` proxies the address
    the outermost of them saw (X-Forwarded-For counted from the right, so a client cannot
    choose it by sending the header itself)."""
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR")
    if settings.MORM_PROXY_COUNT and forwarded:
        addresses = [address.strip() for address in forwarded.split(",")]
        return addresses[-min(settings.MORM_PROXY_COUNT, len(addresses))]
    return request.META.get("REMOTE_ADDR")


class _SettingsRate:
    rate_setting = ""

    def get_rate(self):
        return getattr(settings, self.rate_setting) or None

    def get_ident(self, request):
        return client_address(request)


class UserThrottle(_SettingsRate, UserRateThrottle):
    """Requests per signed-in user: ``MORM_API_THROTTLE_USER`` (e.g. "2000/minute")."""

    rate_setting = "MORM_API_THROTTLE_USER"


class AnonThrottle(_SettingsRate, AnonRateThrottle):
    """Requests per address without credentials: ``MORM_API_THROTTLE_ANON``."""

    rate_setting = "MORM_API_THROTTLE_ANON"
