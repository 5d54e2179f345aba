"""copy_export (Postgres builds jsonl, csv and parquet) writes the Python writers' bytes and labels.

Both paths read the same project under the same filters; the data is chosen to hit every
place where Postgres and Python could write a value differently: JSON and csv escaping,
control and non-ASCII characters, plain and chat prompts, missing external ids, imported
fractional scores (means that Python's float sum and round must reproduce), ties, empty
and null fields, swapped and unswapped tasks, timestamps with and without microseconds, Likert ratings
whole and fractional, on one side or both, averaged over annotators.
"""

import datetime
import io
import json

import pytest
from django.db import connection

from annotate_app.datasets.postgres import copy_export
from annotate_app.datasets.rows import Selection, stream_records
from annotate_app.datasets.writers import WRITERS
from annotate_app.models import Annotation, Judgment
from tests.conftest import require
from tests.factories import annotate, import_lines, make_project, member, native_line

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

AWKWARD = 'comma, "quote", back\\slash, new\nline, cr\r\nlf, tab\t, ctrl \x01\x1f, é 漢字 \u2028 🙂'
OBJECTIVES = ("helpful", "harmless", "honest")


@pytest.fixture
def awkward():
    require(connection.vendor == "postgresql", "COPY exports need Postgres (set DATABASE_URL)")
    project = make_project(overlap_k=3, gold_rate=0)
    import_lines(project, [
        native_line(0, id='c,0 "q"', prompt=[{"role": "user", "content": AWKWARD}], response_a=AWKWARD,
                    model_a="m,a", meta={"note": AWKWARD, "nested": {"k": [1, 2.5, None, True]}},
                    labels={"helpful": 1.6667, "harmless": -0.25, "honest": "tie"}),
        native_line(1, prompt='Plain "text", prompt\n', labels={"helpful": -2.3333, "harmless": "B"},
                    ratings={"helpful": {"a": 3.3333, "b": None}, "harmless": {"b": 6.5}}),
        {key: value for key, value in native_line(2).items() if key != "id"},
        native_line(3),  # never judged
        native_line(4, labels={"honest": 0.5}),
    ])
    users = [member(project, username=name) for name in ("ann", "bob", "cy")]
    for user, rows in zip(users, [
        [{"helpful": -2, "harmless": 1}, {"helpful": 3, "harmless": -1}, {"helpful": 1}, {}, {"honest": -3}],
        [{"helpful": -3, "harmless": 2}, {"helpful": -1, "harmless": -1}, {"helpful": 2}, {"honest": 1}, {}],
        [{"helpful": 1}, {"harmless": 3}, {}, {"helpful": -1}, {"honest": 2}],
    ]):
        for scores in rows:
            annotate(project, user, scores)
    annotations = Annotation.objects.filter(comparison__project=project, annotator=users[0])
    annotations.update(flags_a=["unsafe", 'say "no"'], flags_b=[], time_spent_ms=1234,
                       created_at=datetime.datetime(2025, 1, 2, 3, 4, 5, tzinfo=datetime.UTC))
    Judgment.objects.filter(annotation__in=annotations).update(rationale=AWKWARD, likert_a=2, likert_b=7)
    Judgment.objects.filter(annotation__annotator=users[1], objective__key="helpful").update(likert_a=5)
    return project, users


def _both(format: str, project, selection: Selection):
    fast, fast_labels = io.BytesIO(), []
    fast_rows = copy_export(format, project, selection, fast, on_labels=fast_labels.append)
    records = list(stream_records(project, selection))
    slow = io.BytesIO()
    slow_rows = WRITERS[format](records, slow)
    return (fast.getvalue(), fast_rows, fast_labels), (slow.getvalue(), slow_rows, [r.labels for r in records])


@pytest.mark.parametrize("format", ["jsonl", "csv", "parquet"])
@pytest.mark.parametrize(
    "filters",
    [
        {},
        {"min_annotations": 2},
        {"min_agreement": 0.6},
        {"include_imported": False},
        {"objectives": ("harmless",)},
        {"excluded": True},
    ],
)
def test_copy_export_matches_the_python_writers(awkward, format, filters):
    project, users = awkward
    excluded = frozenset({users[1].pk}) if filters.pop("excluded", False) else frozenset()
    selection = Selection(**{"objectives": OBJECTIVES, "excluded_annotators": excluded, **filters})
    fast, slow = _both(format, project, selection)
    assert fast[0] == slow[0]
    assert fast[1:] == slow[1:]
    assert fast[1] > 0


def test_copy_export_of_nothing_writes_no_rows(awkward):
    project, _ = awkward
    selection = Selection(objectives=OBJECTIVES, min_annotations=99)
    for format in ("jsonl", "csv", "parquet"):
        fast, slow = _both(format, project, selection)
        assert fast == slow
        assert fast[1] == 0


def test_copy_export_writes_the_mean_ratings_where_responses_were_rated(awkward):
    project, _ = awkward
    fast, slow = _both("jsonl", project, Selection(objectives=OBJECTIVES))
    ratings = [json.loads(line).get("ratings") for line in fast[0].decode().split("\n") if line]
    rated = [objective for line in ratings if line for objective in line.values()]
    assert rated and any(not float(side["a"] or 0).is_integer() for side in rated)
    assert fast[0] == slow[0]
