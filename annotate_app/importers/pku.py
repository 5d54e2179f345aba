"""PKU-SafeRLHF: {"prompt", "response_0", "response_1", "better_response_id",
"safer_response_id", ...}.

response_0 is side A and response_1 side B (no shuffle: the dataset's order is not
chosen-first). "helpful" comes from better_response_id and "harmless" from
safer_response_id; every other key (is_response_0_safe, severity levels, sources, ...)
is kept in meta. The --objective option does not apply.
"""

from __future__ import annotations

from typing import Any

from . import fields
from .base import ImportFormatError, ParsedComparison, ParsedLabel

_LABEL_SOURCES = {"helpful": "better_response_id", "harmless": "safer_response_id"}
_PARSED_KEYS = {"prompt", "response_0", "response_1", *_LABEL_SOURCES.values()}


def parse_record(record: dict, *, line: int, objective: str | None) -> ParsedComparison:
    """Parse one PKU-SafeRLHF record; `objective` is ignored."""
    prompt = fields.text(fields.required(record, "prompt"), "prompt")
    return ParsedComparison(
        line=line,
        external_id="",
        prompt=fields.prompt(prompt),
        response_a=fields.text(fields.required(record, "response_0"), "response_0"),
        response_b=fields.text(fields.required(record, "response_1"), "response_1"),
        labels=tuple(
            ParsedLabel(objective_key, _side(record, key), None, key)
            for objective_key, key in _LABEL_SOURCES.items()
        ),
        meta={"source_format": "pku", **{k: v for k, v in record.items() if k not in _PARSED_KEYS}},
    )


def _side(record: dict, key: str) -> str:
    value: Any = fields.required(record, key)
    if isinstance(value, bool) or value not in (0, 1):
        raise ImportFormatError(
            f"must be 0 (response_0 is better) or 1 (response_1 is better), got {fields.describe(value)}",
            field=key,
        )
    return "A" if value == 0 else "B"
