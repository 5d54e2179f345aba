"""Benchmark: 50 annotators at once, next+submit against a trivial endpoint, then integrity.

Fifty closed-loop clients, each with its own token, against one gunicorn
(config/gunicorn.conf.py) on Postgres, in alternating phases of the same run:

  trivial   GET /api/v1/me                      (the same token auth, one user lookup)
  queue     GET /api/v1/projects/<slug>/tasks/next, then POST /api/v1/tasks/<id>/submit

Clients run in two processes (25 threads each) so that the client's own Python is not
the bottleneck. Prints requests/s per phase kind and the ratio queue/trivial, p50/p95/p99
per request kind, and the load average. Then checks integrity and exits non-zero if any
check fails: no comparison over k submitted annotations, no (comparison, annotator)
twice, every 2xx submit the clients saw stored with its judgments, no annotation
without its three judgments, and the maintained counters equal a recount.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/morm_queue_bench \\
        .venv/bin/python bench/serve.py --size 100000 --clients 50 --phase-seconds 15 --rounds 3
"""

import argparse
import statistics
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor

import campaign
import requests

PROCESSES = 2


def client_process(base: str, slug: str, tokens: list[str], schedule: list[tuple[float, str]], end: float) -> list:
    """Run one thread per token until ``end``; returns (phase, kind, seconds, status, annotation id) rows."""
    rows: list = []
    lock = threading.Lock()

    def phase_at(now: float) -> str:
        current = schedule[0][1]
        for start, phase in schedule:
            if now >= start:
                current = phase
        return current

    def client(token: str) -> None:
        http = requests.Session()
        http.headers["Authorization"] = f"Token {token}"
        mine = []
        while (now := time.time()) < end:
            if now < schedule[0][0]:
                time.sleep(schedule[0][0] - now)
                continue
            phase = phase_at(now)
            if phase == "trivial":
                seconds, status, _ = _timed(http, "GET", f"{base}/api/v1/me")
                mine.append((phase, "me", seconds, status, None))
                continue
            seconds, status, response = _timed(http, "GET", f"{base}/api/v1/projects/{slug}/tasks/next")
            mine.append((phase, "next", seconds, status, None))
            if status != 200:
                continue
            task = response.json()
            body = campaign.judgments_body(task)
            seconds, status, response = _timed(http, "POST", f"{base}/api/v1/tasks/{task['id']}/submit", json=body)
            annotation = response.json().get("annotation_id") if status in (200, 201) else None
            mine.append((phase, "submit", seconds, status, (task["id"], annotation)))
        with lock:
            rows.extend(mine)

    threads = [threading.Thread(target=client, args=(token,)) for token in tokens]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return rows


_FIRST_REFUSALS: set[int] = set()


def _timed(http: requests.Session, method: str, url: str, **kwargs):
    started = time.perf_counter()
    response = http.request(method, url, timeout=60, **kwargs)
    if response.status_code >= 300 and response.status_code not in _FIRST_REFUSALS:
        _FIRST_REFUSALS.add(response.status_code)  # say why, once per status and client process
        print(f"first {response.status_code} ({method} {url}): {response.text[:300]}", file=sys.stderr, flush=True)
    return time.perf_counter() - started, response.status_code, response


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=100_000, help="comparisons in the project")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--phase-seconds", type=float, default=15.0)
    parser.add_argument("--rounds", type=int, default=3, help="trivial+queue phase pairs")
    parser.add_argument("--fresh", action="store_true",
                        help="a new database, seeded again (each run uses up some of the project's open slots)")
    args = parser.parse_args()

    campaign.setup(fresh=args.fresh)
    project = campaign.campaign(args.size)
    run = int(time.time())
    users = [campaign.annotator(project, f"serve-{run}-{i}") for i in range(args.clients)]
    tokens = [user.auth_token.key for user in users]
    print(f"load average before: {campaign.load_average()}", flush=True)
    with campaign.gunicorn() as base:
        start = time.time() + 3  # every client is connected before the first phase
        print(f"phases: {args.phase_seconds:g} s each from {start:.2f} (epoch), trivial first", flush=True)
        phases = [phase for _ in range(args.rounds) for phase in ("trivial", "queue")]
        schedule = [(start + i * args.phase_seconds, phase) for i, phase in enumerate(phases)]
        end = start + len(phases) * args.phase_seconds
        with ProcessPoolExecutor(PROCESSES) as pool:
            parts = [pool.submit(client_process, base, project.slug, tokens[i::PROCESSES], schedule, end)
                     for i in range(PROCESSES)]
            rows = [row for part in parts for row in part.result()]
    print(f"load average after: {campaign.load_average()}")
    report(rows, args.rounds * args.phase_seconds)
    failures = integrity(project, rows)
    if emptied := sum(1 for _, kind, _, status, _ in rows if kind == "next" and status == 204):
        failures.append(f"next answered 204 (nothing left) {emptied} times: earlier runs used up the project's "
                        "open slots, so this run measured an empty queue; run again with --fresh")
    for failure in failures:
        print(f"INTEGRITY FAILURE: {failure}")
    if failures:
        sys.exit(1)
    print("integrity: all checks passed")


