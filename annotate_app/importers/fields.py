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
# Characters no text column stores alike on every database: NUL (PostgreSQL refuses it) and
# lone UTF-16 surrogates (not encodable as UTF-8). JSON escapes carry both: "\u0000", "\ud800".
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
_PLAIN_KEY = re.compile(r"[A-Za-z0-9_-]{1,40}")
# A JSON string or a bracket or colon: enough to follow the nesting of a valid JSON text.
_JSON_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}:]')


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


def storable(value: Any, *, max_depth: int) -> Any:
    """`value`, a parsed JSON value, if every database can store it as it was sent.

    Every string (object keys too) is checked for NUL and lone surrogates, every number for
    being finite (a literal like 1e400 parses as infinity), and arrays and objects for being
    nested at most `max_depth` levels, `value` itself being level 1. The first bad value in
    document order is named by its path, like "meta.tags[2]". The walk is iterative, since
    hostile nesting is what overflows a recursive one, and builds a path only for an error.
    """
    stack: list[tuple[Any, int, tuple | None]] = [(value, 1, None)]
    while stack:
        item, depth, where = stack.pop()
        if isinstance(item, str):
            if _UNSTORABLE.search(item):
                storable_text(item, _path(where))
        elif isinstance(item, float) and not math.isfinite(item):
            raise ImportFormatError(f"must be a finite number, got {item}", field=_path(where))
        elif isinstance(item, (dict, list)):
            if depth > max_depth:
                raise ImportFormatError(f"is nested more than {max_depth} levels deep", field=_path(where))
            keyed = item.items() if isinstance(item, dict) else enumerate(item)
            for key, child in reversed(list(keyed)):
                if isinstance(key, str) and _UNSTORABLE.search(key):
                    storable_text(key, _path(where), what="a key")
                stack.append((child, depth + 1, (where, key)))
    return value


def storable_text(value: str, field: str | None, *, what: str = "the text") -> str:
    """`value` if it holds neither NUL nor a lone surrogate; else an error saying which, and where."""
    match = _UNSTORABLE.search(value)
    if match is None:
        return value
    found = match.group()
    name, why = ("a NUL character", "") if found == "\x00" else ("a lone surrogate", ", which is not valid Unicode")
    raise ImportFormatError(
        f"{what} contains {name} (\\u{ord(found):04x}) at character {match.start() + 1}{why}; remove it",
        field=field,
    )


def _path(where: tuple | None) -> str | None:
    """"meta.tags[2]" from the (parent, key) chain that `storable` keeps; None for the value itself."""
    parts = []
    while where is not None:
        where, key = where
        if isinstance(key, int):
            parts.append(f"[{key}]")
        else:
            name = key if _PLAIN_KEY.fullmatch(key) else describe(key)
            parts.append(f".{name}" if where is not None else name)
    return "".join(reversed(parts)) or None


def too_deep_field(text: str, max_depth: int) -> str | None:
    """The top-level key of a JSON object text under which nesting passes `max_depth` levels.

    For a line nested too deep for the json module to parse at all (it raises RecursionError),
    so the error can still name a field.
    """
    depth, key, previous = 0, None, ""
    for match in _JSON_TOKEN.finditer(text):
        token = match.group()
        if token in ("[", "{"):
            depth += 1
            if depth > max_depth:
                return key
        elif token in ("]", "}"):
            depth -= 1
        elif token == ":" and depth == 1:
            key = _path((None, json.loads(previous)))
        previous = token
    return None
