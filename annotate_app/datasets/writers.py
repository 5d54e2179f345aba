"""Export file writers, one per format, all fed the same stream of ComparisonRecords.

csv and parquet are written from csv rows, a comparison's at a time (write_csv_rows,
write_parquet_rows): from the records here, or as Postgres writes them (postgres.py).
Each writer writes incrementally and returns the number of rows it wrote; none holds
the dataset in memory.
"""

import csv
import io
import json
from collections.abc import Iterable, Iterator
from typing import BinaryIO

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from .aggregation import Label, Rating, aggregate_ratings
from .rows import ComparisonRecord

PARQUET_BATCH = 5000

# One row per judgment (csv and parquet).
JUDGMENT_COLUMNS = [
    ("comparison_id", pa.int64()),
    ("external_id", pa.string()),
    ("objective", pa.string()),
    ("choice", pa.string()),
    ("strength", pa.int64()),
    ("score", pa.float64()),
    ("rationale", pa.string()),
    ("annotator", pa.string()),
    ("source", pa.int64()),
    ("shown_swapped", pa.bool_()),
    ("likert_a", pa.float64()),
    ("likert_b", pa.float64()),
    ("flags_a", pa.string()),
    ("flags_b", pa.string()),
    ("time_spent_ms", pa.int64()),
    ("created_at", pa.string()),
    ("prompt", pa.string()),
    ("response_a", pa.string()),
    ("response_b", pa.string()),
]
PARQUET_SCHEMA = pa.schema(JUDGMENT_COLUMNS)
CSV_COLUMNS = [name for name, _ in JUDGMENT_COLUMNS]
CSV_HEADER = (",".join(CSV_COLUMNS) + "\r\n").encode()  # as csv.writer writes it: no name needs quotes


def comparison_id(comparison: dict) -> str:
    """The id a dataset uses: the external id, or a stable morm id when there is none."""
    return comparison["external_id"] or f"morm-{comparison['id']}"


def dumps(value) -> str:
    """JSON as every export writes it: UTF-8 characters as they are, default separators."""
    return json.dumps(value, ensure_ascii=False)


def labels_dict(labels: dict[str, Label]) -> dict:
    """A jsonl line's "labels": score, n and agreement per objective, rounded."""
    return {objective: label.as_dict() for objective, label in labels.items()}


def likert(value: float | None) -> int | float | None:
    """A Likert rating as exports write it: a whole point as an integer (as annotators give them), an imported
    mean as it is. Postgres writes the float8 the same way (postgres.py)."""
    return int(value) if value is not None and value.is_integer() else value


def ratings_dict(ratings: dict[str, Rating]) -> dict:
    """A jsonl line's "ratings": per objective rated, each response's mean Likert rating and how many rated it."""
    return {objective: rating.as_dict() for objective, rating in ratings.items()}


def _judgment_rows(records: Iterable[ComparisonRecord]):
    for record in records:
        comparison = record.comparison
        prompt = comparison["prompt"] if isinstance(comparison["prompt"], str) else dumps(comparison["prompt"])
        for judgment in record.judgments:
            yield {
                "comparison_id": comparison["id"],
                "external_id": comparison_id(comparison),
                "objective": judgment["objective"],
                "choice": judgment["choice"],
                "strength": judgment["strength"],
                "score": judgment["score"],
                "rationale": judgment["rationale"],
                "annotator": judgment["annotator"],
                "source": judgment["source"],
                "shown_swapped": judgment["shown_swapped"],
                "likert_a": likert(judgment["likert_a"]),
                "likert_b": likert(judgment["likert_b"]),
                "flags_a": dumps(judgment["flags_a"]),
                "flags_b": dumps(judgment["flags_b"]),
                "time_spent_ms": judgment["time_spent_ms"],
                "created_at": judgment["created_at"].isoformat(),
                "prompt": prompt,
                "response_a": comparison["response_a"],
                "response_b": comparison["response_b"],
            }


def write_jsonl(records: Iterable[ComparisonRecord], out: BinaryIO, **_) -> int:
    """Multi-objective JSONL: one comparison per line with its labels, its ratings (when any judgment rated a
    response: the mean per objective and side, what training reads) and its judgments.

    It re-imports as ``native``: same comparisons, same label scores, same ratings.
    """
    rows = 0
    for record in records:
        comparison = record.comparison
        line = {
            "id": comparison_id(comparison),
            "prompt": comparison["prompt"],
            "response_a": comparison["response_a"],
            "response_b": comparison["response_b"],
            "model_a": comparison["model_a"],
            "model_b": comparison["model_b"],
            "labels": labels_dict(record.labels),
            **_ratings_field(aggregate_ratings(record.judgments)),
            "judgments": [
                {
                    "objective": j["objective"],
                    "choice": j["choice"],
                    "strength": j["strength"],
                    "score": j["score"],
                    "rationale": j["rationale"],
                    "annotator": j["annotator"],
                    "source": j["source"],
                    "likert_a": likert(j["likert_a"]),
                    "likert_b": likert(j["likert_b"]),
                }
                for j in record.judgments
            ],
            "meta": comparison["metadata"],
        }
        out.write((dumps(line) + "\n").encode("utf-8"))
        rows += 1
    return rows


def _ratings_field(ratings: dict[str, Rating]) -> dict:
    """``{"ratings": ...}`` when a response was rated, else nothing: lines of projects without ratings are
    as they were before ratings were exported."""
    return {"ratings": ratings_dict(ratings)} if ratings else {}


