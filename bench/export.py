"""Benchmark: exports vs Postgres COPY on the same rows, interleaved, with peak memory and load.

Seeds a Postgres database with N judgments (3 annotators x 3 objectives per comparison),
then runs, in rounds, each in a fresh subprocess so peak RSS is its own:
  - ``COPY (SELECT <the csv export's join>) TO STDOUT`` through psycopg, to /dev/null,
  - the jsonl export (snapshot service, one line per comparison),
  - the csv export (snapshot service, one row per judgment),
  - the parquet export (snapshot service, one row per judgment).
Each export is the whole ``snapshot_create`` call: count, file, sha256, manifest. The
kinds alternate within every round (and the order rotates between rounds), so a load
spike from another process on the machine hits all of them alike rather than one. It
prints every run, then per kind the median seconds, judgments/s, the ratio to COPY's
median, the largest peak RSS, and the 1-minute load average seen before its runs.

    flock /tmp/morm_bench.lock .venv/bin/python bench/export.py --judgments 1000000
"""

import argparse
import json
import os
import resource
import statistics
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
KINDS = ("copy", "jsonl", "csv", "parquet")

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
                model_b, metadata, content_hash, is_gold, gold_expected, created_at, slots_held, submitted_count,
                is_full)
            SELECT %s, 'b' || i, jsonb_build_array(jsonb_build_object('role', 'user', 'content',
                       'Question ' || i || ': how should I think about trade-offs between safety and usefulness?')),
                   'Answer A to ' || i || '. ' || repeat('Helpful detail with some caveats. ', 6),
                   'Answer B to ' || i || '. ' || repeat('A shorter, more careful reply. ', 5),
                   'model-a', 'model-b', '{}'::jsonb, md5(i::text) || md5('x' || i), false, '{}'::jsonb, now(),
                   0, 0, false  -- the queue's counters: the seeded labels come without tasks, as imported ones do
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
        # Autovacuum is off on the benchmark server: without fresh statistics the
        # planner would guess and the measurements would be of a bad plan.
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


def measure(kind: str) -> dict:
    """Run one kind in a fresh subprocess; add the load average seen just before it started."""
    load = os.getloadavg()[0]
    out = subprocess.run([sys.executable, __file__, "--run", kind], capture_output=True, text=True, check=True,
                         env=os.environ)
    return {**json.loads(out.stdout.strip().splitlines()[-1]), "load": load}


def report(runs: list[dict], kinds: list[str]) -> None:
    print("{:<8}{:>6}{:>9}{:>8}".format("export", "round", "seconds", "load"))
    for run in runs:
        print(f"{run['kind']:<8}{run['round']:>6}{run['seconds']:>9.1f}{run['load']:>8.2f}")
    by_kind = {kind: [run for run in runs if run["kind"] == kind] for kind in kinds}
    median = {kind: statistics.median(run["seconds"] for run in kind_runs) for kind, kind_runs in by_kind.items()}
    header = ("export", "judgments", "median s", "judgments/s", "vs COPY", "MB out", "peak RSS MB", "load")
    print("\n{:<8}{:>11}{:>10}{:>13}{:>9}{:>8}{:>13}{:>11}".format(*header))
    for kind, kind_runs in by_kind.items():
        first = kind_runs[0]
        rate = first["judgments"] / median[kind]
        loads = [run["load"] for run in kind_runs]
        print(f"{kind:<8}{first['judgments']:>11}{median[kind]:>10.1f}{rate:>13,.0f}"
              f"{median['copy'] / median[kind]:>9.3f}{first['bytes'] / 1e6:>8.0f}"
              f"{max(run['peak_rss_mb'] for run in kind_runs):>13.0f}{min(loads):>6.2f}-{max(loads):.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--judgments", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--kinds", nargs="+", choices=KINDS, default=list(KINDS), help="copy is always measured")
    parser.add_argument("--run", choices=KINDS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run:
        setup_django()
        print(json.dumps(run_one(args.run)))
        return
    ensure_database()
    setup_django()
    seed(args.judgments)
    kinds = ["copy", *(kind for kind in args.kinds if kind != "copy")]
    runs = []
    for round_ in range(args.rounds):
        order = kinds[round_ % len(kinds):] + kinds[:round_ % len(kinds)]
        for kind in order:
            runs.append({**measure(kind), "round": round_ + 1})
    report(runs, kinds)


if __name__ == "__main__":
    main()
