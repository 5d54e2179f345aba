"""Deployment files: docker-compose.yml, Dockerfile, .ci/run, pyproject pins, Makefile, layout.

No Docker engine runs this suite, so the compose file is read with PyYAML and checked
against the settings it must agree with; `docker compose config` also validates it
where a compose client is installed.
"""

import os
import re
import runpy
import shlex
import subprocess
import tomllib
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml
from django.conf import settings
from django.urls import reverse
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parent.parent
SERVICES = ("postgres", "redis", "web", "worker", "worker-training")
APP_SERVICES = ("web", "worker", "worker-training")
WORKERS = ("worker", "worker-training")
# A whole value that is one compose interpolation, e.g. ${DJANGO_SECRET_KEY:?set it}.
INTERPOLATION = re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*(?:[:?\-][^}]*)?\}")
SECRET_NAME = re.compile(r"SECRET|PASSWORD|TOKEN|API_KEY|PRIVATE_KEY", re.IGNORECASE)


@pytest.fixture(scope="module")
def services():
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]


@pytest.fixture(scope="module")
def pyproject():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def environment(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {key: str(value) for key, value in env.items()}


def command_args(service: dict) -> list[str]:
    """The command's words; for `sh -c SCRIPT`, the script's words."""
    command = service["command"]
    args = shlex.split(command) if isinstance(command, str) else [str(arg) for arg in command]
    if args[:2] == ["sh", "-c"]:
        return shlex.split(args[2])
    return args


def worker_queues(service: dict) -> set[str]:
    args = command_args(service)
    assert args[:4] == ["celery", "-A", "config", "worker"], args
    for index, arg in enumerate(args):
        if arg in ("--queues", "-Q"):
            return set(args[index + 1].split(","))
        if arg.startswith("--queues="):
            return set(arg.split("=", 1)[1].split(","))
    pytest.fail(f"no --queues in {args}: the worker would consume Celery's default queue only")


def healthcheck_text(service: dict) -> str:
    test = service["healthcheck"]["test"]
    return test if isinstance(test, str) else " ".join(str(part) for part in test)


def routed_queues() -> set[str]:
    routes = settings.CELERY_TASK_ROUTES
    assert isinstance(routes, dict), "routes are expected as {task pattern: {'queue': name}}"
    return {route["queue"] for route in routes.values()}


def test_all_services_present(services):
    assert set(SERVICES) <= set(services)


@pytest.mark.parametrize("name", SERVICES)
def test_every_service_has_a_healthcheck(services, name):
    healthcheck = services[name].get("healthcheck")
    assert healthcheck and not healthcheck.get("disable"), f"{name} has no healthcheck"
    assert healthcheck["test"] and healthcheck["test"] != ["NONE"]


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_services_build_from_the_repo_dockerfile(services, name):
    build = services[name]["build"]
    if isinstance(build, str):
        build = {"context": build}
    context = (ROOT / build["context"]).resolve()
    assert context == ROOT
    assert (context / build.get("dockerfile", "Dockerfile")).is_file()


def test_web_migrates_then_runs_gunicorn_with_the_wsgi_app(services):
    args = command_args(services["web"])
    assert "gunicorn" in args
    gunicorn = args.index("gunicorn")
    assert "config.wsgi:application" in args[gunicorn:]
    assert args.index("migrate") < gunicorn
    assert settings.WSGI_APPLICATION == "config.wsgi.application"
    assert any(str(port).split(":")[-1] == "8000" for port in services["web"]["ports"])


def test_web_healthcheck_requests_the_login_page_with_python(services):
    check = healthcheck_text(services["web"])
    # Slim images have no curl; the URL must be a real page that answers 200 when logged out.
    assert "curl" not in check and "urllib" in check
    assert f"http://localhost:8000{reverse('login')}" in check


@pytest.mark.parametrize("name", WORKERS)
def test_worker_healthcheck_pings_its_own_node(services, name):
    check = healthcheck_text(services[name])
    assert "celery -A config inspect ping" in check
    # $$ is compose's escape: the container's shell expands $HOSTNAME, the default node name.
    assert "celery@$$HOSTNAME" in check


def test_workers_consume_their_own_queues(services):
    assert worker_queues(services["worker"]) == {"default"}
    assert worker_queues(services["worker-training"]) == {"training"}
    assert "--concurrency" in command_args(services["worker-training"])


def test_compose_queues_match_celery_routing(services):
    assert worker_queues(services["worker"]) == {settings.CELERY_TASK_DEFAULT_QUEUE}
    assert worker_queues(services["worker-training"]) == routed_queues()
    consumed = worker_queues(services["worker"]) | worker_queues(services["worker-training"])
    assert routed_queues() | {settings.CELERY_TASK_DEFAULT_QUEUE} <= consumed


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_env_points_at_the_compose_postgres_and_redis(services, name):
    env = environment(services[name])
    database = urlsplit(env["DATABASE_URL"])
    assert database.scheme in {"postgres", "postgresql"}
    assert database.hostname == "postgres"
    for key in ("CELERY_BROKER_URL", "CELERY_RESULT_BACKEND"):
        url = urlsplit(env[key])
        assert (url.scheme, url.hostname) == ("redis", "redis"), key


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_services_wait_for_healthy_postgres_and_redis(services, name):
    depends_on = services[name]["depends_on"]
    assert isinstance(depends_on, dict), "the list form only waits for containers to start"
    for dependency in ("postgres", "redis"):
        assert depends_on[dependency]["condition"] == "service_healthy"


def test_every_dependency_waits_for_health(services):
    for name, service in services.items():
        for dependency, condition in (service.get("depends_on") or {}).items():
            assert condition["condition"] == "service_healthy", (name, dependency)


def test_no_literal_secrets(services):
    for name, service in services.items():
        for key, value in environment(service).items():
            if SECRET_NAME.search(key):
                assert INTERPOLATION.fullmatch(value), f"{name}.{key} is a literal secret"
            password = urlsplit(value).password if "://" in value else None
            if password:
                assert INTERPOLATION.fullmatch(password), f"{name}.{key} has a literal password"
    for name in APP_SERVICES:
        secret_key = environment(services[name])["DJANGO_SECRET_KEY"]
        # `:?` makes compose refuse to start without it instead of using an empty key.
        assert re.fullmatch(r"\$\{DJANGO_SECRET_KEY:\?[^}]*\}", secret_key), secret_key


def test_dockerfile_builds_a_non_root_gunicorn_image():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim\b", dockerfile, re.MULTILINE)
    users = re.findall(r"^USER\s+(\S+)", dockerfile, re.MULTILINE)
    assert users and users[-1] not in {"root", "0"}
    assert "collectstatic" in dockerfile
    assert re.search(r'^CMD \["gunicorn", "--config", "config/gunicorn\.conf\.py", "config\.wsgi:application"\]',
                     dockerfile, re.MULTILINE)


def test_gunicorn_binds_port_8000_with_threads_sized_for_the_cpus(monkeypatch):
    monkeypatch.delenv("WEB_CONCURRENCY", raising=False)
    monkeypatch.setattr("multiprocessing.cpu_count", lambda: 16)
    settings = runpy.run_path(str(ROOT / "config" / "gunicorn.conf.py"))
    assert settings["bind"] == "0.0.0.0:8000"
    assert settings["worker_class"] == "gthread"
    # Each thread holds a persistent Postgres connection: stay under max_connections (100).
    assert settings["workers"] == 33 and settings["workers"] * settings["threads"] < 100


def test_dockerfile_torch_pin_matches_pyproject(pyproject):
    dockerfile_pins = set(re.findall(r"\btorch==(\S+)", (ROOT / "Dockerfile").read_text()))
    (torch,) = [Requirement(dep) for dep in pyproject["project"]["dependencies"]
                if Requirement(dep).name == "torch"]
    assert dockerfile_pins == {next(iter(torch.specifier)).version}


def test_pyproject_pins_every_dependency_exactly(pyproject):
    project = pyproject["project"]
    dependencies = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        dependencies += extra
    for dependency in dependencies:
        specifiers = list(Requirement(dependency).specifier)
        assert len(specifiers) == 1, dependency
        assert specifiers[0].operator == "==" and "*" not in specifiers[0].version, dependency


def test_pyproject_pins_torch(pyproject):
    assert "torch==2.13.0" in pyproject["project"]["dependencies"]


def test_makefile_has_the_readme_targets():
    targets = set()
    for match in re.finditer(r"^([A-Za-z0-9_.\- ]+):(?!=)", (ROOT / "Makefile").read_text(), re.MULTILINE):
        targets.update(match.group(1).split())
    assert {"install", "demo", "test"} <= targets


@pytest.mark.parametrize("path", [
    "config/", "annotate_app/", "rm_worker/", "rm_worker/tasks.py", "rm_worker/training/",
    "templates/", "static/", "tests/", "manage.py", "docker-compose.yml", "README.md",
    "pyproject.toml", "Makefile", "Dockerfile",
])
def test_top_level_layout_matches_design(path):
    target = ROOT / path
    assert target.is_dir() if path.endswith("/") else target.is_file(), path


def test_ci_script_is_executable_bash():
    script = ROOT / ".ci" / "run"
    assert os.access(script, os.X_OK)
    assert "set -euo pipefail" in script.read_text()
    assert subprocess.run(["bash", "-n", str(script)], capture_output=True).returncode == 0
