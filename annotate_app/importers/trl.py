"""TRL preference datasets: {"prompt"?, "chosen", "rejected", "margin"?}.

Three shapes, as TRL's RewardTrainer accepts them:
- standard: prompt, chosen and rejected are strings;
- conversational: prompt, chosen and rejected are chat message lists (chosen and rejected
  usually hold just the assistant reply; any messages they share before their last reply
  are appended to the prompt);
- implicit prompt: no "prompt"; chosen and rejected are full conversations, their shared
  messages are the prompt and each one's final assistant message is its response.

The chosen response lands on side A or B by a content hash (see pairs.orient); with
--objective the preference becomes a label for that objective.
"""

from __future__ import annotations

from . import fields
from .base import ImportFormatError, ParsedComparison, Prompt
from .pairs import preference_comparison, split_final_replies


def parse_record(record: dict, *, line: int, objective: str | None) -> ParsedComparison:
    """Parse one TRL record, shuffling chosen/rejected onto sides A/B."""
    prompt, chosen, rejected = _prompt_and_replies(record)
    meta: dict = {"source_format": "trl"}
    if record.get("margin") is not None:
        meta["margin"] = fields.number(record["margin"], "margin")
    return preference_comparison(
        line=line, prompt=prompt, chosen=chosen, rejected=rejected, objective=objective, meta=meta
    )


def _prompt_and_replies(record: dict) -> tuple[Prompt, str, str]:
    chosen = fields.required(record, "chosen")
    rejected = fields.required(record, "rejected")
    if record.get("prompt") is None:
        if isinstance(chosen, str):
            raise ImportFormatError(
                "must be a list of chat messages when the record has no 'prompt' "
                "(for Anthropic HH transcripts use format 'hh')",
                field="chosen",
            )
        shared, chosen_reply, rejected_reply = _split(chosen, rejected)
        if not shared:
            raise ImportFormatError(
                "has no messages before the final assistant reply, so there is no prompt",
                field="chosen",
            )
        return shared, chosen_reply, rejected_reply
    prompt = fields.prompt(record["prompt"])
    if isinstance(prompt, str):
        for key, value in (("chosen", chosen), ("rejected", rejected)):
            if not isinstance(value, str):
                raise ImportFormatError(
                    f"must be a string like 'prompt', got {fields.describe(value)}", field=key
                )
        return prompt, chosen, rejected
    shared, chosen_reply, rejected_reply = _split(chosen, rejected)
    return prompt + shared, chosen_reply, rejected_reply


def _split(chosen: object, rejected: object) -> tuple[list[dict], str, str]:
    return split_final_replies(
        fields.messages(chosen, "chosen"),
        fields.messages(rejected, "rejected"),
        chosen_field="chosen",
        rejected_field="rejected",
    )
