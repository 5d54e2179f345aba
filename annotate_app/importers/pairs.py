"""Turning a chosen/rejected pair (TRL, HH) into a comparison's A/B sides."""

from __future__ import annotations

import hashlib

from .base import ImportFormatError, ParsedComparison, ParsedLabel, Prompt, canonical_json


def split_final_replies(
    chosen: list[dict], rejected: list[dict], *, chosen_field: str, rejected_field: str
) -> tuple[list[dict], str, str]:
    """Split two conversations into (shared messages, chosen reply, rejected reply).

    Each conversation must end with an assistant message, and everything before that last
    message must be identical: only the last reply is being compared.
    """
    for field, conversation in ((chosen_field, chosen), (rejected_field, rejected)):
        if conversation[-1]["role"] != "assistant":
            raise ImportFormatError(
                f"must end with an assistant reply, but the last message is from "
                f"'{conversation[-1]['role']}'",
                field=field,
            )
    if chosen[:-1] != rejected[:-1]:
        raise ImportFormatError(
            f"differs from '{chosen_field}' before the final assistant reply; the two "
            "conversations must be the same except for their last reply",
            field=rejected_field,
        )
    return chosen[:-1], chosen[-1]["content"], rejected[-1]["content"]


def preference_comparison(
    *, line: int, prompt: Prompt, chosen: str, rejected: str, objective: str | None, meta: dict
) -> ParsedComparison:
    """A comparison from a chosen/rejected pair, the chosen response put on side A or B.

    Chosen-first files would teach annotators and models that A wins, so sides are
    shuffled. The side comes from a hash of the content rather than a random draw so that
    importing the same file again gives the same orientation.
    """
    digest = hashlib.sha256(canonical_json([prompt, chosen, rejected]).encode("utf-8")).digest()
    chosen_is_a = digest[0] & 1 == 0
    response_a, response_b = (chosen, rejected) if chosen_is_a else (rejected, chosen)
    labels = () if objective is None else (ParsedLabel(objective, "A" if chosen_is_a else "B", None, "chosen"),)
    return ParsedComparison(
        line=line,
        external_id="",
        prompt=prompt,
        response_a=response_a,
        response_b=response_b,
        labels=labels,
        meta=meta,
    )
