"""Benchmark: does a request's cost depend on the project's size?

Projects of 1k, 100k and 1M comparisons (80% of them already holding k=3 submitted
annotations by other annotators: see bench/campaign.py), served by gunicorn over HTTP
on Postgres. Each sample is one fresh annotator doing, in order:

  next (new lease)   GET  /api/v1/projects/<slug>/tasks/next
  next (open lease)  GET  the same again: their lease comes back
  submit             POST /api/v1/tasks/<id>/submit
  labeling page      GET  /projects/<slug>/label/ (session login; leases their next task)
  stats page         GET  /projects/<slug>/stats/ (a researcher's session)

Samples rotate over the sizes (1k, 100k, 1M, then 100k, 1M, 1k, ...) so that the sizes
share whatever else the machine is doing. Prints median and p95 per size and request,
and each size's median as a ratio to the smallest size's.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/morm_queue_bench \\
        .venv/bin/python bench/queue_scale.py --sizes 1000 100000 1000000 --samples 60
"""

import argparse
import statistics
import time

import campaign
import requests

KINDS = ("next (new lease)", "next (open lease)", "submit", "labeling page", "stats page")


def sample(base: str, project, username: str, researcher_session: str) -> dict[str, float]:
    """One fresh annotator's four requests, then the researcher's stats page; seconds each."""
    user = campaign.annotator(project, username)
    http = requests.Session()
    http.headers["Authorization"] = f"Token {user.auth_token.key}"
    timings = {}

    def timed(kind: str, method: str, path: str, **kwargs) -> requests.Response:
        started = time.perf_counter()
        response = http.request(method, base + path, **kwargs)
        timings[kind] = time.perf_counter() - started
        response.raise_for_status()
        return response

    task = timed("next (new lease)", "GET", f"/api/v1/projects/{project.slug}/tasks/next").json()
    again = timed("next (open lease)", "GET", f"/api/v1/projects/{project.slug}/tasks/next").json()
    assert again["id"] == task["id"], "the open lease must come back"
    timed("submit", "POST", f"/api/v1/tasks/{task['id']}/submit", json=campaign.judgments_body(task))
    del http.headers["Authorization"]
    http.cookies.set("sessionid", campaign.session_cookie(user))
    page = timed("labeling page", "GET", f"/projects/{project.slug}/label/")
    assert "remaining" in page.text, "the labeling page shows the annotator's progress"
    http.cookies.set("sessionid", researcher_session)
    timed("stats page", "GET", f"/projects/{project.slug}/stats/")
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 100_000, 1_000_000])
    parser.add_argument("--samples", type=int, default=60, help="fresh annotators per size")
    parser.add_argument("--warmup", type=int, default=5, help="samples per size not counted")
    args = parser.parse_args()

    campaign.setup()
    from annotate_app.models import Role

    projects = [campaign.campaign(size) for size in args.sizes]
    researchers = {project.pk: campaign.session_cookie(campaign.member(project, f"researcher-{project.slug}",
                                                                        Role.RESEARCHER)) for project in projects}
    results = {size: {kind: [] for kind in KINDS} for size in args.sizes}
    run = int(time.time())
    print(f"load average before: {campaign.load_average()}", flush=True)
    with campaign.gunicorn() as base:
        for round_number in range(args.warmup + args.samples):
            shift = round_number % len(projects)
            for project in projects[shift:] + projects[:shift]:
                size = project.comparison_count
                timings = sample(base, project, f"fresh-{run}-{size}-{round_number}", researchers[project.pk])
                if round_number >= args.warmup:
                    for kind, seconds in timings.items():
                        results[size][kind].append(seconds)
    print(f"load average after: {campaign.load_average()}")
    report(results, args.sizes)


def report(results: dict, sizes: list[int]) -> None:
    smallest = sizes[0]
    print(f"\n| request | comparisons | median ms | p95 ms | median vs {smallest:,} |")
    print("|---|---:|---:|---:|---:|")
    for kind in KINDS:
        base_median = statistics.median(results[smallest][kind])
        for size in sizes:
            values = sorted(results[size][kind])
            median = statistics.median(values)
            p95 = values[min(len(values) - 1, round(0.95 * (len(values) - 1)))]
            print(f"| {kind} | {size:,} | {median * 1000:.1f} | {p95 * 1000:.1f} | {median / base_median:.2f}x |")


if __name__ == "__main__":
    main()
