"""Marking comparisons as gold items."""

from django.core.exceptions import ValidationError
from django.db import transaction

from ..models import Choice, Comparison


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
    comparison.is_gold = True
    comparison.gold_expected = dict(expected)
    comparison.save(update_fields=["is_gold", "gold_expected"])
    return comparison


@transaction.atomic
def comparison_unmark_gold(*, comparison: Comparison) -> Comparison:
    """Turn a gold item back into an ordinary comparison; its judgments stay."""
    comparison.is_gold = False
    comparison.gold_expected = {}
    comparison.save(update_fields=["is_gold", "gold_expected"])
    return comparison
