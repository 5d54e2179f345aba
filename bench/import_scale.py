"""Benchmark: importing a 1M-line file, all or nothing, in bounded memory.

Writes a native jsonl file of N comparisons (every third line carrying labels on the
three objectives), then alternates, in fresh processes so each peak RSS is its own:

  import_pairs   manage.py import_pairs into a new project (parse, dedup, insert, labels)
  COPY lines     psycopg COPY of the same file's lines into an unlogged one-column table:
                 what Postgres alone needs to take the bytes in (a floor, not a rival)

Prints seconds, lines/s, the ratio to COPY and peak RSS per run, and the load average.
``--root`` runs another checkout's manage.py (e.g. an older commit in a git worktree,
migrated into its own database) to measure a before.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/morm_import_bench \\
        .venv/bin/python bench/import_scale.py --lines 1000000 --rounds 2
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import campaign

PEAK_RSS = (
    "import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL); "
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
)
COPY_LINES = """
import os, sys, psycopg
with psycopg.connect(os.environ["DATABASE_URL"]) as connection:
    connection.execute("DROP TABLE IF EXISTS bench_import_lines")
    connection.execute("CREATE UNLOGGED TABLE bench_import_lines (line text)")
    with connection.cursor().copy("COPY bench_import_lines (line) FROM STDIN") as copy, open(sys.argv[1], "rb") as f:
        for line in f:
            copy.write_row((line.rstrip(b"\\n").decode(),))
"""


def write_file(path: Path, lines: int) -> None:
    if path.exists() and sum(1 for _ in path.open("rb")) == lines:
        return
    with path.open("w") as out:
        for i in range(lines):
            record = {
                "id": f"imp-{i}",
                "prompt": [{"role": "user", "content": f"Question {i}: what should I pack for a week of hiking?"}],
                "response_a": f"Answer A {i}: " + "a tent, a stove, water filter and layers. " * 3,
                "response_b": f"Answer B {i}: " + "just a light jacket and snacks. " * 3,
            }
            if i % 3 == 0:
                record["labels"] = {"helpful": "A", "harmless": -2, "honest": "tie"}
            out.write(json.dumps(record) + "\n")


def measured(command: list[str], env: dict) -> tuple[float, int]:
    """Seconds and peak RSS (MB) of one command in a fresh process."""
    started = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", PEAK_RSS, *command], env=env, check=True, capture_output=True,
                         text=True).stdout
    return time.perf_counter() - started, int(out.split()[-1]) // 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--root", type=Path, default=campaign.ROOT, help="checkout whose manage.py imports")
    parser.add_argument("--file", type=Path, default=Path("/tmp/morm_import_bench.jsonl"))
    args = parser.parse_args()

    campaign.ensure_database("morm_import_bench")
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    subprocess.run([sys.executable, str(args.root / "manage.py"), "migrate", "--verbosity", "0"], env=env, check=True)
    write_file(args.file, args.lines)
    print(f"file: {args.lines:,} lines, {args.file.stat().st_size / 1e6:.0f} MB; root {args.root}")
    print(f"load average before: {campaign.load_average()}", flush=True)
    rows = []
    run = int(time.time())
    for round_number in range(args.rounds):
        slug = f"import-{run}-{round_number}"
        create = (f"from annotate_app.services.projects import project_create; "
                  f"project_create(name={slug!r}, slug={slug!r})")
        subprocess.run([sys.executable, str(args.root / "manage.py"), "shell", "-c", create], env=env, check=True)
        seconds, rss = measured([sys.executable, str(args.root / "manage.py"), "import_pairs", slug, str(args.file)],
                                env)
        rows.append(("import_pairs", seconds, rss))
        seconds, rss = measured([sys.executable, "-c", COPY_LINES, str(args.file)], env)
        rows.append(("COPY lines", seconds, rss))
        print(f"round {round_number + 1}: " + ", ".join(f"{name} {s:.1f} s {r} MB" for name, s, r in rows[-2:]),
              flush=True)
    print(f"load average after: {campaign.load_average()}")
    copy_best = min(seconds for name, seconds, _ in rows if name == "COPY lines")
    print("\n| run | lines | seconds | lines/s | vs COPY | peak RSS MB |\n|---|---:|---:|---:|---:|---:|")
    for name, seconds, rss in rows:
        print(f"| {name} | {args.lines:,} | {seconds:.1f} | {args.lines / seconds:,.0f} | "
              f"{copy_best / seconds:.2f}x | {rss} |")


if __name__ == "__main__":
    main()
