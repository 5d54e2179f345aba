"""Marking comparisons as gold items."""

from django.core.exceptions import ValidationError
from django.db import transaction

from ..models import Choice, Comparison
from .queue import counts_update


@transaction.atomic
def comparison_mark_gold(*, comparison: Comparison, expected: dict[str, str]) -> Comparison:
    """Make the comparison a gold item with the expected choice (canonical A/B) per objective."""
    objectives = set(comparison.project.objectives.values_list("key", flat=True))
    if not expected:
        raise ValidationError({"expected": "Give the expected choice for at least one objective."})
    unknown = sorted(set(expected) - objectives)
    if unknown:
        raise ValidationError({"expected": f"Unknown objective: {', '.join(unknown)}."})
    bad = sorted(key for key, choice in expected.items() if choice not in Choice.values)
    if bad:
        raise ValidationError({"expected": f"Choices must be A, B or tie (check {', '.join(bad)})."})
    comparison = Comparison.objects.select_for_update(of=("self",)).select_related("project").get(pk=comparison.pk)
    comparison.gold_expected = dict(expected)
    comparison.save(update_fields=["gold_expected"])
    counts_update(comparison=comparison, project=comparison.project, is_gold=True)
    return comparison


@transaction.atomic
def comparison_unmark_gold(*, comparison: Comparison) -> Comparison:
    """Turn a gold item back into an ordinary comparison; its judgments stay."""
    comparison = Comparison.objects.select_for_update(of=("self",)).select_related("project").get(pk=comparison.pk)
    comparison.gold_expected = {}
    comparison.save(update_fields=["gold_expected"])
    counts_update(comparison=comparison, project=comparison.project, is_gold=False)
    return comparison
