"""Preference pairs: reading morm jsonl, turning prompts into text, the held-out split, and what is trainable.

Sign convention (as everywhere in morm): a NEGATIVE score means response A is preferred, POSITIVE
means B, 0 is a tie; ``|score|`` is the strength (1 slight, 2 clear, 3 strong).

Ratings: a line's optional ``"ratings": {"<objective>": {"a": rating, "b": rating}}`` gives each response's
Likert rating on that objective, 1..7 (an export writes the mean over the annotators who rated; either
side may be null or absent).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

Prompt = str | list[dict[str, str]]

MAX_SCORE = 3.0
# A bare "A"/"B" label (the native import format) carries no strength: it counts as slight.
_CHOICE_SCORES = {"a": -1.0, "b": 1.0, "tie": 0.0}
MIN_RATING, MAX_RATING = 1.0, 7.0


@dataclass(frozen=True)
class HumanJudgment:
    """One annotator's choice on one objective of a pair, from a morm export's ``"judgments"``."""

    annotator: str
    objective: str
    choice: str  # "A", "B" or "tie"


@dataclass(frozen=True)
class PreferencePair:
    """One comparison with its per-objective scores (only the objectives that are labeled) and, when the file
    carries them, the judgments of the annotators behind those scores."""

    id: str
    prompt: Prompt
    response_a: str
    response_b: str
    scores: dict[str, float]
    judgments: tuple[HumanJudgment, ...] = field(default=())
    # {objective: (rating of A, rating of B)}, 1..7, None for a side nobody rated; only objectives rated.
    ratings: dict[str, tuple[float | None, float | None]] = field(default_factory=dict)


@dataclass(frozen=True)
class ObjectiveCounts:
    """How one objective's labels were used."""

    pairs: int  # labeled with a preference: trained or evaluated on
    ties: int  # labeled as a tie: Bradley-Terry has no tie, so masked for this objective
    skipped: int  # no label for this objective: masked, never guessed
    rated: int = 0  # with a rating of at least one response for this objective (used when ratings are)


@dataclass(frozen=True)
class DataReport:
    """What happened to every input pair: nothing is dropped without being counted here."""

    total: int
    used: int
    excluded_all_ties: int  # every configured objective labeled is a tie, and no rating to learn from
    excluded_unlabeled: int  # no label and no rating for any configured objective
    objectives: dict[str, ObjectiveCounts]
    train_pairs: int = 0
    eval_pairs: int = 0
    truncated: int = 0  # used pairs with a side longer than max_length (its beginning cut, still used)

    def as_dict(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "used": self.used,
            "excluded_all_ties": self.excluded_all_ties,
            "excluded_unlabeled": self.excluded_unlabeled,
            "train_pairs": self.train_pairs,
            "eval_pairs": self.eval_pairs,
            "truncated": self.truncated,
            "objectives": {name: vars(counts) for name, counts in self.objectives.items()},
        }


def load_pairs(
    source: str | os.PathLike | Iterable[str], objectives: Sequence[str] | None = None
) -> list[PreferencePair]:
    """Read comparisons from a morm jsonl file (path, ``.gz`` too) or an iterable of lines.

    Labels may be export objects ``{"score": s, "n": .., "agreement": ..}``, plain scores, or
    ``"A"``/``"B"``/``"tie"``; ``"ratings"`` are read too (see the module docstring). Only ``objectives``
    are kept (all labels and ratings when None). Pairs are returned even when they carry no usable label:
    `select_trainable_pairs` counts those.
    Raises ValueError naming the line of the first malformed record.
    """
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rt", encoding="utf-8") as lines:
            return _parse_lines(lines, objectives)
    return _parse_lines(source, objectives)


def _parse_lines(lines: Iterable[str], objectives: Sequence[str] | None) -> list[PreferencePair]:
    wanted = None if objectives is None else set(objectives)
    pairs = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise ValueError(f"line {number}: not valid JSON ({error.msg})") from None
        try:
            pairs.append(_parse_record(record, wanted))
        except ValueError as error:
            raise ValueError(f"line {number}: {error}") from None
    return pairs


