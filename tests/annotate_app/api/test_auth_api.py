"""Signing in to the API: tokens expire and rotate, repeated failures are refused, the API is rate limited."""

from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.conf import global_settings
from django.utils import timezone
from rest_framework.authtoken.models import Token

from tests.factories import make_user

pytestmark = pytest.mark.django_db

URL = "/api/v1/auth/token/"


def _login(api, username, password, address="10.0.0.1"):
    return api.post(URL, {"username": username, "password": password}, REMOTE_ADDR=address)


def test_a_login_returns_a_token_with_its_expiry_and_the_token_works(api, settings):
    settings.MORM_TOKEN_TTL_DAYS = 30
    user = make_user()
    body = _login(api, user.username, "pw-for-tests").json()
    expires_at = timezone.datetime.fromisoformat(body["expires_at"].replace("Z", "+00:00"))
    assert timedelta(days=29) < expires_at - timezone.now() <= timedelta(days=30)
    api.credentials(HTTP_AUTHORIZATION=f"Token {body['token']}")
    assert api.get("/api/v1/me").json()["username"] == user.username
    assert _login(api, user.username, "pw-for-tests").json()["token"] == body["token"]  # kept while valid


def test_a_login_works_under_the_configured_password_hashers(api, settings):
    """The other tests hash with MD5 (tests/conftest.py); production hashes with Django's defaults."""
    settings.PASSWORD_HASHERS = global_settings.PASSWORD_HASHERS
    user = make_user()
    assert user.password.startswith("pbkdf2_sha256$")
    response = _login(api, user.username, "pw-for-tests")
    assert response.status_code == 200 and response.json()["token"]
    assert _login(api, user.username, "wrong-password").status_code == 400


def test_an_expired_token_is_401_saying_so_and_the_next_login_replaces_it(api, settings):
    settings.MORM_TOKEN_TTL_DAYS = 1
    user = make_user()
    old = _login(api, user.username, "pw-for-tests").json()["token"]
    Token.objects.filter(key=old).update(created=timezone.now() - timedelta(days=1, seconds=1))
    api.credentials(HTTP_AUTHORIZATION=f"Token {old}")
    response = api.get("/api/v1/me")
    assert response.status_code == 401 and "Token expired" in response.json()["detail"]
    api.credentials()
    new = _login(api, user.username, "pw-for-tests").json()["token"]
    assert new != old
    api.credentials(HTTP_AUTHORIZATION=f"Token {new}")
    assert api.get("/api/v1/me").status_code == 200


def test_tokens_live_forever_when_the_lifetime_is_zero(api, settings):
    settings.MORM_TOKEN_TTL_DAYS = 0
    user = make_user()
    body = _login(api, user.username, "pw-for-tests").json()
    assert body["expires_at"] is None
    Token.objects.filter(key=body["token"]).update(created=timezone.now() - timedelta(days=3650))
    api.credentials(HTTP_AUTHORIZATION=f"Token {body['token']}")
    assert api.get("/api/v1/me").status_code == 200


def test_repeated_wrong_passwords_for_one_username_are_429_even_with_the_right_one_then(api, settings):
    settings.AXES_FAILURE_LIMIT = 3
    user = make_user()
    codes = [_login(api, user.username, "wrong", address=f"10.0.1.{i}").status_code for i in range(3)]
    assert codes == [400, 400, 429]
    response = _login(api, user.username, "pw-for-tests", address="10.0.1.99")
    assert response.status_code == 429 and "Too many failed logins" in response.json()["detail"]
    assert int(response["Retry-After"]) == settings.AXES_COOLOFF_TIME.total_seconds()
    other = make_user()
    assert _login(api, other.username, "pw-for-tests", address="10.0.1.98").status_code == 200


def test_repeated_failures_from_one_address_are_429_for_any_username(api, settings):
    settings.AXES_FAILURE_LIMIT = 3
    users = [make_user() for _ in range(4)]
    codes = [_login(api, u.username, "wrong", address="10.0.2.1").status_code for u in users[:3]]
    assert codes == [400, 400, 429]
    assert _login(api, users[3].username, "pw-for-tests", address="10.0.2.1").status_code == 429
    assert _login(api, users[3].username, "pw-for-tests", address="10.0.2.2").status_code == 200


def test_the_lockout_ends_after_the_cool_off_and_tries_during_it_do_not_prolong_it(api, settings):
    settings.AXES_FAILURE_LIMIT = 2
    user = make_user()
    for _ in range(2):
        _login(api, user.username, "wrong")
    (attempt,) = AccessAttempt.objects.all()
    for password in ("wrong", "pw-for-tests"):
        assert _login(api, user.username, password).status_code == 429
    attempt.refresh_from_db()
    assert attempt.failures_since_start == 2  # the refused tries were not counted
    AccessAttempt.objects.update(attempt_time=timezone.now() - settings.AXES_COOLOFF_TIME - timedelta(seconds=1))
    assert _login(api, user.username, "pw-for-tests").status_code == 200


def test_the_api_rate_limit_comes_from_settings_per_user(api, settings):
    settings.MORM_API_THROTTLE_USER = "3/minute"
    user, other = make_user(), make_user()
    api.force_authenticate(user)
    codes = [api.get("/api/v1/me").status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    assert "throttled" in api.get("/api/v1/me").json()["detail"]
    api.force_authenticate(other)
    assert api.get("/api/v1/me").status_code == 200
    settings.MORM_API_THROTTLE_USER = ""
    api.force_authenticate(user)
    assert api.get("/api/v1/me").status_code == 200


def test_requests_without_credentials_are_limited_per_address(api, settings):
    settings.MORM_API_THROTTLE_ANON = "2/minute"
    codes = [api.get("/api/v1/schema/", REMOTE_ADDR="10.0.3.1").status_code for _ in range(3)]
    assert codes == [200, 200, 429]
    assert api.get("/api/v1/schema/", REMOTE_ADDR="10.0.3.2").status_code == 200
    user = make_user()
    codes = [_login(api, user.username, "pw-for-tests", address="10.0.3.3").status_code for _ in range(3)]
    assert codes == [200, 200, 429]  # the token call too, even with the right password


def test_behind_a_proxy_the_address_is_the_one_the_proxy_saw(api, settings):
    settings.MORM_PROXY_COUNT = 1
    settings.MORM_API_THROTTLE_ANON = "1/minute"
    # The client wrote its own X-Forwarded-For; the proxy appended the address it saw.
    spoofed = {"REMOTE_ADDR": "172.16.0.1", "HTTP_X_FORWARDED_FOR": "1.2.3.4, 10.0.4.1"}
    assert api.get("/api/v1/schema/", **spoofed).status_code == 200
    spoofed["HTTP_X_FORWARDED_FOR"] = "5.6.7.8, 10.0.4.1"
    assert api.get("/api/v1/schema/", **spoofed).status_code == 429
    assert api.get("/api/v1/schema/", REMOTE_ADDR="172.16.0.1", HTTP_X_FORWARDED_FOR="10.0.4.2").status_code == 200
