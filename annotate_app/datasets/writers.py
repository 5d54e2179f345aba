"""Export file writers, one per format, all fed the same stream of ComparisonRecords.

Each writer writes incrementally and returns the number of rows it wrote; none holds
the dataset in memory.
"""

import csv
import json
from collections.abc import Iterable
from typing import BinaryIO

import pyarrow as pa
import pyarrow.parquet as pq

from .aggregation import Label
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
    ("likert_a", pa.int64()),
    ("likert_b", pa.int64()),
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


def comparison_id(comparison: dict) -> str:
    """The id a dataset uses: the external id, or a stable morm id when there is none."""
    return comparison["external_id"] or f"morm-{comparison['id']}"


def dumps(value) -> str:
    """JSON as every export writes it: UTF-8 characters as they are, default separators."""
    return json.dumps(value, ensure_ascii=False)


def labels_dict(labels: dict[str, Label]) -> dict:
    """A jsonl line's "labels": score, n and agreement per objective, rounded."""
    return {objective: label.as_dict() for objective, label in labels.items()}


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
                "likert_a": judgment["likert_a"],
                "likert_b": judgment["likert_b"],
                "flags_a": dumps(judgment["flags_a"]),
                "flags_b": dumps(judgment["flags_b"]),
                "time_spent_ms": judgment["time_spent_ms"],
                "created_at": judgment["created_at"].isoformat(),
                "prompt": prompt,
                "response_a": comparison["response_a"],
                "response_b": comparison["response_b"],
            }


def write_jsonl(records: Iterable[ComparisonRecord], out: BinaryIO, **_) -> int:
    """Multi-objective JSONL: one comparison per line with its labels and judgments.

    It re-imports as ``native``: same comparisons, same label scores.
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
            "judgments": [
                {
                    "objective": j["objective"],
                    "choice": j["choice"],
                    "strength": j["strength"],
                    "score": j["score"],
                    "rationale": j["rationale"],
                    "annotator": j["annotator"],
                    "source": j["source"],
                    "likert_a": j["likert_a"],
                    "likert_b": j["likert_b"],
                }
                for j in record.judgments
            ],
            "meta": comparison["metadata"],
        }
        out.write((dumps(line) + "\n").encode("utf-8"))
        rows += 1
    return rows


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


class _TextOut:
    """csv needs a text stream; encode to the binary file as it writes."""

    def __init__(self, out: BinaryIO):
        self.out = out

    def write(self, text: str) -> int:
        return self.out.write(text.encode("utf-8"))


def csv_writer(out: BinaryIO) -> csv.DictWriter:
    """A csv writer of judgment rows into out, the header already written."""
    writer = csv.DictWriter(_TextOut(out), fieldnames=CSV_COLUMNS)
    writer.writeheader()
    return writer


def write_csv(records: Iterable[ComparisonRecord], out: BinaryIO, **_) -> int:
    """One row per judgment, header first."""
    writer = csv_writer(out)
    rows = 0
    for row in _judgment_rows(records):
        writer.writerow(row)
        rows += 1
    return rows


def write_parquet(records: Iterable[ComparisonRecord], out: BinaryIO, **_) -> int:
    """One row per judgment, written in row groups of PARQUET_BATCH."""
    rows = 0
    batch: list[dict] = []
    with pq.ParquetWriter(out, PARQUET_SCHEMA) as writer:
        for row in _judgment_rows(records):
            batch.append(row)
            if len(batch) == PARQUET_BATCH:
                writer.write_table(pa.Table.from_pylist(batch, schema=PARQUET_SCHEMA))
                rows += len(batch)
                batch = []
        if batch or rows == 0:
            writer.write_table(pa.Table.from_pylist(batch, schema=PARQUET_SCHEMA))
            rows += len(batch)
    return rows


WRITERS = {"jsonl": write_jsonl, "trl": write_trl, "csv": write_csv, "parquet": write_parquet}
