"""Checks on single record fields, shared by the format parsers.

Each check raises ImportFormatError naming the field; parse_file adds the line number.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from .base import ImportFormatError, Prompt

ROLES = ("user", "assistant", "system")
# Limits of the database columns these values end up in, so a long value is a clear
# import error rather than a failed insert.
OBJECTIVE_MAX_LENGTH = 64
EXTERNAL_ID_MAX_LENGTH = 255
MODEL_NAME_MAX_LENGTH = 200

_SLUG = re.compile(r"[a-z0-9_-]+")


def describe(value: Any) -> str:
    """Name a JSON value for an error message: the value itself when short, else its type."""
    if isinstance(value, str):
        return json.dumps(value if len(value) <= 40 else value[:37] + "...", ensure_ascii=False)
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, (int, float)):
        return repr(value)
    return "an array" if isinstance(value, list) else "an object"


def required(record: dict, key: str) -> Any:
    """The value of a required key; JSON null counts as missing."""
    if record.get(key) is None:
        raise ImportFormatError("is required but missing", field=key)
    return record[key]


def text(value: Any, field: str) -> str:
    """A string (it may be empty: HH has assistant replies that are empty)."""
    if not isinstance(value, str):
        raise ImportFormatError(f"must be a string, got {describe(value)}", field=field)
    return value


def bounded_text(value: Any, field: str, *, max_length: int) -> str:
    """A string no longer than max_length."""
    if len(text(value, field)) > max_length:
        raise ImportFormatError(f"must be at most {max_length} characters", field=field)
    return value


def number(value: Any, field: str) -> float | int:
    """A finite JSON number; booleans are rejected although Python treats them as ints."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ImportFormatError(f"must be a number, got {describe(value)}", field=field)
    if not math.isfinite(value):
        raise ImportFormatError(f"must be a finite number, got {value}", field=field)
    return value


def messages(value: Any, field: str) -> list[dict]:
    """A non-empty list of chat messages, reduced to their role and content."""
    if not isinstance(value, list) or not value:
        raise ImportFormatError(
            f'must be a non-empty list of chat messages {{"role", "content"}}, got {describe(value)}',
            field=field,
        )
    result = []
    for index, message in enumerate(value):
        where = f"{field}[{index}]"
        if not isinstance(message, dict):
            raise ImportFormatError(
                f"must be an object with 'role' and 'content', got {describe(message)}", field=where
            )
        role = message.get("role")
        if role not in ROLES:
            raise ImportFormatError(
                f"must be one of {', '.join(ROLES)}, got {describe(role)}", field=f"{where}.role"
            )
        result.append({"role": role, "content": text(message.get("content"), f"{where}.content")})
    return result


def prompt(value: Any, field: str = "prompt") -> Prompt:
    """A non-blank string, or a non-empty list of chat messages."""
    if isinstance(value, list):
        return messages(value, field)
    if not isinstance(value, str):
        raise ImportFormatError(
            f"must be a string or a list of chat messages, got {describe(value)}", field=field
        )
    if not value.strip():
        raise ImportFormatError("must not be empty", field=field)
    return value


def objective_key(value: str, field: str) -> str:
    """An objective key: a lowercase slug, as objectives are named in a project."""
    if not _SLUG.fullmatch(value) or len(value) > OBJECTIVE_MAX_LENGTH:
        raise ImportFormatError(
            f"objective {describe(value)} is not a valid key: use lowercase letters, digits, "
            f"'_' and '-', at most {OBJECTIVE_MAX_LENGTH} characters",
            field=field,
        )
    return value
