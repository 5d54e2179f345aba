"""A saved reward model on labeled pairs (any morm jsonl or native-format file): pairwise accuracy, and the
report of how far to trust it (`report.reward_model_report`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from .batching import label_tensors
from .config import RewardModelConfig
from .data import PreferencePair, select_trainable_pairs, split_pairs
from .embedding_cache import EmbeddingCache, embedding_namespace
from .loss import chosen_minus_rejected
from .model import RewardModel
from .report import DEFAULT_BINS, reward_model_report


def _side_rewards(
    model: RewardModel, pairs: Sequence[PreferencePair], batch_size: int, cache_dir: str | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """(rewards of the A sides, rewards of the B sides), each [pairs, objectives], unnormalized.

    A frozen model's embeddings come through the embedding cache in ``cache_dir``: its run cached the held-out
    texts already, so reporting on them costs no backbone pass (a retrain stays seconds).
    """
    texts = [model.scored_text(p.prompt, p.response_a) for p in pairs]
    texts += [model.scored_text(p.prompt, p.response_b) for p in pairs]
    if model.mode == "frozen" and cache_dir is not None:
        with EmbeddingCache(cache_dir, embedding_namespace(model), model.embed_texts) as cache:
            embeddings = cache.embed(texts).to(model.device)
        with torch.no_grad():
            rewards = model.heads_on_embeddings(embeddings).float().cpu()
    else:
        rewards = model.rewards_for_texts(texts, batch_size)
    return rewards[: len(pairs)], rewards[len(pairs) :]


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
    rewards_a, rewards_b = _side_rewards(model, pairs, batch_size)
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


def report_reward_model(
    model_dir: str | Path,
    pairs: Sequence[PreferencePair],
    *,
    device: str | None = None,
    batch_size: int = 32,
    bins: int = DEFAULT_BINS,
    cache_dir: str | None = None,
) -> dict:
    """`report.reward_model_report` of the saved model on ``pairs``, from its raw (unnormalized) rewards:
    σ(r_A − r_B) is the probability the model was trained to give. ``cache_dir``: a frozen model's embedding
    cache (its config's)."""
    model = RewardModel.from_pretrained(model_dir, device=device)
    rewards_a, rewards_b = _side_rewards(model, pairs, batch_size, cache_dir)
    return reward_model_report(pairs, rewards_a.tolist(), rewards_b.tolist(), model.objectives, bins=bins)


def score_pairs(
    model_dir: str | Path, pairs: Sequence[PreferencePair], *, device: str | torch.device | None = None,
    batch_size: int = 32,
) -> list[dict[str, dict[str, float]]]:
    """Each pair's raw rewards by the saved model, ``{objective: {"a": r_A, "b": r_B}}`` (labels are not read):
    σ(r_A − r_B) is the model's probability that A is preferred."""
    model = RewardModel.from_pretrained(model_dir, device=device)
    rewards_a, rewards_b = _side_rewards(model, pairs, batch_size)
    return [
        {objective: {"a": a, "b": b} for objective, a, b in zip(model.objectives, row_a, row_b, strict=True)}
        for row_a, row_b in zip(rewards_a.tolist(), rewards_b.tolist(), strict=True)
    ]


def held_out_pairs(config: RewardModelConfig, pairs: Sequence[PreferencePair]) -> list[PreferencePair]:
    """The pairs a run with ``config`` held out of training (its eval split, as the trainer splits): what its
    report is measured on."""
    used, _ = select_trainable_pairs(pairs, config.objectives, use_ratings=config.rating_loss_weight > 0)
    return split_pairs(used, config.eval_fraction, config.seed)[1]


def smallest_normalized_margins(model: RewardModel, pairs: Sequence[PreferencePair], *,
                                batch_size: int = 32) -> list[float]:
    """Per pair, ``min_o |r̂_o(A) − r̂_o(B)|``: how little the model tells the two responses apart on the
    objective it is least sure about, with each head's rewards divided by its held-out std (the normalization
    stats saved with the model), so heads on different scales compare. 0 means a coin toss on some objective."""
    rewards_a, rewards_b = _side_rewards(model, pairs, batch_size)
    margins = (model.normalize(rewards_a) - model.normalize(rewards_b)).abs()
    return margins.min(dim=1).values.tolist()
