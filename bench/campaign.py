"""Shared by the queue benchmarks: a Postgres database holding campaigns of real size,
a gunicorn serving it, and annotators with tokens and sessions.

A campaign of N comparisons is seeded in SQL (generate_series), as if ``full_share`` of
them had already received ``overlap_k`` submitted annotations (three judgments each)
from a pool of other annotators; the queue counters are filled to match, exactly as the
services keep them, and the tables are ANALYZEd (autovacuum is off on this machine).
Seeding is skipped when the project already holds N comparisons, so reruns are quick.
"""

import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

OTHER_ANNOTATORS = 30


def ensure_database(default_name: str, *, fresh: bool = False) -> None:
    """Point DATABASE_URL at ``default_name`` unless it is set, and create that database if missing
    (``fresh``: drop it first, so every campaign is seeded again)."""
    import psycopg

    url = os.environ.setdefault("DATABASE_URL", f"postgres://postgres@127.0.0.1:5432/{default_name}")
    base, name = url.rsplit("/", 1)
    with psycopg.connect(f"{base}/postgres", autocommit=True) as connection:
        if fresh:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if not connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            connection.execute(f'CREATE DATABASE "{name}"')


def setup(*, fresh: bool = False) -> None:
    """Create the queue benchmarks' database if needed (``fresh``: anew), migrate it, and set Django up."""
    import django

    ensure_database("morm_queue_bench", fresh=fresh)
    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def campaign(size: int, *, overlap_k: int = 3, full_share: float = 0.8):
    """The project ``bench-<size>``, seeded once (see the module docstring)."""
    from annotate_app.models import Project
    from annotate_app.services.projects import project_create

    slug = f"bench-{size}"
    project = Project.objects.filter(slug=slug).first()
    if project is not None and project.comparison_count == size:
        return project
    if project is not None:
        project.delete()
    project = project_create(name=f"Bench {size}", slug=slug, overlap_k=overlap_k)
    project.gold_rate = 0.0
    project.save(update_fields=["gold_rate"])
    others = [annotator(project, f"other-{size}-{i}").pk for i in range(OTHER_ANNOTATORS)]
    started = time.perf_counter()
    _seed(project, size, others, full_share)
    print(f"seeded {size:,} comparisons in {time.perf_counter() - started:.0f} s", flush=True)
    return Project.objects.get(pk=project.pk)


def _seed(project, size: int, others: list[int], full_share: float) -> None:
    from django.db import connection, transaction

    k, p = project.overlap_k, project.pk
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT setseed(0.42)")
        cursor.execute(
            """
            INSERT INTO annotate_app_comparison (project_id, external_id, prompt, response_a, response_b, model_a,
                model_b, metadata, content_hash, is_gold, gold_expected, created_at, slots_held, submitted_count,
                is_full)
            SELECT %s, 'q-' || g, to_jsonb('Question ' || g || ': how do I keep a sourdough starter alive?'),
                   'Answer A ' || g || repeat(' feed it flour and water daily', 8),
                   'Answer B ' || g || repeat(' keep it in the fridge and feed it weekly', 6), 'model-a', 'model-b',
                   '{}'::jsonb, md5(%s || '-' || g), false, '{}'::jsonb, now(),
                   CASE WHEN f THEN %s ELSE 0 END, CASE WHEN f THEN %s ELSE 0 END, f
            FROM (SELECT g, random() < %s AS f FROM generate_series(1, %s) g) s
            """,
            [p, p, k, k, full_share, size],
        )
        cursor.execute(
            """
            INSERT INTO annotate_app_task (project_id, comparison_id, annotator_id, status, shown_swapped, leased_at,
                expires_at, finished_at)
            SELECT %s, c.id, (%s::bigint[])[1 + (c.id + j) %% %s], 'submitted', (c.id + j) %% 2 = 0, now(), now(),
                   now()
            FROM annotate_app_comparison c CROSS JOIN generate_series(0, %s - 1) j
            WHERE c.project_id = %s AND c.is_full
            """,
            [p, others, len(others), k, p],
        )
        cursor.execute(
            """
            INSERT INTO annotate_app_annotation (comparison_id, annotator_id, task_id, flags_a, flags_b,
                time_spent_ms, created_at)
            SELECT t.comparison_id, t.annotator_id, t.id, '[]', '[]', 12000, now()
            FROM annotate_app_task t WHERE t.project_id = %s
            """,
            [p],
        )
        cursor.execute(
            """
            INSERT INTO annotate_app_judgment (annotation_id, objective_id, choice, strength, rationale)
            SELECT a.id, o.id, v.choice, CASE WHEN v.choice = 'tie' THEN NULL ELSE 1 + a.id %% 3 END, ''
            FROM annotate_app_task t
            JOIN annotate_app_annotation a ON a.task_id = t.id
            CROSS JOIN annotate_app_objective o
            CROSS JOIN LATERAL (SELECT (ARRAY['A', 'B', 'tie'])[1 + (a.id + o.id) %% 3] AS choice) v
            WHERE t.project_id = %s AND o.project_id = %s
            """,
            [p, p],
        )
        cursor.execute(
            """
            UPDATE annotate_app_annotatorqueue q SET cursor = s.last, submitted = s.n, finished_open = 0
            FROM (SELECT annotator_id, max(comparison_id) AS last, count(*) AS n FROM annotate_app_task
                  WHERE project_id = %s GROUP BY annotator_id) s
            WHERE q.project_id = %s AND q.annotator_id = s.annotator_id
            """,
            [p, p],
        )
        cursor.execute(
            """
            UPDATE annotate_app_project SET comparison_count = %s,
                open_count = (SELECT count(*) FROM annotate_app_comparison WHERE project_id = %s AND NOT is_full),
                complete_count = (SELECT count(*) FROM annotate_app_comparison WHERE project_id = %s AND is_full)
            WHERE id = %s
            """,
            [size, p, p, p],
        )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


def member(project, username: str, role: str):
    """A project member with an API token."""
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token

    from annotate_app.services.projects import membership_set

    user, _ = get_user_model().objects.get_or_create(username=username)
    membership_set(project=project, user=user, role=role)
    Token.objects.get_or_create(user=user)
    return user


def annotator(project, username: str):
    """A project annotator with an API token and a queue row (as after their first request)."""
    from annotate_app.models import AnnotatorQueue, Role

    user = member(project, username, Role.ANNOTATOR)
    AnnotatorQueue.objects.get_or_create(project=project, annotator=user)
    return user


def session_cookie(user) -> str:
    """A logged-in session id for the user, as the login page would set it."""
    from django.test import Client

    client = Client()
    client.force_login(user)
    return client.cookies["sessionid"].value


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def gunicorn():
    """A gunicorn (config/gunicorn.conf.py) on a free local port; yields its base URL."""
    port = _free_port()
    # The per-user rate limit is off: a closed-loop client pinned to a lightly loaded worker asks
    # for tens of requests a second, no person does, and its cheap 429s would blur what is measured.
    env = {**os.environ, "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost", "GUNICORN_BIND": f"127.0.0.1:{port}",
           "MORM_API_THROTTLE_USER": ""}
    process = subprocess.Popen(
        [str(ROOT / ".venv" / "bin" / "gunicorn"), "--config", str(ROOT / "config" / "gunicorn.conf.py"),
         "config.wsgi:application"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


def judgments_body(task: dict) -> dict:
    """A submit body for a task from `tasks/next`: slight preference for A on every objective."""
    return {
        "judgments": {objective["key"]: {"choice": "A", "strength": 1} for objective in task["objectives"]},
        "time_spent_ms": 9000,
    }


def load_average() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())
