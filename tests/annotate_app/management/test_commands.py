"""manage.py import_pairs and seed_demo."""

import gzip
import json

import pytest
from django.contrib.auth import authenticate, get_user_model
from django.core.management import CommandError, call_command
from django.test import RequestFactory

from annotate_app.models import Comparison, Judgment, Membership, Project
from annotate_app.selectors.queue import annotator_progress
from tests.factories import jsonl, make_project, native_line

pytestmark = pytest.mark.django_db


def test_import_pairs_prints_counts_and_is_idempotent(tmp_path, capsys):
    project = make_project()
    path = tmp_path / "pairs.jsonl"
    path.write_bytes(jsonl([native_line(i) for i in range(3)]))
    call_command("import_pairs", project.slug, str(path))
    assert "created 3, skipped 0" in capsys.readouterr().out
    call_command("import_pairs", project.slug, str(path), "--format", "native")
    assert "created 0, skipped 3" in capsys.readouterr().out


def test_import_pairs_hh_with_objective(tmp_path, capsys):
    project = make_project()
    path = tmp_path / "hh.jsonl.gz"
    record = {"chosen": "\n\nHuman: hi\n\nAssistant: hello there", "rejected": "\n\nHuman: hi\n\nAssistant: go away"}
    path.write_bytes(gzip.compress((json.dumps(record) + "\n").encode()))
    call_command("import_pairs", project.slug, str(path), "--objective", "harmless")
    assert "created 1, skipped 0, labels 1" in capsys.readouterr().out
    assert Comparison.objects.get().prompt == [{"role": "user", "content": "hi"}]
    assert project.import_batches.get().format == "hh"  # detected, not "auto"


@pytest.mark.parametrize("format", ["auto", "trl"])
def test_import_pairs_trl_without_objective_is_refused_naming_the_option(tmp_path, format):
    project = make_project()
    path = tmp_path / "trl.jsonl"
    path.write_bytes(jsonl([{"prompt": "p", "chosen": "good", "rejected": "bad"}]))
    with pytest.raises(CommandError, match=r"field 'objective'.*--objective.*Nothing was imported"):
        call_command("import_pairs", project.slug, str(path), "--format", format)
    assert not Comparison.objects.exists() and not project.import_batches.exists()


def test_import_pairs_bad_line_names_line_and_field_and_imports_nothing(tmp_path):
    project = make_project()
    path = tmp_path / "bad.jsonl"
    path.write_bytes(jsonl([native_line(1), native_line(2, labels={"helpful": 5})]))
    with pytest.raises(CommandError, match=r"line 2, field 'labels.helpful'.*Nothing was imported"):
        call_command("import_pairs", project.slug, str(path))
    assert not Comparison.objects.exists()


def test_import_pairs_unknown_project_or_file(tmp_path):
    with pytest.raises(CommandError, match="No project"):
        call_command("import_pairs", "nope", str(tmp_path / "x.jsonl"))
    with pytest.raises(CommandError, match="No such file"):
        call_command("import_pairs", make_project().slug, str(tmp_path / "missing.jsonl"))


def test_seed_demo_creates_project_users_and_tradeoff_comparisons(capsys):
    call_command("seed_demo")
    out = capsys.readouterr().out
    project = Project.objects.get(slug="demo")
    assert list(project.objectives.values_list("key", flat=True)) == ["helpful", "harmless", "honest"]
    assert project.comparisons.count() >= 30
    tradeoffs = set(project.comparisons.values_list("metadata__tradeoff", flat=True))
    assert {"helpful_vs_harmless", "needless_refusal", "hallucination", "sycophancy"} <= tradeoffs
    assert any(isinstance(c.prompt, list) and len(c.prompt) >= 3 for c in project.comparisons.all())
    # The authors' labels come along, so a researcher can train on the demo at once; they
    # are imported judgments and leave every annotation slot free.
    labelled = Judgment.objects.filter(annotation__comparison__project=project, annotation__source__isnull=False)
    assert labelled.count() == 3 * project.comparisons.count()
    annotator = get_user_model().objects.get(username="annotator")
    assert annotator_progress(project=project, user=annotator).remaining == 36
    for username, role in [("admin", "admin"), ("researcher", "researcher"), ("annotator", "annotator")]:
        assert f"{username} / morm-{username}" in out
        assert authenticate(RequestFactory().post("/accounts/login/"), username=username,
                            password=f"morm-{username}") is not None
        assert Membership.objects.get(project=project, user__username=username).role == role
    count = project.comparisons.count()
    call_command("seed_demo")  # re-running changes nothing
    assert Project.objects.filter(slug="demo").count() == 1
    assert project.comparisons.count() == count
