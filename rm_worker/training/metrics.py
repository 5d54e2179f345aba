"""Loss, accuracy and margin per objective over many batches, and the per-head reward statistics."""

from __future__ import annotations

from collections.abc import Mapping

import torch

from .batching import PairBatch
from .loss import bradley_terry_loss, mean_margin, pairwise_accuracy


class PairMetrics:
    """Collects the rewards of pairs batch by batch, then summarizes them as ``{"<prefix>/...": float}``.

    Keys: ``loss``, ``loss/<o>``, ``accuracy/<o>``, ``margin/<o>`` (r_chosen - r_rejected) for each
    objective with a labeled pair, and ``accuracy``, the mean accuracy over those objectives.
    """

    def __init__(self, weights: Mapping[str, float]):
        self.weights = dict(weights)
        self._rewards_a: list[torch.Tensor] = []
        self._rewards_b: list[torch.Tensor] = []
        self._chosen_is_a: list[torch.Tensor] = []
        self._mask: list[torch.Tensor] = []
        self._margins: list[torch.Tensor] = []

    def add(self, rewards_a: torch.Tensor, rewards_b: torch.Tensor, batch: PairBatch) -> None:
        self._rewards_a.append(rewards_a.detach().float().cpu())
        self._rewards_b.append(rewards_b.detach().float().cpu())
        self._chosen_is_a.append(batch.chosen_is_a.cpu())
        self._mask.append(batch.label_mask.cpu())
        self._margins.append(batch.margins.cpu())

    def summary(self, prefix: str) -> dict[str, float]:
        if not self._rewards_a:
            return {}
        rewards_a, rewards_b = torch.cat(self._rewards_a), torch.cat(self._rewards_b)
        chosen_is_a, mask, margins = torch.cat(self._chosen_is_a), torch.cat(self._mask), torch.cat(self._margins)
        total, per_objective = bradley_terry_loss(rewards_a, rewards_b, chosen_is_a, mask, self.weights, margins)
        accuracy = pairwise_accuracy(rewards_a, rewards_b, chosen_is_a, mask)
        margin = mean_margin(rewards_a, rewards_b, chosen_is_a, mask)
        labeled = mask.sum(dim=0)
        summary = {f"{prefix}/loss": total.item()}
        for column, objective in enumerate(self.weights):
            if labeled[column] == 0:
                continue
            summary[f"{prefix}/loss/{objective}"] = per_objective[objective].item()
            summary[f"{prefix}/accuracy/{objective}"] = accuracy[column].item()
            summary[f"{prefix}/margin/{objective}"] = margin[column].item()
        accuracies = [accuracy[column].item() for column in range(len(self.weights)) if labeled[column] > 0]
        if accuracies:
            summary[f"{prefix}/accuracy"] = sum(accuracies) / len(accuracies)
        return summary

    def reward_stats(self) -> dict[str, dict[str, float]]:
        """``{objective: {"mean", "std"}}`` of each head's rewards over both responses of every pair.

        PPO divides by these to put heads on one scale before weighting them.
        """
        rewards = torch.cat(self._rewards_a + self._rewards_b)
        return {
            objective: {"mean": rewards[:, column].mean().item(), "std": rewards[:, column].std(correction=0).item()}
            for column, objective in enumerate(self.weights)
        }
