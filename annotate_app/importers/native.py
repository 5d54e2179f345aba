"""The native format: one comparison per line with its A/B sides as stored.

    {"id"?: str | int, "prompt": str | [{"role", "content"}], "response_a": str,
     "response_b": str, "model_a"?: str, "model_b"?: str,
     "labels"?: {"<objective>": label}, "ratings"?: {"<objective>": {"a"?: rating, "b"?: rating}},
     "meta"?: object}

A label is "A", "B" or "tie" (any case; strength unknown), a signed score, or an object
{"score": score, ...} whose other keys (an export's "n" and "agreement") are ignored.

Score sign convention: the scale reads left to right like the annotation form, so a
NEGATIVE score means response A is better, POSITIVE means B is better and 0 is a tie.
Scores lie in [-3, 3]; the strength of a non-zero score is |score| rounded half up and
clamped to 1..3, so an exported mean of 0.2 re-imports as "B slightly better".

A rating is a response's Likert rating on the objective, a number from 1 to 7 (an export's mean
over annotators included) or null; other keys of a rating (an export's "n_a", "n_b") are ignored.
A rated objective needs a label too: "tie" when neither response is preferred.

Sides are not shuffled (the file's orientation is the stored one), keys other than the
above (an export's "judgments") are ignored, and the --objective option does not apply
because labels name their objectives.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from . import fields
from .base import ImportFormatError, ParsedComparison, ParsedLabel

MAX_SCORE = 3
MIN_RATING, MAX_RATING = 1, 7
_CHOICE_NAMES = {"a": "A", "b": "B", "tie": "tie"}


def parse_record(record: dict, *, line: int, objective: str | None) -> ParsedComparison:
    """Parse one native record; `objective` is ignored (labels name their objectives)."""
    return ParsedComparison(
        line=line,
        external_id=_external_id(record.get("id")),
        prompt=fields.prompt(fields.required(record, "prompt")),
        response_a=fields.text(fields.required(record, "response_a"), "response_a"),
        response_b=fields.text(fields.required(record, "response_b"), "response_b"),
        model_a=_model_name(record, "model_a"),
        model_b=_model_name(record, "model_b"),
        labels=_with_ratings(_labels(record.get("labels")), record.get("ratings")),
        meta=_meta(record.get("meta")),
    )


def _external_id(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ImportFormatError(f"must be a string or an integer, got {fields.describe(value)}", field="id")
    return fields.bounded_text(str(value), "id", max_length=fields.EXTERNAL_ID_MAX_LENGTH)


def _model_name(record: dict, key: str) -> str:
    value = record.get(key)
    if value is None:
        return ""
    return fields.bounded_text(value, key, max_length=fields.MODEL_NAME_MAX_LENGTH)


def _meta(value: Any) -> dict:
    if value is None:
        value = {}
    if not isinstance(value, dict):
        raise ImportFormatError(f"must be an object, got {fields.describe(value)}", field="meta")
    # A re-imported export keeps the source format recorded when it was first imported.
    return {"source_format": "native", **value}


def _labels(value: Any) -> tuple[ParsedLabel, ...]:
    if value is None:
        return ()
    if not isinstance(value, dict):
        raise ImportFormatError(
            f'must be an object {{"<objective>": label}}, got {fields.describe(value)}', field="labels"
        )
    return tuple(_label(objective, label) for objective, label in value.items())


def _with_ratings(labels: tuple[ParsedLabel, ...], value: Any) -> tuple[ParsedLabel, ...]:
    """The labels with the Likert ratings of their objectives."""
    if value is None:
        return labels
    if not isinstance(value, dict):
        raise ImportFormatError(
            f'must be an object {{"<objective>": {{"a": rating, "b": rating}}}}, got {fields.describe(value)}',
            field="ratings",
        )
    by_objective = {label.objective: label for label in labels}
    for objective, sides in value.items():
        field = f"ratings.{objective}"
        if objective not in by_objective:
            raise ImportFormatError(
                f'rates an objective without a label: give "labels.{objective}" too ("tie" when neither '
                "response is preferred)",
                field=field,
            )
        if not isinstance(sides, dict):
            raise ImportFormatError(
                f'must be an object {{"a": rating, "b": rating}}, got {fields.describe(sides)}', field=field
            )
        by_objective[objective] = dataclasses.replace(
            by_objective[objective], likert_a=_rating(sides.get("a"), f"{field}.a"),
            likert_b=_rating(sides.get("b"), f"{field}.b"),
        )
    return tuple(by_objective.values())


def _rating(value: Any, field: str) -> float | None:
    if value is None:
        return None
    rating = fields.number(value, field)
    if not MIN_RATING <= rating <= MAX_RATING:
        raise ImportFormatError(f"must be a rating from {MIN_RATING} to {MAX_RATING}, got {rating}", field=field)
    return float(rating)


def _label(objective: str, value: Any) -> ParsedLabel:
    field = f"labels.{objective}"
    fields.objective_key(objective, field)
    if isinstance(value, str):
        choice = _CHOICE_NAMES.get(value.lower())
        if choice is None:
            raise ImportFormatError(f'must be "A", "B" or "tie", got {fields.describe(value)}', field=field)
        return ParsedLabel(objective, choice, None, field)
    if isinstance(value, dict):
        if "score" not in value:
            raise ImportFormatError('a label object needs a "score"', field=field)
        value = value["score"]
    elif isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ImportFormatError(
            f'must be "A", "B", "tie", a score from -3 to 3, or {{"score": ...}}, '
            f"got {fields.describe(value)}",
            field=field,
        )
    score = fields.number(value, field)
    if abs(score) > MAX_SCORE:
        raise ImportFormatError(
            f"score must be between -{MAX_SCORE} (A better) and {MAX_SCORE} (B better), got {score}",
            field=field,
        )
    if score == 0:
        return ParsedLabel(objective, "tie", None, field, score=0.0)
    # Half up rather than round(): Python rounds 2.5 to the even 2, which would weaken it.
    strength = min(MAX_SCORE, max(1, math.floor(abs(score) + 0.5)))
    return ParsedLabel(objective, "A" if score < 0 else "B", strength, field, score=float(score))
