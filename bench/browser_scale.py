"""Benchmark: does a page of the comparison browser cost the same at 1k and 1M comparisons?

Campaigns of bench/campaign.py (80% of comparisons with k=3 submitted annotations, three judgments
each, choices spread over A, B and tie), on Postgres. For each filter and sort, the selector
(annotate_app.selectors.comparisons.comparisons_page, what the list view runs) is timed for the
first page and for a page deep in the project (its cursor 90% of the way through), median and p95
of ``--samples`` calls after one warm-up. Prints each at the largest size as a ratio to the smallest.
Last, a text search for a string in one comparison only: the worst case, where a page looks at its
whole scan window (SCAN_WINDOW comparisons) and matches nothing or one.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/morm_browser_bench \\
        .venv/bin/python bench/browser_scale.py --sizes 1000 1000000 --samples 15
"""

import argparse
import statistics
import time

import campaign

CASES = [
    ("all, by id", {}),
    ("all, most annotations first", {"sort": "-submitted"}),
    ("labeled", {"status": "labeled"}),
    ("unlabeled", {"status": "unlabeled"}),
    ("complete, fewest first", {"status": "complete", "sort": "submitted"}),
    ("agreement below 0.5", {"agreement_below": 0.5}),
    ("objectives in conflict", {"conflict": True}),
    ("gold", {"gold": True}),
    ("has imported labels", {"imported": True}),
    ("text 'sourdough' (every row)", {"search": "sourdough"}),
]


def timed(call, samples: int) -> tuple[float, float]:
    """Median and p95 milliseconds of ``samples`` calls, after one not counted."""
    call()
    times = []
    for _ in range(samples):
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]


def deep_cursor(project, filters):
    """A cursor 90% of the way through the project in ``filters.sort`` order (the seeded ids are contiguous;
    by submitted count, among the rows with the last value in that order)."""
    from annotate_app.selectors.comparisons import SORTS, Cursor

    first = project.comparisons.order_by("id").values_list("id", flat=True).first()
    descending = filters.sort.startswith("-")
    row = first + int(project.comparison_count * (0.1 if descending else 0.9))
    if SORTS[filters.sort] == "id":
        return Cursor(row, row)
    return Cursor(0 if descending else project.overlap_k, row)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 1_000_000])
    parser.add_argument("--samples", type=int, default=15)
    args = parser.parse_args()
    campaign.ensure_database("morm_browser_bench")
    campaign.setup()
    from annotate_app.selectors.comparisons import ComparisonFilters, comparisons_page

    projects = [campaign.campaign(size) for size in args.sizes]
    print(f"load average before: {campaign.load_average()}", flush=True)
    results = {}
    for name, options in CASES:
        filters = ComparisonFilters(**options)
        for project in projects:
            for page, start in (("first", None), ("deep", deep_cursor(project, filters))):
                results[name, page, project.comparison_count] = timed(
                    lambda: comparisons_page(project, filters, cursor=start), args.samples)
    rare = ComparisonFilters(search="Question 17: ")
    for project in projects:
        results["text matching one row", "first", project.comparison_count] = timed(
            lambda: comparisons_page(project, rare), max(3, args.samples // 5))
    print(f"load average after: {campaign.load_average()}")
    report(results, args.sizes)


def report(results: dict, sizes: list[int]) -> None:
    small, large = sizes[0], sizes[-1]
    print(f"\n| filter | page | {' | '.join(f'{s:,} median / p95 ms' for s in sizes)} | {large:,} / {small:,} |")
    print("|---|---|" + "---|" * len(sizes) + "---|")
    for name, page in dict.fromkeys((name, page) for name, page, _ in results):
        cells = [f"{results[name, page, s][0]:.1f} / {results[name, page, s][1]:.1f}" for s in sizes]
        ratio = results[name, page, large][0] / results[name, page, small][0]
        print(f"| {name} | {page} | {' | '.join(cells)} | {ratio:.2f}× |")


if __name__ == "__main__":
    main()
