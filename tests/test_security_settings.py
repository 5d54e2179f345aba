"""Security settings (config/settings.py, security block): TLS switches under `check --deploy`, and a
Content-Security-Policy without inline scripts on every page, as every role sees it."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from annotate_app.models import RewardModelRun, Role, RunStatus
from annotate_app.services.policy_runs import policy_run_create
from annotate_app.services.reward_runs import reward_run_create
from annotate_app.services.snapshots import snapshot_create
from tests.factories import annotate, logged_in_client, make_project, member

ROOT = Path(__file__).resolve().parent.parent
TLS_WARNINGS = ("security.W004", "security.W008", "security.W012", "security.W016")


def _check_deploy(tmp_path, **env) -> subprocess.CompletedProcess:
    """`manage.py check --deploy --fail-level WARNING` under production settings plus ``env``."""
    production = {
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DJANGO_ALLOWED_HOSTS": "morm.example.org",
        "MORM_VAR_DIR": str(tmp_path),
    }
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "MORM_"))}
    return subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
                          cwd=ROOT, env={**clean, **production, **env}, capture_output=True, text=True, timeout=120)


def test_check_deploy_passes_with_production_settings_and_https(tmp_path):
    result = _check_deploy(tmp_path, DJANGO_HTTPS="1")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_without_the_https_switch_check_deploy_names_the_tls_warnings(tmp_path):
    result = _check_deploy(tmp_path)
    assert result.returncode != 0
    for warning in TLS_WARNINGS:
        assert warning in result.stdout + result.stderr


def test_https_switch_sets_cookies_hsts_redirect_and_proxy_header(tmp_path):
    code = ("from django.conf import settings as s; print(s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, "
            "s.SECURE_SSL_REDIRECT, s.SECURE_HSTS_SECONDS >= 31536000, s.SECURE_HSTS_INCLUDE_SUBDOMAINS, "
            "s.SECURE_PROXY_SSL_HEADER)")
    env = {**os.environ, "DJANGO_HTTPS": "1", "MORM_VAR_DIR": str(tmp_path),
           "DJANGO_SETTINGS_MODULE": "config.settings"}
    out = subprocess.run([sys.executable, "-c", f"import django; django.setup(); {code}"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=120).stdout
    assert out.split() == ["True", "True", "True", "True", "True", "('HTTP_X_FORWARDED_PROTO',", "'https')"]


def _script_sources(policy: str) -> list[str]:
    directives = dict((part.strip().split(" ", 1) + [""])[:2] for part in policy.split(";") if part.strip())
    return (directives.get("script-src") or directives["default-src"]).split()


@pytest.fixture
def pages(db):
    """Each role's client and the pages it can open (every server-rendered page of the app)."""
    project = make_project(comparisons=3, overlap_k=1, gold_rate=0)
    annotator, researcher = member(project), member(project, Role.RESEARCHER)
    admin = member(project, Role.ADMIN)
    annotate(project, member(project), {"helpful": 1})
    snapshot = snapshot_create(project=project, format="jsonl")
    run = reward_run_create(project=project, snapshot=snapshot, enqueue=False)
    RewardModelRun.objects.filter(pk=run.pk).update(status=RunStatus.SUCCEEDED)
    run.refresh_from_db()
    policy = policy_run_create(project=project, reward_run=run, enqueue=False)
    p = f"/projects/{project.slug}"
    data_pages = [f"{p}/stats/", f"{p}/exports/", f"{p}/dashboard/", f"{p}/reward-runs/{run.pk}/",
                  f"{p}/reward-runs/compare/?runs={run.pk}", f"{p}/policy-runs/{policy.pk}/",
                  f"{p}/policy-runs/compare/?runs={policy.pk}", "/api/v1/me?format=api"]
    superuser = get_user_model().objects.create_user("root", is_staff=True, is_superuser=True)
    return {
        "anonymous": (Client(), ["/accounts/login/", "/api/v1/schema/", "/no-such-page/"]),
        "annotator": (logged_in_client(annotator), ["/", f"{p}/label/", "/account/token/", "/accounts/password_change/",
                                                        "/no-such-page/"]),
        "researcher": (logged_in_client(researcher), data_pages),
        "admin": (logged_in_client(admin), [f"{p}/members/", f"{p}/import/", f"{p}/gold/", *data_pages]),
        "superuser": (logged_in_client(superuser), ["/projects/new/", "/admin/", "/admin/auth/user/"]),
    }


@pytest.mark.parametrize("role", ["anonymous", "annotator", "researcher", "admin", "superuser"])
def test_every_page_carries_a_csp_without_inline_scripts(pages, role):
    client, urls = pages[role]
    for url in urls:
        response = client.get(url)
        assert response.status_code in (200, 404), (url, response.status_code)
        policy = response.headers.get("Content-Security-Policy", "")
        sources = _script_sources(policy)
        assert sources == ["'self'"], (url, policy)
        assert "frame-ancestors 'none'" in policy and "object-src 'none'" in policy
