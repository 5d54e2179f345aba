"""Anthropic HH-RLHF: {"chosen": transcript, "rejected": transcript}.

A transcript is "\\n\\nHuman: ...\\n\\nAssistant: ..." turns. The turns both transcripts
share are the prompt (chat turns), and each transcript's final Assistant turn is its
response. The chosen response lands on side A or B by a content hash (see pairs.orient);
with --objective the preference becomes a label for that objective.

Real HH data has quirks handled here: a few replies contain a second "\\n\\nAssistant:"
marker (consecutive Assistant turns, joined into one reply because chat turns alternate),
some final replies are empty (kept: the empty reply is what annotators compared), and
"Human:" inside a reply without a preceding blank line is reply text, not a turn.
"""

from __future__ import annotations

import re

from . import fields
from .base import ImportFormatError, ParsedComparison
from .pairs import preference_comparison, split_final_replies

# A turn starts at the beginning of the transcript or after a blank line.
_TURN_MARKER = re.compile(r"(?:\A\s*|\n\n)(Human|Assistant):")
_ROLES = {"Human": "user", "Assistant": "assistant"}


def parse_record(record: dict, *, line: int, objective: str | None) -> ParsedComparison:
    """Parse one HH record, shuffling chosen/rejected onto sides A/B."""
    prompt, chosen, rejected = split_final_replies(
        _turns(record, "chosen"), _turns(record, "rejected"), chosen_field="chosen", rejected_field="rejected"
    )
    if not prompt:
        raise ImportFormatError("has no Human turn before the final Assistant turn", field="chosen")
    return preference_comparison(
        line=line, prompt=prompt, chosen=chosen, rejected=rejected, objective=objective, meta={"source_format": "hh"}
    )


def _turns(record: dict, key: str) -> list[dict]:
    transcript = fields.text(fields.required(record, key), key)
    preamble, *markers_and_texts = _TURN_MARKER.split(transcript)
    if preamble.strip() or not markers_and_texts:
        raise ImportFormatError(
            'must be a transcript of "\\n\\nHuman: ..." and "\\n\\nAssistant: ..." turns '
            "starting with the first turn",
            field=key,
        )
    turns: list[dict] = []
    for speaker, content in zip(markers_and_texts[::2], markers_and_texts[1::2]):
        role, content = _ROLES[speaker], content.strip()
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"] = "\n\n".join(part for part in (turns[-1]["content"], content) if part)
        else:
            turns.append({"role": role, "content": content})
    return turns
