"""What an importer produces from one file line, and the error a user sees when a line is wrong.

Nothing in this package imports Django: it turns bytes into plain dataclasses, and the
import service decides what to store.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
from typing import Any

FORMATS = ("native", "trl", "hh", "pku")
CHOICES = ("A", "B", "tie")
# Arrays and objects nested deeper than this (a line's object is level 1) are refused, by
# default: no preference record needs more, and deeper values are how JSON overflows stacks.
MAX_JSON_DEPTH = 20

Prompt = str | list[dict]


class ImportFormatError(ValueError):
    """A problem in an import file that the user can fix; says where (line, field) and what."""

    def __init__(self, message: str, *, line: int | None = None, field: str | None = None) -> None:
        self.message = message
        self.line = line
        self.field = field
        where = []
        if line is not None:
            where.append(f"line {line}")
        if field is not None:
            where.append(f"field '{field}'")
        super().__init__(f"{', '.join(where)}: {message}" if where else message)


class FileTooLarge(ImportFormatError):
    """The file, decompressed, is over the size its importer accepts."""


def canonical_json(value: Any) -> str:
    """JSON text that is the same for equal values, whatever the key order: the input to hashes."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


@dataclasses.dataclass(frozen=True)
class ParsedLabel:
    """A preference read from the file, oriented to the comparison's A/B sides."""

    objective: str
    choice: str
    strength: int | None
    field: str
    # The exact signed score when the file gave a number (an export's mean, say), so that
    # re-importing an export keeps its labels; None when the file only named a side.
    score: float | None = None
    # Likert ratings of each response on this objective, 1..7 (a mean is kept as it is); None: not rated.
    likert_a: float | None = None
    likert_b: float | None = None


@dataclasses.dataclass(frozen=True)
class ParsedComparison:
    """One comparison read from one line; response_a/response_b are the stored orientation."""

    line: int
    external_id: str
    prompt: Prompt
    response_a: str
    response_b: str
    model_a: str = ""
    model_b: str = ""
    labels: tuple[ParsedLabel, ...] = ()
    meta: dict = dataclasses.field(default_factory=dict)

    @functools.cached_property
    def content_hash(self) -> str:
        """sha256 of the prompt and the unordered pair of responses (computed once per line).

        The responses are sorted so that the same pair imported with its sides swapped
        (another shuffle, another file) is recognised as the same comparison.
        """
        payload = canonical_json([self.prompt, sorted([self.response_a, self.response_b])])
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()
