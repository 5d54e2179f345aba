"""Telling an import file's format from its first record."""

from __future__ import annotations

from .base import ImportFormatError

_HH_STARTS = ("\n\nHuman:", "Human:")


def detect_format(record: dict) -> str:
    """Return the format name ("native", "trl", "hh" or "pku") that `record`'s keys match."""
    if "response_a" in record and "response_b" in record:
        return "native"
    if "response_0" in record and "response_1" in record:
        return "pku"
    if "chosen" in record and "rejected" in record:
        if "prompt" in record:
            return "trl"
        chosen = record["chosen"]
        if isinstance(chosen, str) and chosen.startswith(_HH_STARTS):
            return "hh"
        if isinstance(chosen, list):
            return "trl"
    keys = ", ".join(sorted(record)) or "none"
    raise ImportFormatError(
        f"cannot tell the file format from the first record (keys: {keys}); expected "
        "response_a/response_b (native), response_0/response_1 (pku), or chosen/rejected "
        "(trl, hh) — or name the format explicitly"
    )
