"""comparison_import: all or nothing, idempotent, labels with a source, real HH data."""

import gzip
import io
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from annotate_app.importers import ImportFormatError
from annotate_app.models import Annotation, Comparison, Judgment
from annotate_app.services.imports import UploadTooLarge, comparison_import, comparison_import_upload
from tests.conftest import shared_data_file
from tests.factories import import_lines, jsonl, make_project, native_line

pytestmark = pytest.mark.django_db


def test_native_file_creates_comparisons_and_labelled_judgments_with_a_source():
    project = make_project()
    batch = import_lines(
        project,
        [native_line(1, labels={"helpful": "A", "harmless": 2, "honest": {"score": 0}}), native_line(2)],
    )
    assert (batch.created_count, batch.skipped_count, batch.label_count) == (2, 0, 3)
    annotation = Annotation.objects.get()
    assert annotation.source == batch and annotation.annotator is None
    judgments = {j.objective.key: (j.choice, j.strength) for j in annotation.judgments.all()}
    assert judgments == {"helpful": ("A", None), "harmless": ("B", 2), "honest": ("tie", None)}
    assert Comparison.objects.get(external_id="c1").prompt == [{"role": "user", "content": "Question number 1?"}]


def test_reimporting_the_same_file_creates_nothing():
    project = make_project()
    lines = [native_line(i, labels={"helpful": -1}) for i in range(5)]
    import_lines(project, lines)
    again = import_lines(project, lines)
    assert (again.created_count, again.skipped_count, again.label_count) == (0, 5, 0)
    assert project.comparisons.count() == 5 and Judgment.objects.count() == 5


def test_same_content_under_another_id_or_swapped_sides_is_skipped():
    project = make_project()
    import_lines(project, [native_line(1)])
    swapped = native_line(1, id="other", response_a="Second answer to 1.", response_b="First answer to 1.")
    assert import_lines(project, [swapped]).created_count == 0


def test_a_bad_line_imports_nothing_and_names_line_and_field():
    project = make_project()
    lines = [native_line(1), native_line(2), native_line(3, response_b=7)]
    with pytest.raises(ImportFormatError, match=r"line 3, field 'response_b'"):
        import_lines(project, lines)
    assert not Comparison.objects.exists()


def test_a_label_for_an_objective_the_project_lacks_is_rejected():
    project = make_project()
    with pytest.raises(ImportFormatError, match=r"line 1, field 'labels.style': unknown objective"):
        import_lines(project, [native_line(1, labels={"style": "A"})])
    assert not Comparison.objects.exists()


def test_an_unknown_objective_option_is_rejected():
    with pytest.raises(ImportFormatError, match="field 'objective'"):
        import_lines(make_project(), [native_line(1)], objective="style")


def test_objective_option_keeps_only_that_objectives_labels():
    project = make_project()
    batch = import_lines(project, [native_line(1, labels={"helpful": "A", "harmless": "B"})], objective="harmless")
    assert batch.label_count == 1
    assert Judgment.objects.get().objective.key == "harmless"


def test_trl_with_objective_labels_the_chosen_side():
    project = make_project()
    lines = [{"prompt": f"Q{i}", "chosen": f"good {i}", "rejected": f"bad {i}"} for i in range(20)]
    import_lines(project, lines, objective="helpful")
    for comparison in project.comparisons.all():
        judgment = Judgment.objects.get(annotation__comparison=comparison)
        chosen_side = "A" if comparison.response_a.startswith("good") else "B"
        assert judgment.choice == chosen_side
    sides = {c.response_a.startswith("good") for c in project.comparisons.all()}
    assert sides == {True, False}  # sides are shuffled on import


def test_pku_labels_helpful_and_harmless():
    project = make_project()
    record = {"prompt": "p", "response_0": "r0", "response_1": "r1", "better_response_id": 1, "safer_response_id": 0}
    import_lines(project, [record], format="pku")
    labels = {j.objective.key: j.choice for j in Judgment.objects.all()}
    assert labels == {"helpful": "B", "harmless": "A"}


