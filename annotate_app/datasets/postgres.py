"""Exports built by Postgres and streamed with COPY: no Python loop per judgment.

The judgments read are ``judgments_in_scope`` compiled to SQL, so the filters are the ones
``stream_records`` applies, and the order is its order. Postgres aggregates them per
comparison and objective (count, sum in judgment order, majority direction: what
``aggregate`` computes), drops the labels that fail the label filters, and writes every
byte of the file but each jsonl line's "labels": Python formats those from the exact sums
with ``Label.as_dict``, so the rounding is Python's, and its "ratings" the same way (``Rating.as_dict``
from each side's sum and count of Likert ratings). One COPY row per comparison carries its labels as
"objective:sum:n:majority:likert_a_sum:likert_a_n:likert_b_sum:likert_b_n ..." and its text.
Parquet is read by Arrow from the csv rows, as ``write_parquet`` does. The files are, byte for
byte, those of the writers in ``writers.py`` (``tests/annotate_app/datasets/test_postgres.py``).
"""

from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass
from functools import lru_cache
from typing import BinaryIO

from django.db import connection, transaction

from ..models import Project
from .aggregation import Label, Rating
from .rows import Selection, judgments_in_scope
from .writers import dumps, labels_dict, ratings_dict, write_csv_rows, write_parquet_rows

COPY_FORMATS = ("jsonl", "csv", "parquet")
# Progress is reported every so many judgments: each report is a commit of its own.
PROGRESS_EVERY = 20_000

# One judgment's columns (name in SQL: Judgment lookup), in the order values_list selects them.
SCOPE_COLUMNS = {
    "comparison_id": "annotation__comparison_id",
    "objective_order": "objective__order",
    "objective_id": "objective_id",
    "id": "id",
    "objective": "objective__key",
    "choice": "choice",
    "strength": "strength",
    "score": "score",
    "rationale": "rationale",
    "annotator": "annotation__annotator__username",
    "source": "annotation__source_id",
    "likert_a": "likert_a",
    "likert_b": "likert_b",
    "shown_swapped": "annotation__task__shown_swapped",
    "flags_a": "annotation__flags_a",
    "flags_b": "annotation__flags_b",
    "time_spent_ms": "annotation__time_spent_ms",
    "created_at": "annotation__created_at",
}

# models.signed_score in SQL.
SIGNED_SCORE = (
    "COALESCE(score, CASE choice WHEN 'tie' THEN 0 WHEN 'A' THEN -COALESCE(strength, 1)"
    " ELSE COALESCE(strength, 1) END)::float8"
)
# The float as Python's repr writes it (two arguments of concat): Postgres writes the same
# shortest digits (extra_float_digits = 1) but no ".0" after an integral value. Scores lie
# in -3..3, where no exponent form is integral.
PY_FLOAT = "signed, CASE WHEN signed = trunc(signed) THEN '.0' END"


def _csv(value: str) -> str:
    """A text column quoted as Python's csv writer quotes it (QUOTE_MINIMAL); concat() writes NULL empty."""
    return (
        f"CASE WHEN strpos({value}, ',') + strpos({value}, '\"') + strpos({value}, chr(10))"
        f" + strpos({value}, chr(13)) > 0 THEN '\"' || replace({value}, '\"', '\"\"') || '\"' ELSE {value} END"
    )


@dataclass(frozen=True)
class _Format:
    """The SQL that writes one format (see EXPORT_SQL)."""

    prepared: str  # per-judgment values the judgment text reads more than once, computed once
    judgment: str  # one judgment's text
    collect: str  # a comparison's judgment texts, gathered (in order)
    first: str  # the COPY row's first and second text
    second: str
    comparison_values: str = ""  # per-comparison values the texts read more than once


JSONL = _Format(
    prepared="",
    judgment=f"""concat('{{"objective": ', to_json(objective), ', "choice": ', to_json(choice),
        ', "strength": ', COALESCE(strength::text, 'null'), ', "score": ', {PY_FLOAT},
        ', "rationale": ', to_json(rationale), ', "annotator": ', COALESCE(to_json(annotator)::text, 'null'),
        ', "source": ', COALESCE(source::text, 'null'), ', "likert_a": ', COALESCE(likert_a::text, 'null'),
        ', "likert_b": ', COALESCE(likert_b::text, 'null'), '}}')""",
    collect="string_agg(judgment, ', ')",
    # Everything before the line's labels, and everything after them.
    first="""concat('{"id": ', to_json(COALESCE(NULLIF(c.external_id, ''), 'morm-' || c.id)),
        ', "prompt": ', c.prompt, ', "response_a": ', to_json(c.response_a), ', "response_b": ', to_json(c.response_b),
        ', "model_a": ', to_json(c.model_a), ', "model_b": ', to_json(c.model_b), ', "labels": ')""",
    second="""concat(', "judgments": [', k.judgments, '], "meta": ', c.metadata, '}')""",
)

