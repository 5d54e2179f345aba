"""Pairwise accuracy of a saved reward model on labeled pairs (any morm jsonl or native-format file)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from .batching import label_tensors
from .data import PreferencePair
from .loss import chosen_minus_rejected
from .model import RewardModel


def evaluate_reward_model(
    model_dir: str | Path,
    pairs: Sequence[PreferencePair],
    *,
    device: str | None = None,
    batch_size: int = 32,
) -> dict[str, dict[str, float | int | None]]:
    """``{objective: {"accuracy", "pairs", "ties"}}`` for each objective of the model.

    ``pairs`` counts the pairs labeled with a preference for the objective, ``accuracy`` is the share
    of them whose chosen response gets the higher reward (None when there are none), and ``ties``
    counts pairs labeled as a tie, which have no right answer and are not scored.
    """
    model = RewardModel.from_pretrained(model_dir, device=device)
    rewards_a = model.rewards_for_texts([model.scored_text(p.prompt, p.response_a) for p in pairs], batch_size)
    rewards_b = model.rewards_for_texts([model.scored_text(p.prompt, p.response_b) for p in pairs], batch_size)
    chosen_is_a, label_mask, _ = label_tensors(pairs, model.objectives, margin_scale=None)
    correct = (chosen_minus_rejected(rewards_a, rewards_b, chosen_is_a) > 0) & label_mask
    results = {}
    for column, objective in enumerate(model.objectives):
        labeled = int(label_mask[:, column].sum())
        ties = sum(1 for pair in pairs if pair.scores.get(objective) == 0)
        results[objective] = {
            "accuracy": int(correct[:, column].sum()) / labeled if labeled else None,
            "pairs": labeled,
            "ties": ties,
        }
    return results