def test_gzipped_upload_within_the_limit_imports(settings):
    settings.MORM_MAX_UPLOAD_BYTES = 10_000
    upload = SimpleUploadedFile("pairs.jsonl.gz", gzip.compress(jsonl([native_line(1)])))
    batch = comparison_import_upload(project=make_project(), upload=upload)
    assert (batch.created_count, batch.filename) == (1, "pairs.jsonl.gz")


def test_upload_over_the_size_limit_is_refused(settings):
    settings.MORM_MAX_UPLOAD_BYTES = 100
    upload = SimpleUploadedFile("big.jsonl", jsonl([native_line(i) for i in range(5)]))
    with pytest.raises(UploadTooLarge, match="limited to"):
        comparison_import_upload(project=make_project(), upload=upload)
    assert not Comparison.objects.exists()


def test_real_hh_harmless_file_imports_1849_chat_comparisons_with_harmless_labels():
    path = shared_data_file("hh_harmless_dev.jsonl.gz")
    project = make_project()
    with path.open("rb") as fileobj:
        batch = comparison_import(project=project, fileobj=fileobj, format="hh", objective="harmless")
    assert (batch.created_count, batch.label_count) == (1849, 1849)
    comparisons = list(project.comparisons.all())
    assert len(comparisons) == 1849
    assert all(isinstance(c.prompt, list) and c.prompt[-1]["role"] == "user" for c in comparisons)
    judgments = Judgment.objects.filter(annotation__source=batch)
    assert set(judgments.values_list("objective__key", flat=True)) == {"harmless"}
    assert set(judgments.values_list("choice", flat=True)) == {"A", "B"}
    # The final assistant turns are the responses: the chosen one is the end of "chosen".
    first = json.loads(gzip.open(path, "rt").readline())
    comparison = project.comparisons.get(pk=min(c.pk for c in comparisons))
    judgment = judgments.get(annotation__comparison=comparison)
    chosen_text = comparison.response_a if judgment.choice == "A" else comparison.response_b
    assert first["chosen"].rstrip().endswith(chosen_text.strip()[-200:])
    with path.open("rb") as fileobj:
        again = comparison_import(project=project, fileobj=fileobj, format="auto", objective="harmless")
    assert (again.created_count, again.skipped_count) == (0, 1849)


def test_empty_file_is_rejected():
    with pytest.raises(ImportFormatError, match="no records"):
        comparison_import(project=make_project(), fileobj=io.BytesIO(b"\n\n"))


def test_a_bad_line_after_chunks_were_written_still_imports_nothing(monkeypatch):
    monkeypatch.setattr("annotate_app.services.imports.IMPORT_CHUNK_LINES", 2)
    project = make_project()
    lines = [native_line(i, labels={"helpful": "A"}) for i in range(5)] + [{"id": "bad", "prompt": "x"}]
    with pytest.raises(ImportFormatError) as error:
        import_lines(project, lines)
    assert error.value.line == 6
    assert not Comparison.objects.filter(project=project).exists() and not Annotation.objects.exists()
    assert (project.comparison_count, project.import_batches.count()) == (0, 0)


def test_duplicates_in_later_chunks_of_one_file_are_skipped_with_their_labels(monkeypatch):
    monkeypatch.setattr("annotate_app.services.imports.IMPORT_CHUNK_LINES", 2)
    project = make_project()
    lines = [native_line(1), native_line(2), native_line(3), native_line(1, id="c1-again", labels={"helpful": "A"}),
             native_line(9, response_a="Second answer to 2.", response_b="First answer to 2.",
                         prompt=[{"role": "user", "content": "Question number 2?"}])]
    batch = import_lines(project, lines)
    assert (batch.created_count, batch.skipped_count, batch.label_count) == (3, 2, 0)
    project.refresh_from_db()
    assert (project.comparison_count, project.open_count) == (3, 3)
