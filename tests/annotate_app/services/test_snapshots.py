"""snapshot_create: the four formats, filters, manifest and sha256, and what loads them."""

import csv
import hashlib
import io
import json

import pytest
from django.core.exceptions import ValidationError
from django.db import DEFAULT_DB_ALIAS, connection, connections

from annotate_app.datasets import postgres
from annotate_app.models import Snapshot, SnapshotStatus
from annotate_app.services import snapshots
from annotate_app.services.gold import comparison_mark_gold
from annotate_app.services.snapshots import ExportFilters, snapshot_build, snapshot_create, snapshot_path
from tests.conftest import require
from tests.factories import annotate, import_lines, make_project, member, native_line

pytestmark = pytest.mark.django_db


@pytest.fixture
def labelled():
    """3 comparisons, 2 annotators, known canonical scores; comparison 2 split on helpful."""
    project = make_project(comparisons=3, overlap_k=2, gold_rate=0)
    alice, bob = member(project), member(project)
    for user, rows in [
        (alice, [{"helpful": -2, "harmless": 1}, {"helpful": 3, "harmless": -1}, {"helpful": 0}]),
        (bob, [{"helpful": -3, "harmless": 2}, {"helpful": -1, "harmless": -1}, {"helpful": 0}]),
    ]:
        for scores in rows:
            annotate(project, user, scores)
    return project


def _lines(snapshot):
    return [json.loads(line) for line in snapshot_path(snapshot).read_text().splitlines()]


def test_jsonl_has_labels_and_judgments_per_objective(labelled):
    snapshot = snapshot_create(project=labelled, format="jsonl")
    assert snapshot.status == SnapshotStatus.READY
    lines = {line["id"]: line for line in _lines(snapshot)}
    assert set(lines) == {"c0", "c1", "c2"}
    assert lines["c0"]["labels"]["helpful"] == {"score": -2.5, "n": 2, "agreement": 1.0}
    assert lines["c0"]["labels"]["harmless"] == {"score": 1.5, "n": 2, "agreement": 1.0}
    assert lines["c1"]["labels"]["helpful"] == {"score": 1.0, "n": 2, "agreement": 0.5}
    assert lines["c2"]["labels"]["honest"] == {"score": 0.0, "n": 2, "agreement": 1.0}
    assert len(lines["c0"]["judgments"]) == 6
    assert {j["annotator"] for j in lines["c0"]["judgments"]} == {labelled.memberships.all()[0].user.username,
                                                                 labelled.memberships.all()[1].user.username}


def test_manifest_and_sha256_match_the_file(labelled):
    snapshot = snapshot_create(project=labelled, format="csv")
    data = snapshot_path(snapshot).read_bytes()
    assert snapshot.sha256 == hashlib.sha256(data).hexdigest() == snapshot.manifest["sha256"]
    assert snapshot.manifest["rows"] == 18 and snapshot.manifest["comparisons"] == 3
    helpful = snapshot.manifest["objectives"]["helpful"]
    assert helpful == {"comparisons": 3, "judgments": 6, "ties": 1, "pairs": 2, "mean_agreement": 0.8333}
    assert snapshot.manifest["filters"]["min_annotations"] == 1


def _rows_in_file(snapshot) -> int:
    path = snapshot_path(snapshot)
    if snapshot.format == "parquet":
        return pytest.importorskip("pyarrow.parquet").read_metadata(path).num_rows
    if snapshot.format == "csv":
        return len(list(csv.DictReader(io.StringIO(path.read_text(), newline=""))))
    return len(_lines(snapshot))


@pytest.mark.parametrize(
    "format, objective, rows, row",
    [("jsonl", "", 3, "comparison"), ("trl", "helpful", 1, "preference pair"), ("csv", "", 16, "judgment"),
     ("parquet", "", 16, "judgment")],
)
def test_manifest_counts_are_those_of_the_file(labelled, format, objective, rows, row):
    """Comparison 1's helpful label (agreement 0.5) is dropped: 18 judgments in scope, 16 written."""
    snapshot = snapshot_create(
        project=labelled, format=format, objective=objective, filters=ExportFilters(min_agreement=0.6)
    )
    manifest = snapshot.manifest
    assert manifest["rows"] == _rows_in_file(snapshot) == rows and manifest["row"] == row
    assert manifest["comparisons"] == (3 if objective == "" else 2)
    expected_judgments = 16 if objective == "" else 4  # trl: helpful only, c1's two dropped
    assert manifest["judgments"] == expected_judgments
    assert manifest["judgments"] == sum(o["judgments"] for o in manifest["objectives"].values())
    assert snapshot.judgments_total == (18 if objective == "" else 6)  # the progress bar's end, before filters
    assert "rows_total" not in manifest and not hasattr(snapshot, "rows_total")