# A csv row: the comparison's id columns, the judgment's columns, the comparison's texts.
CSV_BEFORE = f"concat(c.id, ',', {_csv('v.external_id')}, ',')"
CSV_AFTER = f"concat(',', {_csv('v.prompt')}, ',', {_csv('v.response_a')}, ',', {_csv('v.response_b')}, E'\\r\\n')"
CSV = _Format(
    # timestamptz as ISO text in UTC: datetime.isoformat() but for the "T" and the zeros of
    # the microseconds that Postgres leaves out.
    prepared="flags_a::text AS flags_a_text, flags_b::text AS flags_b_text,"
    " (created_at AT TIME ZONE 'UTC')::text AS created_text,",
    judgment="concat(" + ", ',', ".join([
        "objective", "choice", "strength", PY_FLOAT, _csv("rationale"), _csv("annotator"), "source",
        "CASE shown_swapped WHEN true THEN 'True' WHEN false THEN 'False' END", "likert_a", "likert_b",
        _csv("flags_a_text"), _csv("flags_b_text"), "time_spent_ms",
        "overlay(rpad(created_text, CASE WHEN length(created_text) > 19 THEN 26 ELSE 19 END, '0') PLACING 'T' FROM 11)"
        " || '+00:00'",
    ]) + ")",
    collect="array_agg(judgment)",
    first=f"concat({CSV_BEFORE}, array_to_string(k.judgments, concat({CSV_AFTER}, {CSV_BEFORE})), {CSV_AFTER})",
    second="''",
    # "|| ''" detoasts a long text once rather than in every strpos.
    comparison_values="""CROSS JOIN LATERAL (
        SELECT COALESCE(NULLIF(c.external_id, ''), 'morm-' || c.id) AS external_id, c.prompt #>> '{}' AS prompt,
               c.response_a || '' AS response_a, c.response_b || '' AS response_b OFFSET 0) AS v""",
)
FORMATS = {"jsonl": JSONL, "csv": CSV, "parquet": CSV}  # parquet is read from the csv rows


# The aggregates read their rows in the order the window sorted them (comparison,
# objective, judgment id): Postgres feeds an aggregate its input in order, and an ORDER BY
# in each aggregate would cost a sort per comparison. Parallel plans, which combine
# partial aggregates in any order, are switched off for the query (SESSION_SQL).
# "+ 0.0": Python's sum() starts from 0, which turns a lone -0.0 into 0.0.
EXPORT_SQL = """
COPY (
  WITH scope ({columns}) AS ({scope}),
  judgments AS (
    SELECT *, {prepared} count(*) OVER label AS n, sum(signed) OVER label + 0.0::float8 AS total,
           count(*) FILTER (WHERE signed < 0) OVER label AS a_better,
           count(*) FILTER (WHERE signed = 0) OVER label AS ties, row_number() OVER label AS nth,
           sum(likert_a) OVER label AS likert_a_sum, count(likert_a) OVER label AS likert_a_n,
           sum(likert_b) OVER label AS likert_b_sum, count(likert_b) OVER label AS likert_b_n
    FROM (SELECT *, {signed_score} AS signed FROM scope) AS scored
    WINDOW label AS (PARTITION BY comparison_id, objective_order, objective_id ORDER BY id
                     ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)
  ),
  comparisons AS (
    SELECT comparison_id, count(*) AS judgment_count, {collect} AS judgments,
           string_agg(concat(objective, ':', total, ':', n, ':', majority, ':', likert_a_sum, ':', likert_a_n,
                             ':', likert_b_sum, ':', likert_b_n), ' ') FILTER (WHERE nth = 1) AS labels
    FROM (SELECT *, {judgment} AS judgment, greatest(a_better, ties, n - a_better - ties) AS majority
          FROM judgments) AS written
    WHERE n >= %s AND majority::float8 / n >= %s
    GROUP BY comparison_id
  )
  SELECT k.labels, k.judgment_count, {first}, {second}
  FROM comparisons k JOIN annotate_app_comparison c ON c.id = k.comparison_id {comparison_values}
  ORDER BY k.comparison_id
) TO STDOUT (FORMAT binary)
"""

