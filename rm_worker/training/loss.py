"""The masked multi-objective Bradley-Terry loss, the rating regression beside it, and their metrics.

Reward and label tensors are [B, O]: one row per pair, one column per objective (head order). Ratings are
[B, 2, O]: the A side's rating, then the B side's.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

# A Likert rating of 1..7 becomes a target of (rating - 4) / 3: the scale's middle at 0, its ends at ±1.
LIKERT_MIDDLE = 4.0
LIKERT_HALF_RANGE = 3.0


def chosen_minus_rejected(rewards_a: torch.Tensor, rewards_b: torch.Tensor, chosen_is_a: torch.Tensor) -> torch.Tensor:
    """``r_chosen - r_rejected`` per pair and objective."""
    return torch.where(chosen_is_a, rewards_a - rewards_b, rewards_b - rewards_a)


def bradley_terry_loss(
    rewards_a: torch.Tensor,
    rewards_b: torch.Tensor,
    chosen_is_a: torch.Tensor,
    mask: torch.Tensor,
    weights: Mapping[str, float],
    margins: torch.Tensor | None = None,
    labeled: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """``(Σ_o w_o · L_o, {o: L_o})`` with ``L_o = mean over pairs labeled for o of -log σ(r_c - r_r - m)``.

    ``weights`` maps objective to weight in column order (its keys name the columns). An objective
    with no labeled pair in the batch has ``L_o = 0`` and sends no gradient: unlabeled entries are
    multiplied by 0, never guessed. ``labeled`` [O] divides the sums instead of the batch's own label
    counts: a process of a multi-process run passes the whole batch's, so the shares' losses add up to it.
    """
    if rewards_a.shape[-1] != len(weights):
        raise ValueError(f"{rewards_a.shape[-1]} reward columns but {len(weights)} weights")
    difference = chosen_minus_rejected(rewards_a, rewards_b, chosen_is_a)
    if margins is not None:
        difference = difference - margins
    mask = mask.to(difference.dtype)
    # logsigmoid is finite for any finite input, so masked entries contribute exactly 0 (and no NaN).
    per_pair = -F.logsigmoid(difference) * mask
    counts = mask.sum(dim=0) if labeled is None else labeled.to(difference.dtype)
    per_objective = per_pair.sum(dim=0) / counts.clamp(min=1)
    weight_vector = torch.tensor(list(weights.values()), dtype=difference.dtype, device=difference.device)
    total = (per_objective * weight_vector).sum()
    return total, dict(zip(weights, per_objective.unbind()))


def pairwise_accuracy(
    rewards_a: torch.Tensor, rewards_b: torch.Tensor, chosen_is_a: torch.Tensor, mask: torch.Tensor
) -> torch.Tensor:
    """[O] share of labeled pairs whose chosen response scores strictly higher (NaN where none is labeled)."""
    correct = (chosen_minus_rejected(rewards_a, rewards_b, chosen_is_a) > 0) & mask
    return correct.sum(dim=0) / mask.sum(dim=0).to(rewards_a.dtype)


def mean_margin(
    rewards_a: torch.Tensor, rewards_b: torch.Tensor, chosen_is_a: torch.Tensor, mask: torch.Tensor
) -> torch.Tensor:
    """[O] mean of ``r_chosen - r_rejected`` over labeled pairs (NaN where none is labeled)."""
    difference = chosen_minus_rejected(rewards_a, rewards_b, chosen_is_a) * mask
    return difference.sum(dim=0) / mask.sum(dim=0).to(rewards_a.dtype)


class RatingMap(nn.Module):
    """Per head, the affine map from reward to rating target: ``a_o · r_o + b_o`` with ``a_o = exp(s_o) > 0``.

    Learned rather than fixed because Bradley-Terry rewards have no scale or zero of their own: the pairwise
    term sets them, and a fixed map would pull every head to the rating scale instead. The map predicts the
    rating from the reward, not the other way round: a learned map of the targets could shrink them to a
    constant that the heads match without learning anything. The scale stays positive so a better rating
    always means a higher reward, which is all a rating-only run has to rank by. It starts as the identity.
    """

    def __init__(self, objectives: int):
        super().__init__()
        self.log_scale = nn.Parameter(torch.zeros(objectives))
        self.offset = nn.Parameter(torch.zeros(objectives))

    def forward(self, rewards: torch.Tensor) -> torch.Tensor:
        """Predicted rating targets of ``rewards`` [..., O]."""
        return rewards * self.log_scale.exp() + self.offset


def rating_targets(ratings: torch.Tensor) -> torch.Tensor:
    """Likert ratings 1..7 on the [-1, 1] scale the heads regress: ``(rating - 4) / 3``."""
    return (ratings - LIKERT_MIDDLE) / LIKERT_HALF_RANGE


def rating_loss(
    rewards_a: torch.Tensor,
    rewards_b: torch.Tensor,
    ratings: torch.Tensor,
    rating_mask: torch.Tensor,
    weights: Mapping[str, float],
    rating_map: RatingMap,
    rated: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """``(Σ_o w_o · R_o, {o: R_o})`` with ``R_o = mean over the responses rated for o of (a_o·r_o + b_o - t)²``,
    ``t = rating_targets(rating)`` (see `RatingMap`).

    ``ratings`` and ``rating_mask`` are [B, 2, O] (A side, B side); a missing rating is masked, never guessed,
    and an objective without a rating in the batch has ``R_o = 0`` and no gradient. ``rated`` [O] divides the
    sums instead of the batch's own rating counts (see ``labeled`` in `bradley_terry_loss`).
    """
    if rewards_a.shape[-1] != len(weights):
        raise ValueError(f"{rewards_a.shape[-1]} reward columns but {len(weights)} weights")
    predicted = rating_map(torch.stack([rewards_a, rewards_b], dim=1))
    mask = rating_mask.to(predicted.dtype)
    # Missing ratings hold 0, so every entry is finite and a masked one contributes exactly 0.
    squared = (predicted - rating_targets(ratings.to(predicted.dtype))).square() * mask
    counts = mask.sum(dim=(0, 1)) if rated is None else rated.to(predicted.dtype)
    per_objective = squared.sum(dim=(0, 1)) / counts.clamp(min=1)
    weight_vector = torch.tensor(list(weights.values()), dtype=predicted.dtype, device=predicted.device)
    return (per_objective * weight_vector).sum(), dict(zip(weights, per_objective.unbind()))


def rating_accuracy(
    rewards_a: torch.Tensor, rewards_b: torch.Tensor, ratings: torch.Tensor, rating_mask: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """([O] share of pairs rated differently on both sides whose higher-rated response scores strictly higher
    (NaN where none is), [O] how many such pairs)."""
    counted = rating_mask.all(dim=1) & (ratings[:, 0] != ratings[:, 1])
    correct = ((rewards_a - rewards_b) * (ratings[:, 0] - ratings[:, 1]) > 0) & counted
    pairs = counted.sum(dim=0)
    return correct.sum(dim=0) / pairs.to(rewards_a.dtype), pairs