def test_jsonl_round_trips_as_native(labelled):
    first = snapshot_create(project=labelled, format="jsonl")
    other = make_project()
    with snapshot_path(first).open("rb") as fileobj:
        from annotate_app.services.imports import comparison_import

        batch = comparison_import(project=other, fileobj=fileobj, format="auto")
    assert batch.created_count == 3
    again = snapshot_create(project=other, format="jsonl")
    original = {line["id"]: line for line in _lines(first)}
    copied = {line["id"]: line for line in _lines(again)}
    assert original.keys() == copied.keys()
    for key, line in original.items():
        for field in ("prompt", "response_a", "response_b"):
            assert copied[key][field] == line[field]
        assert {o: lab["score"] for o, lab in copied[key]["labels"].items()} == {
            o: lab["score"] for o, lab in line["labels"].items()
        }


def test_trl_drops_ties_and_writes_margin_when_asked(labelled):
    snapshot = snapshot_create(project=labelled, format="trl", objective="helpful",
                               filters=ExportFilters(margin=True))
    lines = _lines(snapshot)
    assert len(lines) == 2  # c2 is a tie
    c0 = labelled.comparisons.get(external_id="c0")
    assert lines[0]["chosen"] == [{"role": "assistant", "content": c0.response_a}]  # A won with -2.5
    assert lines[0]["rejected"] == [{"role": "assistant", "content": c0.response_b}]
    assert lines[0]["prompt"] == c0.prompt
    assert [line["margin"] for line in lines] == [2.5, 1.0]
    plain = snapshot_create(project=labelled, format="trl", objective="helpful")
    assert "margin" not in _lines(plain)[0]


def test_trl_with_plain_text_prompts_writes_strings():
    project = make_project()
    import_lines(project, [native_line(1, prompt="Why?", labels={"honest": 2})])
    [line] = _lines(snapshot_create(project=project, format="trl", objective="honest"))
    assert line == {"prompt": "Why?", "chosen": "Second answer to 1.", "rejected": "First answer to 1."}


def test_filters_min_annotations_agreement_and_imported(labelled):
    import_lines(labelled, [native_line(9, labels={"helpful": "B"})])
    everything = snapshot_create(project=labelled, format="jsonl")
    assert everything.manifest["comparisons"] == 4
    humans_only = snapshot_create(project=labelled, format="jsonl", filters=ExportFilters(include_imported=False))
    assert humans_only.manifest["comparisons"] == 3
    two_each = snapshot_create(project=labelled, format="jsonl", filters=ExportFilters(min_annotations=2))
    assert two_each.manifest["comparisons"] == 3
    agreeing = snapshot_create(
        project=labelled, format="jsonl", filters=ExportFilters(min_agreement=0.9, objectives=["helpful"])
    )
    assert [line["id"] for line in _lines(agreeing)] == ["c0", "c2", "c9"]


def test_annotators_failing_gold_can_be_excluded():
    project = make_project(comparisons=2, overlap_k=2, gold_rate=1.0)
    good, bad = member(project), member(project)
    gold = project.comparisons.get(external_id="c1")
    comparison_mark_gold(comparison=gold, expected={"helpful": "A"})
    for user, gold_score in [(good, -2), (bad, 2)]:
        task = annotate(project, user, {"helpful": gold_score})
        assert task.comparison_id == gold.pk  # gold_rate 1: gold first
        annotate(project, user, {"helpful": -1})
    kept = snapshot_create(project=project, format="csv", filters=ExportFilters(exclude_failing_gold=True))
    assert kept.manifest["excluded_annotators"] == [bad.pk]
    assert bad.username not in snapshot_path(kept).read_text()
    assert good.username in snapshot_path(kept).read_text()
    lenient = snapshot_create(
        project=project, format="csv", filters=ExportFilters(exclude_failing_gold=True, gold_threshold=0.0)
    )
    assert lenient.manifest["excluded_annotators"] == []


