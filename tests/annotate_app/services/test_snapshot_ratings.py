"""Likert ratings in snapshots: jsonl carries each response's mean rating (what training reads), csv and parquet
each judgment's ratings, and a jsonl export re-imports as native with its ratings."""

import csv
import io
import json

import pytest

from annotate_app.models import Judgment
from annotate_app.services.imports import comparison_import
from annotate_app.services.snapshots import snapshot_create, snapshot_path
from rm_worker.training import load_pairs
from tests.factories import annotate, import_lines, make_project, member, native_line

pytestmark = pytest.mark.django_db


@pytest.fixture
def rated():
    """c0 rated by both annotators on helpful (A: 6 and 3, B: 2 and unrated), by one on harmless (B: 7);
    c1 judged but rated by nobody."""
    project = make_project(comparisons=2, overlap_k=2, gold_rate=0, ask_likert=True)
    alice, bob = member(project, username="alice"), member(project, username="bob")
    for user in (alice, bob):
        for scores in ({"helpful": -1}, {"helpful": 2}):
            annotate(project, user, scores)
    c0 = Judgment.objects.filter(annotation__comparison__external_id="c0")
    c0.filter(annotation__annotator=alice, objective__key="helpful").update(likert_a=6, likert_b=2)
    c0.filter(annotation__annotator=bob, objective__key="helpful").update(likert_a=3)
    c0.filter(annotation__annotator=alice, objective__key="harmless").update(likert_b=7)
    return project


def _lines(snapshot) -> dict[str, dict]:
    lines = [json.loads(line) for line in snapshot_path(snapshot).read_text().splitlines()]
    return {line["id"]: line for line in lines}


def test_jsonl_carries_the_mean_rating_of_each_response_per_objective(rated):
    lines = _lines(snapshot_create(project=rated, format="jsonl"))
    assert lines["c0"]["ratings"] == {
        "helpful": {"a": 4.5, "b": 2, "n_a": 2, "n_b": 1},
        "harmless": {"a": None, "b": 7, "n_a": 0, "n_b": 1},
    }
    assert "ratings" not in lines["c1"]
    assert list(lines["c0"]) == ["id", "prompt", "response_a", "response_b", "model_a", "model_b", "labels",
                                 "ratings", "judgments", "meta"]
    judgments = {(j["annotator"], j["objective"]): j for j in lines["c0"]["judgments"]}
    alice_helpful = judgments["alice", "helpful"]
    assert (alice_helpful["likert_a"], alice_helpful["likert_b"]) == (6, 2)  # whole points stay integers


def test_training_reads_the_ratings_of_a_jsonl_snapshot(rated):
    pairs = {pair.id: pair for pair in load_pairs(snapshot_path(snapshot_create(project=rated, format="jsonl")))}
    assert pairs["c0"].ratings == {"helpful": (4.5, 2.0), "harmless": (None, 7.0)}
    assert pairs["c1"].ratings == {}


def test_csv_and_parquet_rows_carry_each_judgments_ratings(rated):
    rows = list(csv.DictReader(io.StringIO(snapshot_path(snapshot_create(project=rated, format="csv")).read_text())))
    by_key = {(row["external_id"], row["annotator"], row["objective"]): row for row in rows}
    assert (by_key["c0", "alice", "helpful"]["likert_a"], by_key["c0", "alice", "helpful"]["likert_b"]) == ("6", "2")
    assert (by_key["c0", "bob", "helpful"]["likert_a"], by_key["c0", "bob", "helpful"]["likert_b"]) == ("3", "")
    pq = pytest.importorskip("pyarrow.parquet")
    table = pq.read_table(snapshot_path(snapshot_create(project=rated, format="parquet"))).to_pylist()
    parquet = {(row["external_id"], row["annotator"], row["objective"]): row for row in table}
    assert (parquet["c0", "alice", "harmless"]["likert_a"], parquet["c0", "alice", "harmless"]["likert_b"]) == (None, 7)
    assert (parquet["c0", "bob", "helpful"]["likert_a"], parquet["c0", "bob", "helpful"]["likert_b"]) == (3, None)


def test_jsonl_round_trips_its_ratings_as_native(rated):
    first = snapshot_create(project=rated, format="jsonl")
    other = make_project()
    with snapshot_path(first).open("rb") as fileobj:
        comparison_import(project=other, fileobj=fileobj, format="auto")
    again = _lines(snapshot_create(project=other, format="jsonl"))
    original = _lines(first)
    assert again["c0"]["ratings"] == {  # the means, exact; one imported judgment behind each
        "helpful": {"a": 4.5, "b": 2, "n_a": 1, "n_b": 1},
        "harmless": {"a": None, "b": 7, "n_a": 0, "n_b": 1},
    }
    assert {o: r["a"] for o, r in again["c0"]["ratings"].items()} == {
        o: r["a"] for o, r in original["c0"]["ratings"].items()
    }
    assert "ratings" not in again["c1"]


def test_a_native_file_with_ratings_and_no_preference_trains_on_its_ratings():
    project = make_project()
    import_lines(project, [native_line(0, labels={"helpful": "tie"}, ratings={"helpful": {"a": 2, "b": 6.5}})])
    (pair,) = load_pairs(snapshot_path(snapshot_create(project=project, format="jsonl")), ["helpful"])
    assert pair.scores == {"helpful": 0.0} and pair.ratings == {"helpful": (2.0, 6.5)}
