"""Loss, accuracy and margin per objective over many batches, and the per-head reward statistics."""

from __future__ import annotations

import copy
from collections.abc import Mapping

import torch

from .batching import PairBatch
from .loss import RatingMap, bradley_terry_loss, mean_margin, pairwise_accuracy, rating_accuracy, rating_loss


class PairMetrics:
    """Collects the rewards of pairs batch by batch, then summarizes them as ``{"<prefix>/...": float}``.

    Keys: ``loss``, ``loss/<o>``, ``accuracy/<o>``, ``margin/<o>`` (r_chosen - r_rejected) for each
    objective with a labeled pair, and ``accuracy``, the mean accuracy over those objectives.
    Given a ``rating_map`` and a positive ``rating_weight``, rated pairs add ``rating_loss``,
    ``rating_loss/<o>`` and ``rating_accuracy/<o>`` (see `rating_accuracy`), ``loss`` becomes the training
    objective ``Bradley-Terry + rating_weight · rating_loss``, and where nothing is labeled with a preference
    (a rating-only split) ``accuracy`` is the mean rating accuracy.
    """

    def __init__(
        self, weights: Mapping[str, float], rating_map: RatingMap | None = None, rating_weight: float = 0.0
    ):
        self.weights = dict(weights)
        self.rating_map = rating_map if rating_weight > 0 else None
        self.rating_weight = rating_weight
        self._rewards_a: list[torch.Tensor] = []
        self._rewards_b: list[torch.Tensor] = []
        self._chosen_is_a: list[torch.Tensor] = []
        self._mask: list[torch.Tensor] = []
        self._margins: list[torch.Tensor] = []
        self._ratings: list[torch.Tensor] = []
        self._rating_mask: list[torch.Tensor] = []

    def add(self, rewards_a: torch.Tensor, rewards_b: torch.Tensor, batch: PairBatch) -> None:
        self._rewards_a.append(rewards_a.detach().float().cpu())
        self._rewards_b.append(rewards_b.detach().float().cpu())
        self._chosen_is_a.append(batch.chosen_is_a.cpu())
        self._mask.append(batch.label_mask.cpu())
        self._margins.append(batch.margins.cpu())
        if batch.ratings is not None:
            self._ratings.append(batch.ratings.float().cpu())
            self._rating_mask.append(batch.rating_mask.cpu())
        else:
            self._ratings.append(torch.zeros(rewards_a.shape[0], 2, rewards_a.shape[1]))
            self._rating_mask.append(torch.zeros(rewards_a.shape[0], 2, rewards_a.shape[1], dtype=torch.bool))

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
        rating_accuracies = self._rating_summary(prefix, rewards_a, rewards_b, summary)
        accuracies = accuracies or rating_accuracies
        if accuracies:
            summary[f"{prefix}/accuracy"] = sum(accuracies) / len(accuracies)
        return summary

    @torch.no_grad()
    def _rating_summary(
        self, prefix: str, rewards_a: torch.Tensor, rewards_b: torch.Tensor, summary: dict[str, float]
    ) -> list[float]:
        """Add the rating metrics to ``summary`` (and the rating term to its loss); returns the rating accuracy
        of each objective that has one."""
        ratings, rating_mask = torch.cat(self._ratings), torch.cat(self._rating_mask)
        if self.rating_map is None or not rating_mask.any():
            return []
        # A copy on the CPU, where the rewards were collected: the live map may sit on the GPU.
        rating_map = copy.deepcopy(self.rating_map).cpu()
        total, per_objective = rating_loss(rewards_a, rewards_b, ratings, rating_mask, self.weights, rating_map)
        summary[f"{prefix}/loss"] += self.rating_weight * total.item()
        summary[f"{prefix}/rating_loss"] = total.item()
        accuracy, counted = rating_accuracy(rewards_a, rewards_b, ratings, rating_mask)
        rated = rating_mask.sum(dim=(0, 1))
        accuracies = []
        for column, objective in enumerate(self.weights):
            if rated[column] > 0:
                summary[f"{prefix}/rating_loss/{objective}"] = per_objective[objective].item()
            if counted[column] > 0:
                summary[f"{prefix}/rating_accuracy/{objective}"] = accuracy[column].item()
                accuracies.append(accuracy[column].item())
        return accuracies

    def reward_stats(self) -> dict[str, dict[str, float]]:
        """``{objective: {"mean", "std"}}`` of each head's rewards over both responses of every pair.

        PPO divides by these to put heads on one scale before weighting them.
        """
        rewards = torch.cat(self._rewards_a + self._rewards_b)
        return {
            objective: {"mean": rewards[:, column].mean().item(), "std": rewards[:, column].std(correction=0).item()}
            for column, objective in enumerate(self.weights)
        }
