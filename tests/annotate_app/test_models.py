"""Database constraints hold even when code bypasses the services."""

import pytest
from django.db import IntegrityError, transaction

from annotate_app.models import Annotation, Comparison, Judgment
from tests.factories import make_project, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def comparison():
    return make_project(comparisons=1).comparisons.get()


def _judgment(comparison, **fields):
    annotation = Annotation.objects.create(comparison=comparison, annotator=make_user())
    objective = comparison.project.objectives.first()
    return Judgment(annotation=annotation, objective=objective, **fields)


@pytest.mark.parametrize(
    "fields",
    [
        {"choice": "X", "strength": 1},
        {"choice": "tie", "strength": 2},
        {"choice": "A", "strength": 0},
        {"choice": "B", "strength": 4},
        {"choice": "A", "strength": 1, "likert_a": 8},
        {"choice": "A", "strength": 1, "likert_b": 0},
    ],
)
def test_invalid_judgments_are_refused_by_the_database(comparison, fields):
    judgment = _judgment(comparison, **fields)
    with pytest.raises(IntegrityError), transaction.atomic():
        judgment.save()


@pytest.mark.parametrize(
    "fields",
    [{"choice": "tie"}, {"choice": "A", "strength": 3}, {"choice": "B", "strength": 1, "likert_a": 7, "likert_b": 1},
     {"choice": "B"}],
)
def test_valid_judgments_are_stored(comparison, fields):
    _judgment(comparison, **fields).save()


def test_one_annotation_per_comparison_and_annotator(comparison):
    user = make_user()
    Annotation.objects.create(comparison=comparison, annotator=user)
    with pytest.raises(IntegrityError), transaction.atomic():
        Annotation.objects.create(comparison=comparison, annotator=user)


def test_annotation_needs_annotator_or_source(comparison):
    with pytest.raises(IntegrityError), transaction.atomic():
        Annotation.objects.create(comparison=comparison)


def test_one_judgment_per_objective(comparison):
    judgment = _judgment(comparison, choice="tie")
    judgment.save()
    with pytest.raises(IntegrityError), transaction.atomic():
        Judgment.objects.create(annotation=judgment.annotation, objective=judgment.objective, choice="A", strength=1)


def test_comparisons_unique_by_external_id_and_by_content(comparison):
    fields = dict(project=comparison.project, prompt="p", response_a="x", response_b="y")
    with pytest.raises(IntegrityError), transaction.atomic():
        Comparison.objects.create(external_id=comparison.external_id, content_hash="other", **fields)
    with pytest.raises(IntegrityError), transaction.atomic():
        Comparison.objects.create(external_id="new-id", content_hash=comparison.content_hash, **fields)
    # Comparisons without an external id only collide by content.
    Comparison.objects.create(external_id="", content_hash="h1", **fields)
    Comparison.objects.create(external_id="", content_hash="h2", **fields)


def test_same_external_id_is_fine_in_another_project(comparison):
    other = make_project()
    Comparison.objects.create(
        project=other, external_id=comparison.external_id, content_hash=comparison.content_hash,
        prompt="p", response_a="x", response_b="y",
    )


def test_the_models_and_their_migrations_agree():
    """A model change without its migration fails here, not on a user's `migrate`."""
    from django.core.management import call_command

    call_command("makemigrations", "--check", "--dry-run", verbosity=0)