@pytest.mark.parametrize(
    "options, field",
    [
        ({"format": "xlsx"}, "format"),
        ({"format": "trl"}, "objective"),
        ({"format": "jsonl", "objective": "style"}, "objective"),
        ({"format": "jsonl", "filters": ExportFilters(objectives=["style"])}, "objectives"),
        ({"format": "jsonl", "filters": ExportFilters(min_annotations=0)}, "min_annotations"),
        ({"format": "jsonl", "filters": ExportFilters(min_agreement=1.5)}, "min_agreement"),
        ({"format": "jsonl", "filters": ExportFilters(gold_threshold=-0.1)}, "gold_threshold"),
    ],
)
def test_bad_export_requests_are_rejected(labelled, options, field):
    with pytest.raises(ValidationError) as error:
        snapshot_create(project=labelled, **options)
    assert field in error.value.message_dict
    assert not Snapshot.objects.exists()


def test_large_exports_are_queued_and_built_once(labelled, settings, django_capture_on_commit_callbacks):
    settings.MORM_EXPORT_BACKGROUND_ROWS = 5
    with django_capture_on_commit_callbacks() as callbacks:
        snapshot = snapshot_create(project=labelled, format="jsonl")
    assert snapshot.status == SnapshotStatus.QUEUED and snapshot.judgments_total == 18
    assert len(callbacks) == 1  # the Celery task is sent after commit
    built = snapshot_build(snapshot_id=snapshot.pk)
    assert built.status == SnapshotStatus.READY and built.judgments_read == 18
    sha = built.sha256
    assert snapshot_build(snapshot_id=snapshot.pk).sha256 == sha  # idempotent: not rebuilt


def test_parquet_loads_with_datasets(labelled):
    datasets = pytest.importorskip("datasets")
    snapshot = snapshot_create(project=labelled, format="parquet")
    loaded = datasets.load_dataset("parquet", data_files=str(snapshot_path(snapshot)), split="train")
    assert loaded.num_rows == 18
    assert set(loaded["objective"]) == {"helpful", "harmless", "honest"}
    assert sorted(loaded.filter(lambda r: r["external_id"] == "c0" and r["objective"] == "helpful")["score"]) == [
        -3.0, -2.0]


def test_parquet_holds_the_csv_rows_with_nulls_where_a_value_is_missing(labelled):
    import_lines(labelled, [native_line(9, labels={"helpful": "B"})])
    pq = pytest.importorskip("pyarrow.parquet")
    table = pq.read_table(snapshot_path(snapshot_create(project=labelled, format="parquet"))).to_pylist()
    text = snapshot_path(snapshot_create(project=labelled, format="csv")).read_text()
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    assert [(r["external_id"], r["objective"], str(r["score"])) for r in table] == [
        (r["external_id"], r["objective"], r["score"]) for r in rows
    ]
    imported = [row for row in table if row["source"] is not None]
    assert len(imported) == 1 and imported[0]["annotator"] is None and imported[0]["shown_swapped"] is None
    assert imported[0]["strength"] is None and imported[0]["created_at"] == rows[-1]["created_at"]
    assert {row["rationale"] for row in table} == {""}  # empty, not missing

@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_progress_shows_while_postgres_streams_the_export(monkeypatch):
    """The COPY holds the export's connection: progress goes through another, visible at once."""
    require(connection.vendor == "postgresql", "COPY exports need Postgres (set DATABASE_URL)")
    project = make_project(comparisons=3, overlap_k=1, gold_rate=0)
    user = member(project)
    for _ in range(3):
        annotate(project, user, {"helpful": 1})  # 3 judgments each, one per objective
    monkeypatch.setattr(postgres, "PROGRESS_EVERY", 1)
    observer = connections.create_connection(DEFAULT_DB_ALIAS)
    seen = []
    copy_export = snapshots.copy_export

    def observed(*args, on_labels, **options):
        def look(labels):
            on_labels(labels)
            with observer.cursor() as cursor:
                cursor.execute("SELECT judgments_read FROM annotate_app_snapshot ORDER BY id DESC LIMIT 1")
                seen.append(cursor.fetchone()[0])

        return copy_export(*args, on_labels=look, **options)

    monkeypatch.setattr(snapshots, "copy_export", observed)
    snapshot = snapshot_create(project=project, format="csv", background=False)
    observer.close()
    assert seen == [0, 3, 6]
    assert snapshot.judgments_read == 9
