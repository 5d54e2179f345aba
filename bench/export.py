"""Benchmark: streaming exports vs Postgres COPY on the same rows, with peak memory.

Seeds a Postgres database with N judgments (3 annotators x 3 objectives per comparison),
then, each in a fresh subprocess so peak RSS is its own, runs:
  - the jsonl export (snapshot service, one line per comparison),
  - the csv export (snapshot service, one row per judgment),
  - ``COPY (SELECT <the csv export's join>) TO STDOUT`` through psycopg,
and prints judgments/s for each, the ratios to COPY, and peak RSS.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/morm_bench .venv/bin/python bench/export.py --judgments 1000000
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/morm_bench")

SLUG = "bench-export"
ANNOTATORS = 3
OBJECTIVES = 3

# The same rows the csv writer emits (one per judgment), straight from Postgres.
COPY_SQL = """
COPY (
  SELECT c.id, COALESCE(NULLIF(c.external_id, ''), 'morm-' || c.id), o.key, j.choice, j.strength,
         COALESCE(j.score, CASE j.choice WHEN 'tie' THEN 0 WHEN 'A' THEN -COALESCE(j.strength, 1)
                                ELSE COALESCE(j.strength, 1) END),
         j.rationale, u.username, a.source_id, t.shown_swapped, j.likert_a, j.likert_b, a.flags_a, a.flags_b,
         a.time_spent_ms, a.created_at, c.prompt, c.response_a, c.response_b
  FROM annotate_app_judgment j
  JOIN annotate_app_annotation a ON a.id = j.annotation_id
  JOIN annotate_app_comparison c ON c.id = a.comparison_id
  JOIN annotate_app_objective o ON o.id = j.objective_id
  LEFT JOIN auth_user u ON u.id = a.annotator_id
  LEFT JOIN annotate_app_task t ON t.id = a.task_id
  WHERE c.project_id = %s
  ORDER BY c.id, o."order", j.id
) TO STDOUT WITH (FORMAT csv, HEADER)
"""


def setup_django():
    import django

    django.setup()


def ensure_database() -> None:
    import psycopg

    url = os.environ["DATABASE_URL"]
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def seed(judgments: int) -> None:
    """Create the project and insert the rows with set-based SQL (the ORM would take minutes)."""
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection

    from annotate_app.models import Project
    from annotate_app.services.projects import project_create

    call_command("migrate", verbosity=0)
    comparisons = judgments // (ANNOTATORS * OBJECTIVES)
    project = Project.objects.filter(slug=SLUG).first()
    if project and project.comparisons.count() == comparisons:
        print(f"seed: reusing {comparisons} comparisons", file=sys.stderr)
        return
    if project:
        project.snapshots.all().delete()
        project.delete()
    project = project_create(name="Bench export", slug=SLUG)
    users = [get_user_model().objects.get_or_create(username=f"bench-annotator-{i}")[0] for i in range(ANNOTATORS)]
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO annotate_app_comparison (project_id, external_id, prompt, response_a, response_b, model_a,
                model_b, metadata, content_hash, is_gold, gold_expected, created_at)
            SELECT %s, 'b' || i, jsonb_build_array(jsonb_build_object('role', 'user', 'content',
                       'Question ' || i || ': how should I think about trade-offs between safety and usefulness?')),
                   'Answer A to ' || i || '. ' || repeat('Helpful detail with some caveats. ', 6),
                   'Answer B to ' || i || '. ' || repeat('A shorter, more careful reply. ', 5),
                   'model-a', 'model-b', '{}'::jsonb, md5(i::text) || md5('x' || i), false, '{}'::jsonb, now()
            FROM generate_series(1, %s) AS i
            """,
            [project.pk, comparisons],
        )
        for user in users:
            cursor.execute(
                """
                INSERT INTO annotate_app_annotation (comparison_id, annotator_id, flags_a, flags_b, time_spent_ms,
                    created_at)
                SELECT id, %s, '[]'::jsonb, '[]'::jsonb, 20000 + (id %% 9000), now()
                FROM annotate_app_comparison WHERE project_id = %s
                """,
                [user.pk, project.pk],
            )
        cursor.execute(
            """
            INSERT INTO annotate_app_judgment (annotation_id, objective_id, choice, strength, rationale)
            SELECT a.id, o.id, s.choice, s.strength, CASE WHEN a.id %% 10 = 0 THEN 'short reason' ELSE '' END
            FROM annotate_app_annotation a
            JOIN annotate_app_comparison c ON c.id = a.comparison_id
            JOIN annotate_app_objective o ON o.project_id = c.project_id
            CROSS JOIN LATERAL (SELECT (a.id + o.id) %% 7 - 3 AS v) r
            CROSS JOIN LATERAL (SELECT CASE WHEN r.v = 0 THEN 'tie' WHEN r.v < 0 THEN 'A' ELSE 'B' END AS choice,
                                       CASE WHEN r.v = 0 THEN NULL ELSE abs(r.v) END AS strength) s
            WHERE c.project_id = %s
            """,
            [project.pk],
        )
        cursor.execute("ANALYZE")
    print(f"seed: {comparisons} comparisons, {comparisons * ANNOTATORS * OBJECTIVES} judgments in "
          f"{time.perf_counter() - started:.0f} s", file=sys.stderr)


def run_one(kind: str) -> dict:
    """One measurement in this process; returns seconds, judgments, bytes, peak RSS."""
    from django.db import connection

    from annotate_app.models import Judgment, Project
    from annotate_app.services.snapshots import snapshot_create, snapshot_path

    project = Project.objects.get(slug=SLUG)
    judgments = Judgment.objects.filter(annotation__comparison__project=project).count()
    started = time.perf_counter()
    if kind == "copy":
        written = 0
        with connection.cursor() as cursor, open(os.devnull, "wb") as sink:
            with cursor.connection.cursor().copy(COPY_SQL, [project.pk]) as copy:
                for block in copy:
                    sink.write(block)
                    written += len(block)
    else:
        snapshot = snapshot_create(project=project, format=kind, background=False)
        written = snapshot_path(snapshot).stat().st_size
        snapshot_path(snapshot).unlink()
    seconds = time.perf_counter() - started
    return {"kind": kind, "seconds": seconds, "judgments": judgments, "bytes": written,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--judgments", type=int, default=1_000_000)
    parser.add_argument("--run", choices=["jsonl", "csv", "copy"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run:
        setup_django()
        print(json.dumps(run_one(args.run)))
        return
    ensure_database()
    setup_django()
    seed(args.judgments)
    results = {}
    for kind in ("copy", "jsonl", "csv"):
        out = subprocess.run([sys.executable, __file__, "--run", kind], capture_output=True, text=True, check=True,
                             env=os.environ)
        results[kind] = json.loads(out.stdout.strip().splitlines()[-1])
    copy_rate = results["copy"]["judgments"] / results["copy"]["seconds"]
    header = ("export", "judgments", "seconds", "judgments/s", "vs COPY", "MB out", "peak RSS MB")
    print("{:<8}{:>11}{:>9}{:>13}{:>9}{:>8}{:>13}".format(*header))
    for kind, r in results.items():
        rate = r["judgments"] / r["seconds"]
        print(f"{kind:<8}{r['judgments']:>11}{r['seconds']:>9.1f}{rate:>13,.0f}{rate / copy_rate:>9.3f}"
              f"{r['bytes'] / 1e6:>8.0f}{r['peak_rss_mb']:>13.0f}")


if __name__ == "__main__":
    main()