def _parse_record(record: Any, wanted: set[str] | None) -> PreferencePair:
    if not isinstance(record, dict):
        raise ValueError("a comparison must be a JSON object")
    for key in ("prompt", "response_a", "response_b"):
        if key not in record:
            raise ValueError(f"missing {key!r}")
    prompt = _prompt(record["prompt"])
    for key in ("response_a", "response_b"):
        if not isinstance(record[key], str):
            raise ValueError(f"{key!r} must be a string")
    labels = record.get("labels") or {}
    if not isinstance(labels, dict):
        raise ValueError("'labels' must be an object {objective: label}")
    scores = {
        objective: _score(objective, value)
        for objective, value in labels.items()
        if wanted is None or objective in wanted
    }
    pair_id = record.get("id")
    if pair_id is None:
        # Stable without an id: the split hashes it, so it must not depend on the line number.
        content = json.dumps([record["prompt"], record["response_a"], record["response_b"]], ensure_ascii=False)
        pair_id = "sha256-" + hashlib.sha256(content.encode("utf-8")).hexdigest()[:16]
    elif isinstance(pair_id, bool) or not isinstance(pair_id, (str, int)):
        raise ValueError("'id' must be a string or an integer")
    judgments = human_judgments(record.get("judgments"), wanted)
    ratings = _ratings(record.get("ratings"), wanted)
    return PreferencePair(
        str(pair_id), prompt, record["response_a"], record["response_b"], scores, judgments, ratings
    )


def _ratings(value: Any, wanted: set[str] | None) -> dict[str, tuple[float | None, float | None]]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError(''''ratings' must be an object {objective: {"a": rating, "b": rating}}''')
    ratings = {}
    for objective, sides in value.items():
        if wanted is not None and objective not in wanted:
            continue
        if not isinstance(sides, dict):
            raise ValueError(f'''ratings {objective!r} must be an object {{"a": rating, "b": rating}}''')
        rated = (_rating(objective, "a", sides.get("a")), _rating(objective, "b", sides.get("b")))
        if rated != (None, None):
            ratings[objective] = rated
    return ratings


def _rating(objective: str, side: str, value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not MIN_RATING <= value <= MAX_RATING:
        raise ValueError(f"rating {objective}.{side} must be a number from 1 to 7, got {value!r}")
    return float(value)


def human_judgments(value: Any, wanted: set[str] | None) -> tuple[HumanJudgment, ...]:
    """The annotators' judgments in an export line's ``"judgments"`` list, of the ``wanted`` objectives (all when
    None); imported labels (no annotator) are left out: they are not any one person's. ValueError when malformed."""
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise ValueError("'judgments' must be a list of objects")
    judgments = []
    for item in value:
        annotator, objective, choice = item.get("annotator"), item.get("objective"), item.get("choice")
        if annotator is None or (wanted is not None and objective not in wanted):
            continue
        if not isinstance(annotator, str) or not isinstance(objective, str) or choice not in ("A", "B", "tie"):
            raise ValueError('a judgment needs a string "annotator" and "objective" and a "choice" of A, B or tie')
        judgments.append(HumanJudgment(annotator, objective, choice))
    return tuple(judgments)


def _prompt(value: Any) -> Prompt:
    if isinstance(value, str):
        return value
    if isinstance(value, list) and value:
        for turn in value:
            if not (
                isinstance(turn, dict) and isinstance(turn.get("role"), str) and isinstance(turn.get("content"), str)
            ):
                raise ValueError("'prompt' chat turns must be objects with string 'role' and 'content'")
        return [{"role": turn["role"], "content": turn["content"]} for turn in value]
    raise ValueError("'prompt' must be a string or a non-empty list of chat turns")


def _score(objective: str, value: Any) -> float:
    if isinstance(value, dict):
        if "score" not in value:
            raise ValueError(f"label {objective!r} needs a 'score'")
        value = value["score"]
    if isinstance(value, str):
        if value.lower() not in _CHOICE_SCORES:
            raise ValueError(f'label {objective!r} must be "A", "B", "tie" or a score, got {value!r}')
        return _CHOICE_SCORES[value.lower()]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"label {objective!r} must be a score from -3 to 3, got {value!r}")
    if abs(value) > MAX_SCORE:
        raise ValueError(f"label {objective!r} score must be between -3 (A better) and 3 (B better), got {value}")
    return float(value)


_ROLE_NAMES = {"user": "User", "assistant": "Assistant", "system": "System"}


def format_prompt(prompt: Prompt) -> str:
    """Chat turns become ``"User: ...\\nAssistant: ...\\n"`` text; a plain string is returned as is."""
    if isinstance(prompt, str):
        return prompt
    return "".join(
        f"{_ROLE_NAMES.get(turn['role'], turn['role'].capitalize())}: {turn['content']}\n" for turn in prompt
    )