# Output as the Python writers write it (shortest float digits, ISO dates), jit off:
# compiling the expressions takes longer than the export saves.
SESSION_SQL = (
    "SET LOCAL extra_float_digits = 1; SET LOCAL DateStyle = 'ISO'; SET LOCAL jit = off;"
    " SET LOCAL max_parallel_workers_per_gather = 0"
)


def copy_export_supported(format: str) -> bool:
    """Whether this database builds the format itself (Postgres: all but trl)."""
    return format in COPY_FORMATS and connection.vendor == "postgresql"


def copy_export(
    format: str,
    project: Project,
    selection: Selection,
    out: BinaryIO,
    *,
    on_labels: Callable[[dict[str, Label]], None],
    on_judgments: Callable[[int], None] | None = None,
) -> int:
    """Write a jsonl, csv or parquet export built by Postgres; returns the rows written.

    ``on_labels(labels)`` is called once per comparison written, ``on_judgments(count)``
    every PROGRESS_EVERY judgments. Both run while the connection streams the COPY,
    so neither may query through it.
    """
    with closing(_copy_rows(format, project, selection, on_labels, on_judgments)) as rows:
        if format == "jsonl":
            return _write_jsonl(rows, out)
        pieces = ((count, text) for _, _, count, text, _ in rows)
        return (write_csv_rows if format == "csv" else write_parquet_rows)(pieces, out)


def _copy_rows(
    format: str,
    project: Project,
    selection: Selection,
    on_labels: Callable[[dict[str, Label]], None],
    on_judgments: Callable[[int], None] | None,
) -> Iterator[tuple[dict[str, Label], dict[str, Rating], int, bytes, bytes]]:
    """The COPY's rows, one per comparison: (labels, ratings, judgments, first text, second text)."""
    sql, params = _export_sql(format, project, selection)
    judgments = 0
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(SESSION_SQL)
        with cursor.cursor.copy(sql, params) as copy:
            copy.set_types(["text", "int8", "bytea", "bytea"])  # the texts as the file's UTF-8 bytes
            for labels_text, count, first, second in copy.rows():
                labels, ratings = _labels(labels_text)
                on_labels(labels)
                yield labels, ratings, count, first, second
                if on_judgments and (judgments + count) // PROGRESS_EVERY > judgments // PROGRESS_EVERY:
                    on_judgments(judgments + count)
                judgments += count
    if on_judgments:
        on_judgments(judgments)


def _write_jsonl(
    rows: Iterator[tuple[dict[str, Label], dict[str, Rating], int, bytes, bytes]], out: BinaryIO
) -> int:
    """Each line: the comparison's fields, its labels (and ratings, when any) formatted by Python, its judgments
    and meta."""
    lines = 0
    for labels, ratings, _, head, tail in rows:
        rated = b', "ratings": ' + dumps(ratings_dict(ratings)).encode() if ratings else b""
        out.write(b"".join((head, dumps(labels_dict(labels)).encode(), rated, tail, b"\n")))
        lines += 1
    return lines


def _export_sql(format: str, project: Project, selection: Selection) -> tuple[str, list]:
    scope = judgments_in_scope(project, selection).order_by().values_list(*SCOPE_COLUMNS.values())
    scope_sql, scope_params = scope.query.sql_with_params()
    spec = FORMATS[format]
    sql = EXPORT_SQL.format(
        columns=", ".join(SCOPE_COLUMNS), scope=scope_sql, prepared=spec.prepared,
        signed_score=SIGNED_SCORE, collect=spec.collect, judgment=spec.judgment, first=spec.first,
        second=spec.second, comparison_values=spec.comparison_values,
    )
    return sql, [*scope_params, selection.min_annotations, selection.min_agreement]


def _labels(text: str) -> tuple[dict[str, Label], dict[str, Rating]]:
    """One comparison's labels and ratings from its "objective:sum:n:majority:likert sums and counts ..."
    (objective keys are slugs)."""
    labels, ratings = {}, {}
    for item in text.split(" "):
        objective, label, rating = _label(item)
        labels[objective] = label
        if rating is not None:
            ratings[objective] = rating
    return labels, ratings


# Few distinct labels recur over and over (small integer sums and counts): parse each once.
@lru_cache(maxsize=4096)
def _label(item: str) -> tuple[str, Label, Rating | None]:
    objective, total, n, majority, sum_a, n_a, sum_b, n_b = item.split(":")
    label = Label.from_counts(total=float(total), n=int(n), majority=int(majority))
    if n_a == n_b == "0":
        return objective, label, None
    # A side nobody rated has a NULL sum, written empty.
    return objective, label, Rating(float(sum_a or 0), int(n_a), float(sum_b or 0), int(n_b))
