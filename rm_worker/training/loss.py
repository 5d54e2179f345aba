"""The masked multi-objective Bradley-Terry loss and the pairwise metrics logged beside it.

All tensors are [B, O]: one row per pair, one column per objective (head order).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F


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
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """``(Σ_o w_o · L_o, {o: L_o})`` with ``L_o = mean over pairs labeled for o of -log σ(r_c - r_r - m)``.

    ``weights`` maps objective to weight in column order (its keys name the columns). An objective
    with no labeled pair in the batch has ``L_o = 0`` and sends no gradient: unlabeled entries are
    multiplied by 0, never guessed.
    """
    if rewards_a.shape[-1] != len(weights):
        raise ValueError(f"{rewards_a.shape[-1]} reward columns but {len(weights)} weights")
    difference = chosen_minus_rejected(rewards_a, rewards_b, chosen_is_a)
    if margins is not None:
        difference = difference - margins
    mask = mask.to(difference.dtype)
    # logsigmoid is finite for any finite input, so masked entries contribute exactly 0 (and no NaN).
    per_pair = -F.logsigmoid(difference) * mask
    per_objective = per_pair.sum(dim=0) / mask.sum(dim=0).clamp(min=1)
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
