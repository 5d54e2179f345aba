"""Token authentication with an expiry (``MORM_TOKEN_TTL_DAYS``; services.accounts)."""

from rest_framework.authentication import TokenAuthentication
from rest_framework.exceptions import AuthenticationFailed

from ..services.accounts import token_expires_at, token_is_expired


class ExpiringTokenAuthentication(TokenAuthentication):
    """DRF's token authentication, refusing a token past its lifetime with a 401 that says so."""

    def authenticate_credentials(self, key):
        user, token = super().authenticate_credentials(key)
        if token_is_expired(token):
            expired = token_expires_at(token).isoformat(timespec="seconds")
            raise AuthenticationFailed(
                f"Token expired at {expired}; get a new one with POST /api/v1/auth/token/ or on your API token page."
            )
        return user, token
