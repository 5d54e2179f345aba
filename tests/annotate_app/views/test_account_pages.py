"""The account pages: the API token page, the login lockout, password rules."""

import pytest
from django.test import Client
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests.factories import logged_in_client, make_user

pytestmark = pytest.mark.django_db


def _api_status(key: str) -> int:
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return api.get("/api/v1/me").status_code


def test_the_token_page_makes_shows_and_replaces_the_token(settings):
    settings.MORM_TOKEN_TTL_DAYS = 30
    user = make_user()
    client = logged_in_client(user)
    assert "no API token yet" in client.get("/account/token/").content.decode()
    client.post("/account/token/")
    first = Token.objects.get(user=user).key
    html = client.get("/account/token/").content.decode()
    assert first in html and "Works until" in html
    response = client.post("/account/token/", follow=True)
    second = Token.objects.get(user=user).key
    assert second != first and second in response.content.decode()
    assert "the old one no longer works" in response.content.decode()
    assert (_api_status(first), _api_status(second)) == (401, 200)


def test_the_token_page_needs_a_login():
    response = Client().get("/account/token/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_the_login_page_refuses_with_429_after_repeated_failures(settings):
    settings.AXES_FAILURE_LIMIT = 3
    user = make_user()
    client = Client()
    codes = [client.post("/accounts/login/", {"username": user.username, "password": "wrong"}).status_code
             for _ in range(3)]
    assert codes == [200, 200, 429]
    response = client.post("/accounts/login/", {"username": user.username, "password": "pw-for-tests"})
    assert response.status_code == 429 and "Too many failed logins" in response.content.decode()
    assert "_auth_user_id" not in client.session
    # Another address is not locked out for another user.
    other = make_user()
    response = Client(REMOTE_ADDR="10.9.9.9").post("/accounts/login/", {"username": other.username,
                                                                       "password": "pw-for-tests"})
    assert response.status_code == 302


@pytest.mark.parametrize(
    "password, fragment",
    [
        ("short1!", "too short"),
        ("password123", "too common"),
        ("8472950316", "entirely numeric"),
        ("{username}-x", "too similar"),
    ],
)
def test_a_new_password_passes_the_four_standard_validators(password, fragment):
    user = make_user(username="marguerite-lab")
    client = logged_in_client(user)
    new = password.format(username=user.username)
    response = client.post("/accounts/password_change/", {"old_password": "pw-for-tests", "new_password1": new,
                                                          "new_password2": new})
    assert response.status_code == 200 and fragment in response.content.decode()
    user.refresh_from_db()
    assert user.check_password("pw-for-tests")


def test_a_sound_new_password_is_accepted():
    user = make_user()
    response = logged_in_client(user).post("/accounts/password_change/", {
        "old_password": "pw-for-tests", "new_password1": "quiet-harbor-lantern-42",
        "new_password2": "quiet-harbor-lantern-42"})
    assert response.status_code == 302
    user.refresh_from_db()
    assert user.check_password("quiet-harbor-lantern-42")