def write_trl(records: Iterable[ComparisonRecord], out: BinaryIO, *, objective: str, margin: bool = False) -> int:
    """TRL preference pairs for one objective: prompt, chosen, rejected (+ margin).

    Chat prompts use TRL's conversational format, so RewardTrainer applies the model's
    chat template; plain prompts stay strings. Ties carry no preference and are dropped.
    """
    rows = 0
    for record in records:
        label = record.labels.get(objective)
        if label is None or label.choice == "tie":
            continue
        comparison = record.comparison
        winner, loser = (
            (comparison["response_a"], comparison["response_b"])
            if label.choice == "A"
            else (comparison["response_b"], comparison["response_a"])
        )
        if isinstance(comparison["prompt"], str):
            line = {"prompt": comparison["prompt"], "chosen": winner, "rejected": loser}
        else:
            line = {
                "prompt": comparison["prompt"],
                "chosen": [{"role": "assistant", "content": winner}],
                "rejected": [{"role": "assistant", "content": loser}],
            }
        if margin:
            line["margin"] = round(abs(label.score), 4)
        out.write((dumps(line) + "\n").encode("utf-8"))
        rows += 1
    return rows


def _csv_pieces(records: Iterable[ComparisonRecord]) -> Iterator[tuple[int, bytes]]:
    """Each comparison's csv rows, header-less: (rows, bytes), as write_csv_rows reads them."""
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=CSV_COLUMNS)
    for record in records:
        rows = 0
        for row in _judgment_rows([record]):
            writer.writerow(row)
            rows += 1
        yield rows, text.getvalue().encode("utf-8")
        text.seek(0)
        text.truncate()


def write_csv(records: Iterable[ComparisonRecord], out: BinaryIO, **_) -> int:
    """One row per judgment, header first."""
    return write_csv_rows(_csv_pieces(records), out)


def write_csv_rows(pieces: Iterable[tuple[int, bytes]], out: BinaryIO) -> int:
    """The csv file of pieces of csv rows: (rows, bytes) each, as Python's csv module writes them."""
    out.write(CSV_HEADER)
    rows = 0
    for count, data in pieces:
        out.write(data)
        rows += count
    return rows


def write_parquet(records: Iterable[ComparisonRecord], out: BinaryIO, **_) -> int:
    """One row per judgment, written in row groups of PARQUET_BATCH."""
    return write_parquet_rows(_csv_pieces(records), out)


def write_parquet_rows(pieces: Iterable[tuple[int, bytes]], out: BinaryIO) -> int:
    """The parquet file of pieces of csv rows (see write_csv_rows), parsed by Arrow.

    Arrow parses csv far faster than Python builds rows; the csv text holds every value as
    the csv export writes it, and the schema gives each column its type back.
    """
    rows = 0
    with pq.ParquetWriter(out, PARQUET_SCHEMA) as writer:
        for table in _row_groups(_csv_tables(pieces)):
            writer.write_table(_missing_annotators(table))
            rows += table.num_rows
        if rows == 0:
            writer.write_table(PARQUET_SCHEMA.empty_table())
    return rows


CSV_CHUNK = 8 << 20  # bytes of csv text Arrow parses at a time
CSV_READ = pa_csv.ReadOptions(column_names=CSV_COLUMNS)
CSV_PARSE = pa_csv.ParseOptions(newlines_in_values=True)
# Empty is null but in text columns: an empty rationale stays empty.
CSV_CONVERT = pa_csv.ConvertOptions(column_types=PARQUET_SCHEMA, null_values=[""], strings_can_be_null=False)


def _csv_tables(pieces: Iterable[tuple[int, bytes]]) -> Iterator[pa.Table]:
    """Tables parsed from CSV_CHUNK of csv text at a time; pieces end at a row's end.

    The text is gathered here rather than read by Arrow from a file object: Arrow reads files
    on threads of its own, and the pieces come from this thread's database connection.
    """
    chunk: list[bytes] = []
    size = 0
    for _, data in pieces:
        chunk.append(data)
        size += len(data)
        if size >= CSV_CHUNK:
            yield _parse_csv(chunk)
            chunk, size = [], 0
    if chunk:
        yield _parse_csv(chunk)


def _parse_csv(chunk: list[bytes]) -> pa.Table:
    text = io.BytesIO(b"".join(chunk))
    return pa_csv.read_csv(text, read_options=CSV_READ, parse_options=CSV_PARSE, convert_options=CSV_CONVERT)


def _row_groups(tables: Iterable[pa.Table]) -> Iterator[pa.Table]:
    """Tables of PARQUET_BATCH rows (the last one shorter) from tables of any size."""
    pending = PARQUET_SCHEMA.empty_table()
    for table in tables:
        pending = pa.concat_tables([pending, table])
        while pending.num_rows >= PARQUET_BATCH:
            yield pending.slice(0, PARQUET_BATCH)
            pending = pending.slice(PARQUET_BATCH)
    if pending.num_rows:
        yield pending


def _missing_annotators(table: pa.Table) -> pa.Table:
    """An imported label has no annotator: null, which csv writes empty (usernames never are)."""
    index = table.schema.get_field_index("annotator")
    column = table.column(index)
    return table.set_column(index, "annotator", pc.if_else(pc.equal(column, ""), pa.scalar(None, pa.string()), column))


WRITERS = {"jsonl": write_jsonl, "trl": write_trl, "csv": write_csv, "parquet": write_parquet}