def report(rows: list, seconds_per_kind: float) -> None:
    # Only answered requests count: a `next` that finds nothing (204) or is throttled (429) is cheap
    # and would flatter the queue.
    trivial = sum(1 for phase, _, _, status, _ in rows if phase == "trivial" and status == 200)
    queue = sum(1 for phase, kind, _, status, _ in rows if phase == "queue" and status in (200, 201))
    errors = [row for row in rows if row[3] >= 500]
    statuses = Counter((kind, status) for _, kind, _, status, _ in rows)
    print(f"\nrequests/s: trivial {trivial / seconds_per_kind:.1f}, next+submit {queue / seconds_per_kind:.1f}, "
          f"ratio {queue / trivial:.2f}x; 5xx responses: {len(errors)}")
    print("answers: " + ", ".join(f"{kind} {status}: {n}" for (kind, status), n in sorted(statuses.items())))
    print("\n| request | n | p50 ms | p95 ms | p99 ms |\n|---|---:|---:|---:|---:|")
    for kind in ("me", "next", "submit"):
        values = sorted(seconds for _, row_kind, seconds, *_ in rows if row_kind == kind)
        if not values:
            continue
        pick = lambda q: values[min(len(values) - 1, round(q * (len(values) - 1)))] * 1000  # noqa: E731
        print(f"| {kind} | {len(values)} | {statistics.median(values) * 1000:.1f} | {pick(0.95):.1f} | "
              f"{pick(0.99):.1f} |")


def integrity(project, rows: list) -> list[str]:
    """What the database must say after the run; the failures, if any."""
    from django.db import connection

    from annotate_app.models import Annotation

    failures = []
    seen = [extra for _, kind, _, status, extra in rows if kind == "submit" and status in (200, 201)]
    stored = dict(Annotation.objects.filter(pk__in=[a for _, a in seen]).values_list("pk", "task_id"))
    lost = [(task, annotation) for task, annotation in seen if stored.get(annotation) != task]
    if lost:
        failures.append(f"{len(lost)} submits answered 2xx are not stored as such, e.g. {lost[:3]}")
    checks = {
        "comparisons over k submitted annotations": """
            SELECT count(*) FROM (SELECT t.comparison_id FROM annotate_app_task t WHERE t.project_id = %(p)s
              AND t.status = 'submitted' GROUP BY t.comparison_id HAVING count(*) > %(k)s) s""",
        "(comparison, annotator) pairs annotated twice": """
            SELECT count(*) FROM (SELECT a.comparison_id, a.annotator_id FROM annotate_app_annotation a
              JOIN annotate_app_comparison c ON c.id = a.comparison_id WHERE c.project_id = %(p)s
              AND a.annotator_id IS NOT NULL GROUP BY 1, 2 HAVING count(*) > 1) s""",
        "human annotations without exactly one judgment per objective": """
            SELECT count(*) FROM annotate_app_annotation a JOIN annotate_app_comparison c ON c.id = a.comparison_id
            WHERE c.project_id = %(p)s AND a.annotator_id IS NOT NULL AND (SELECT count(*) FROM
              annotate_app_judgment j WHERE j.annotation_id = a.id) <> %(objectives)s""",
        "comparisons whose counters differ from a recount": """
            SELECT count(*) FROM annotate_app_comparison c LEFT JOIN (SELECT comparison_id,
              count(*) FILTER (WHERE status IN ('submitted', 'leased')) AS held,
              count(*) FILTER (WHERE status = 'submitted') AS submitted FROM annotate_app_task
              WHERE project_id = %(p)s GROUP BY comparison_id) t ON t.comparison_id = c.id
            WHERE c.project_id = %(p)s AND (c.slots_held <> coalesce(t.held, 0)
              OR c.submitted_count <> coalesce(t.submitted, 0) OR c.is_full <> (coalesce(t.held, 0) >= %(k)s))""",
        "project open/complete counts off by": """
            SELECT abs(p.open_count - (SELECT count(*) FROM annotate_app_comparison WHERE project_id = p.id
                     AND NOT is_gold AND NOT is_full))
                 + abs(p.complete_count - (SELECT count(*) FROM annotate_app_comparison WHERE project_id = p.id
                     AND NOT is_gold AND submitted_count >= p.overlap_k))
            FROM annotate_app_project p WHERE p.id = %(p)s""",
    }
    params = {"p": project.pk, "k": project.overlap_k, "objectives": project.objectives.count()}
    with connection.cursor() as cursor:
        for name, sql in checks.items():
            cursor.execute(sql, params)
            if (count := cursor.fetchone()[0]) != 0:
                failures.append(f"{name}: {count}")
    print(f"integrity: {len(seen)} 2xx submits checked against the database")
    return failures


if __name__ == "__main__":
    main()