def pair_text(prompt: Prompt, response: str) -> str:
    """The text one side of a pair is scored on: the conversation, then the response as the assistant's turn."""
    context = format_prompt(prompt)
    if context and not context.endswith("\n"):
        context += "\n"
    return f"{context}Assistant: {response}"


class ScoredText(NamedTuple):
    """One response as the reward model reads it: its `pair_text`, whose last ``response_chars`` characters
    are the response (what ``response`` pooling averages over; the backbone still reads it all)."""

    text: str
    response_chars: int


def scored_text(prompt: Prompt, response: str) -> ScoredText:
    """The `ScoredText` of ``response`` answering ``prompt``."""
    return ScoredText(pair_text(prompt, response), len(response))


# Stands in for the response while the chat template renders, so the response is found by position
# even when its text also occurs in the template's own tokens or the conversation.
_RESPONSE_PLACEHOLDER = "\x00morm-response\x00"


def chat_scored_text(tokenizer, prompt: Prompt, response: str) -> ScoredText:
    """The `ScoredText` of ``response`` answering ``prompt`` in the tokenizer's own chat template.

    A plain-string prompt is one user turn. The response is the final assistant turn; its
    ``response_chars`` run from the response's first character to the end, so ``response`` pooling also
    covers the template's end-of-turn tokens (which a decoder reads after the whole response).
    """
    turns = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else list(prompt)
    rendered = tokenizer.apply_chat_template(
        turns + [{"role": "assistant", "content": _RESPONSE_PLACEHOLDER}], tokenize=False
    )
    before, placeholder, after = rendered.rpartition(_RESPONSE_PLACEHOLDER)
    if not placeholder:
        raise ValueError("the tokenizer's chat template dropped the assistant turn; it cannot score responses")
    return ScoredText(f"{before}{response}{after}", len(response) + len(after))


def select_trainable_pairs(
    pairs: Sequence[PreferencePair], objectives: Sequence[str], use_ratings: bool = False
) -> tuple[list[PreferencePair], DataReport]:
    """Keep pairs with a preference for at least one objective (or, with ``use_ratings``, a rating: a pair
    rated but tied or unlabeled still trains the rating term); count every pair that is not kept and why."""
    used, all_ties, unlabeled = [], 0, 0
    counts = {objective: {"pairs": 0, "ties": 0, "skipped": 0, "rated": 0} for objective in objectives}
    for pair in pairs:
        labeled = [objective for objective in objectives if objective in pair.scores]
        rated = [objective for objective in objectives if objective in pair.ratings] if use_ratings else []
        for objective in objectives:
            score = pair.scores.get(objective)
            key = "skipped" if score is None else "ties" if score == 0 else "pairs"
            counts[objective][key] += 1
            counts[objective]["rated"] += objective in rated
        if any(pair.scores[objective] != 0 for objective in labeled) or rated:
            used.append(pair)
        elif labeled:
            all_ties += 1
        else:
            unlabeled += 1
    report = DataReport(
        total=len(pairs),
        used=len(used),
        excluded_all_ties=all_ties,
        excluded_unlabeled=unlabeled,
        objectives={objective: ObjectiveCounts(**values) for objective, values in counts.items()},
    )
    return used, report


def is_held_out(pair_id: str, eval_fraction: float, seed: int) -> bool:
    """Whether a pair belongs to the held-out split: a hash of its id, so it never changes side as data grows."""
    digest = hashlib.sha256(f"{seed}:{pair_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < eval_fraction


def prompt_held_out(prompt: Prompt, eval_fraction: float, seed: int) -> bool:
    """Whether PPO with ``eval_fraction`` and ``seed`` holds ``prompt`` out for its before/after evaluation (a hash
    of the prompt, so a prompt never changes side as the prompt set grows)."""
    return is_held_out(json.dumps(prompt, ensure_ascii=False, sort_keys=True), eval_fraction, seed)


def split_pairs(
    pairs: Sequence[PreferencePair], eval_fraction: float, seed: int
) -> tuple[list[PreferencePair], list[PreferencePair]]:
    """(train, eval) by `is_held_out`; input order is kept within each side."""
    train, held_out = [], []
    for pair in pairs:
        (held_out if is_held_out(pair.id, eval_fraction, seed) else train).append(pair)
    return train, held_out
