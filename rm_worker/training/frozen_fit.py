"""Frozen mode: each objective's linear head fitted to convergence on the cached embeddings.

Full batch, in float64 on the CPU: L-BFGS with a strong-Wolfe line search minimizes the head's data terms
(`data_loss`: the masked Bradley-Terry loss of the training pairs, plus the rating term where responses
are rated) plus ``l2/2 · ‖w‖²``, on embeddings
standardized with the training side's mean and scale. Unless the config fixes ``l2``, it is chosen per
objective by k-fold cross-validation on the training pairs (the held-out split is never read here) from
`L2_GRID`, then the head is refitted on every training pair. The standardization is folded into the
head's weight and bias, so the saved head scores raw embeddings exactly as it was fitted.

The problem is convex (strictly, with ``l2 > 0``): the fit has one answer, whatever it starts from, so no
learning rate, epochs or batch order are involved, and 10k pairs fit in seconds.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from functools import cached_property

import torch
import torch.nn.functional as F

from .batching import EncodedPairs
from .loss import rating_targets

# The penalties cross-validation chooses from, strongest first (each fit starts from the previous one's
# solution): half decades from 10 down to 1e-4.
L2_GRID = tuple(10.0 ** (exponent / 2) for exponent in range(2, -9, -1))
# L-BFGS iterations per fit: far more than a converging fit takes (tens); its tolerances stop it first.
MAX_ITERATIONS = 500
_DTYPE = torch.float64


@dataclass(frozen=True)
class HeadData:
    """What one objective's head is fitted to: both sides' embeddings of the training pairs and their labels.

    Row ``i`` of every field belongs to pair ``i``; `rows` takes the same rows of every field (a fold), so a
    field added here (another per-pair or per-response signal for `data_loss`) follows the folds unchanged.
    """

    embeddings_a: torch.Tensor  # [N, H]
    embeddings_b: torch.Tensor  # [N, H]
    chosen_is_a: torch.Tensor  # [N] bool
    label_mask: torch.Tensor  # [N] bool: labeled with a preference (ties and missing labels are not)
    margins: torch.Tensor  # [N]: 0 unless margins are used
    ratings: torch.Tensor | None = None  # [N, 2]: Likert ratings of the A and B sides, 0 where missing
    rating_mask: torch.Tensor | None = None  # [N, 2] bool: which are present; None: no ratings
    rating_weight: float = 0.0  # of the rating term in `data_loss` (``rating_loss_weight``); not per pair

    def __len__(self) -> int:
        return self.label_mask.shape[0]

    @property
    def labeled(self) -> int:
        """Pairs labeled with a preference for this objective."""
        return int(self.label_mask.sum())

    @property
    def trainable(self) -> int:
        """Pairs with something to fit: a preference, or (when the rating term counts) a rated response."""
        if not self.rating_weight or self.rating_mask is None:
            return self.labeled
        return int((self.label_mask | self.rating_mask.any(dim=1)).sum())

    def rows(self, selected: torch.Tensor) -> HeadData:
        """The pairs ``selected`` (a boolean mask or indices), every per-pair field alike."""
        return HeadData(**{field.name: _rows_of(getattr(self, field.name), selected) for field in fields(self)})

    @cached_property
    def preferences(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(``e_chosen - e_rejected`` [L, H], margins [L]) of the L labeled pairs: all the Bradley-Terry term reads."""
        sign = torch.where(self.chosen_is_a, 1.0, -1.0).to(self.embeddings_a.dtype)[:, None]
        differences = (self.embeddings_a - self.embeddings_b) * sign
        return differences[self.label_mask], self.margins[self.label_mask]

    @cached_property
    def rated(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(embeddings [R, H], `rating_targets` [R]) of the R rated responses: all the rating term reads."""
        if self.rating_mask is None:
            return self.embeddings_a[:0], self.margins[:0]
        rated_a, rated_b = self.rating_mask[:, 0], self.rating_mask[:, 1]
        embeddings = torch.cat([self.embeddings_a[rated_a], self.embeddings_b[rated_b]])
        ratings = torch.cat([self.ratings[rated_a, 0], self.ratings[rated_b, 1]])
        return embeddings, rating_targets(ratings.to(embeddings.dtype))

    def with_embeddings(self, embeddings_a: torch.Tensor, embeddings_b: torch.Tensor) -> HeadData:
        """The same pairs and labels with other embeddings (standardized ones)."""
        values = {field.name: getattr(self, field.name) for field in fields(self)}
        return HeadData(**{**values, "embeddings_a": embeddings_a, "embeddings_b": embeddings_b})


def _rows_of(value, selected: torch.Tensor):
    """A field's rows ``selected``: a per-pair tensor's rows; a field that is not per pair, as it is."""
    return value[selected] if isinstance(value, torch.Tensor) else value


def head_data(
    embeddings: tuple[torch.Tensor, torch.Tensor], pairs: EncodedPairs, column: int, rating_weight: float = 0.0
) -> HeadData:
    """The `HeadData` of the objective in ``column`` (head order) from a split's cached (A, B) embeddings, with
    its ratings when ``pairs`` has them and ``rating_weight`` is positive."""
    embeddings_a, embeddings_b = (side.detach().to("cpu", _DTYPE) for side in embeddings)
    rated = rating_weight > 0 and pairs.ratings is not None
    return HeadData(
        embeddings_a=embeddings_a,
        embeddings_b=embeddings_b,
        chosen_is_a=pairs.chosen_is_a[:, column].cpu(),
        label_mask=pairs.label_mask[:, column].cpu(),
        margins=pairs.margins[:, column].to("cpu", _DTYPE),
        ratings=pairs.ratings[:, :, column].to("cpu", _DTYPE) if rated else None,
        rating_mask=pairs.rating_mask[:, :, column].cpu() if rated else None,
        rating_weight=rating_weight if rated else 0.0,
    )


@dataclass(frozen=True)
class Head:
    """A linear head ``r(e) = w·e + b`` as plain tensors: weight [H] and bias [] (float64)."""

    weight: torch.Tensor
    bias: torch.Tensor

    @classmethod
    def zero(cls, hidden_size: int) -> Head:
        """The head the fit starts from without a nearby solution: the problem is convex, so where it starts
        only changes how long it takes."""
        return cls(torch.zeros(hidden_size, dtype=_DTYPE), torch.zeros((), dtype=_DTYPE))

    def rewards(self, embeddings: torch.Tensor) -> torch.Tensor:
        return embeddings @ self.weight + self.bias


def data_loss(head: Head, data: HeadData) -> torch.Tensor:
    """The terms ``head`` is fitted to on ``data``: the Bradley-Terry loss ``-log σ(r_c - r_r - m)``, mean over the
    labeled pairs (ties and missing labels masked, as in `bradley_terry_loss`; 0 without a labeled pair), plus
    ``rating_weight · mean((r - t)²)`` over the rated responses, ``t`` their `rating_targets` (0 without one).

    ``r_c - r_r = w·(e_c - e_r)``: the bias cancels, so the Bradley-Terry term reads one product over the labeled
    pairs' differences (`HeadData.preferences`), half the work of scoring both sides. The rating term is
    `rating_loss` with the head's own reward as the predicted target: its bias is the offset and the reward's
    scale the scale, rather than the learned positive scale of the stepped modes, so the fit stays convex and
    has one answer (a rating-only head is then ridge regression on the embeddings, ArmoRM's first stage).
    """
    loss = head.weight.sum() * 0
    differences, margins = data.preferences
    if len(margins):
        loss = loss + F.softplus(margins - differences @ head.weight).mean()
    embeddings, targets = data.rated
    if data.rating_weight and len(targets):
        loss = loss + data.rating_weight * (head.rewards(embeddings) - targets).square().mean()
    return loss


def side_rewards(head: Head, data: HeadData) -> tuple[torch.Tensor, torch.Tensor]:
    """The head's rewards [N] of the A sides and of the B sides."""
    return head.rewards(data.embeddings_a), head.rewards(data.embeddings_b)


def penalized_loss(head: Head, data: HeadData, l2: float) -> torch.Tensor:
    """`data_loss` plus ``l2/2 · ‖w‖²`` (the bias is not penalized): what `fit_head` minimizes."""
    return data_loss(head, data) + 0.5 * l2 * head.weight.square().sum()


@dataclass(frozen=True)
class Curvature:
    """The eigenvectors and eigenvalues of the data terms' Hessian in ``w`` at ``w = 0``: ``Σ/4`` with
    ``Σ = XᵀX / L`` the second moment of the labeled pairs' differences (Bradley-Terry), plus
    ``2 · rating_weight · EᵀE / R`` over the rated responses' embeddings (the rating term). Embedding
    dimensions are strongly correlated, which makes plain L-BFGS crawl; `fit_head` runs in the coordinates
    where that Hessian, penalty included, is the identity, and reaches the same optimum in a fraction of the
    steps."""

    vectors: torch.Tensor  # [H, H]
    values: torch.Tensor  # [H]

    @classmethod
    def of(cls, data: HeadData) -> Curvature:
        differences, _ = data.preferences
        hessian = differences.T @ differences / (4 * max(len(differences), 1))
        embeddings, targets = data.rated
        if data.rating_weight and len(targets):
            hessian = hessian + 2 * data.rating_weight * embeddings.T @ embeddings / len(targets)
        values, vectors = torch.linalg.eigh(hessian)
        return cls(vectors, values.clamp(min=0))

    def scales(self, l2: float) -> torch.Tensor:
        """[H] ``(λ_i + l2)^(-1/2)``: ``w = V · (scales ⊙ u)`` whitens the Hessian at 0 (flat directions,
        possible only with ``l2 = 0``, are bounded to keep the change of variables finite)."""
        curvature = self.values + l2
        return curvature.clamp(min=curvature.max().item() * 1e-12 + 1e-300).rsqrt()


def fit_head(data: HeadData, l2: float, start: Head | None = None, curvature: Curvature | None = None) -> Head:
    """The head minimizing `penalized_loss` on ``data``: full batch, L-BFGS with strong-Wolfe line search, in the
    whitened coordinates of ``curvature`` (default: that of ``data``; a fold may share its whole side's),
    starting from ``start`` (a nearby solution, e.g. at the previous penalty) or from zero."""
    curvature = curvature or Curvature.of(data)
    start = start or Head.zero(data.embeddings_a.shape[1])
    scales = curvature.scales(l2)
    whitened = (curvature.vectors.T @ start.weight / scales).requires_grad_()
    bias = start.bias.clone().requires_grad_()
    optimizer = torch.optim.LBFGS(
        [whitened, bias], lr=1, max_iter=MAX_ITERATIONS, history_size=20, line_search_fn="strong_wolfe"
    )

    def head() -> Head:
        return Head(curvature.vectors @ (scales * whitened), bias)

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = penalized_loss(head(), data, l2)
        loss.backward()
        return loss

    optimizer.step(closure)
    fitted = head()
    return Head(fitted.weight.detach(), fitted.bias.detach())


@dataclass(frozen=True)
class Standardization:
    """Per-feature mean and scale of the training side's embeddings (constant features keep scale 1)."""

    mean: torch.Tensor  # [H]
    scale: torch.Tensor  # [H]

    @classmethod
    def of(cls, data: HeadData) -> Standardization:
        embeddings = torch.cat([data.embeddings_a, data.embeddings_b])
        scale = embeddings.std(dim=0, correction=0)
        return cls(embeddings.mean(dim=0), torch.where(scale > 0, scale, torch.ones_like(scale)))

    def apply(self, data: HeadData) -> HeadData:
        return data.with_embeddings(
            (data.embeddings_a - self.mean) / self.scale, (data.embeddings_b - self.mean) / self.scale
        )

    def fold_into(self, head: Head) -> Head:
        """The head on raw embeddings: ``w·(e - mean)/scale + b`` as ``w'·e + b'``."""
        weight = head.weight / self.scale
        return Head(weight, head.bias - weight @ self.mean)


@dataclass(frozen=True)
class Validation:
    """Held-out fold scores of one penalty, summed over folds: the Bradley-Terry loss and the correctly ranked
    pairs, and the weighted rating term over the rated responses."""

    loss_sum: float = 0.0
    correct: int = 0
    pairs: int = 0
    rating_sum: float = 0.0  # rating_weight · Σ (r - t)²
    rated: int = 0

    def plus(self, head: Head, data: HeadData) -> Validation:
        """These scores plus those of ``head`` on the labeled pairs and rated responses of ``data``."""
        differences, margins = data.preferences
        embeddings, targets = data.rated
        with torch.no_grad():
            chosen_minus_rejected = differences @ head.weight
            loss_sum = F.softplus(margins - chosen_minus_rejected).sum().item()
            rating_sum = data.rating_weight * (head.rewards(embeddings) - targets).square().sum().item()
        return Validation(self.loss_sum + loss_sum, self.correct + int((chosen_minus_rejected > 0).sum()),
                          self.pairs + len(margins), self.rating_sum + rating_sum, self.rated + len(targets))

    @property
    def loss(self) -> float:
        """The mean held-out `data_loss`: Bradley-Terry per labeled pair plus the rating term per rated response."""
        return self.loss_sum / max(self.pairs, 1) + self.rating_sum / max(self.rated, 1)

    @property
    def accuracy(self) -> float | None:
        """Share of held-out labeled pairs ranked right; None when the folds held no labeled pair."""
        return self.correct / self.pairs if self.pairs else None


def fold_of_rows(rows: int, folds: int, seed: int) -> torch.Tensor:
    """[rows] fold numbers 0..folds-1: a seeded shuffle dealt round-robin, so folds differ in size by one."""
    order = torch.randperm(rows, generator=torch.Generator().manual_seed(seed))
    return order % folds


def cross_validate(data: HeadData, folds: int, seed: int) -> dict[float, Validation]:
    """``{l2: Validation}`` over `L2_GRID`: k-fold on ``data`` (standardized), each fold's heads fitted on the
    other folds, strongest penalty first, each starting from the previous penalty's solution."""
    fold_of = fold_of_rows(len(data), folds, seed)
    scores = {l2: Validation() for l2 in L2_GRID}
    curvature = Curvature.of(data)
    for fold in range(folds):
        fitting, validating = data.rows(fold_of != fold), data.rows(fold_of == fold)
        head = None
        for l2 in L2_GRID:
            head = fit_head(fitting, l2, start=head, curvature=curvature)
            scores[l2] = scores[l2].plus(head, validating)
    return scores


@dataclass(frozen=True)
class HeadFit:
    """One objective's fitted head, on raw embeddings, and how its penalty was chosen."""

    head: Head
    l2: float
    train_loss: float  # `data_loss` on the training pairs, without the penalty
    cv_loss: float | None = None  # mean held-out-fold loss at the chosen l2 (None: l2 was given, or too few pairs)
    cv_accuracy: float | None = None
    folds: int = 0

    def metrics(self, objective: str) -> dict[str, float]:
        """``fit/l2/<objective>`` and, when cross-validated, ``fit/cv_loss/..`` and ``fit/cv_accuracy/..``."""
        values = {"l2": self.l2, "cv_loss": self.cv_loss, "cv_accuracy": self.cv_accuracy}
        return {f"fit/{name}/{objective}": value for name, value in values.items() if value is not None}


def fit_frozen_head(data: HeadData, *, l2: float | None, folds: int, seed: int) -> HeadFit:
    """Fit one head on ``data`` (raw embeddings of the training pairs) with penalty ``l2``, or with ``l2=None``
    the `L2_GRID` penalty of least ``folds``-fold cross-validated loss (ties: the stronger). With fewer than
    two pairs to fit (labeled, or rated when ratings count) there is nothing to validate on: the strongest
    penalty of the grid is taken."""
    standardization = Standardization.of(data)
    standardized = standardization.apply(data)
    folds = min(folds, standardized.trainable)
    chosen = None
    if l2 is None and folds >= 2:
        scores = cross_validate(standardized, folds, seed)
        l2 = min(L2_GRID, key=lambda value: (scores[value].loss, -value))
        chosen = scores[l2]
    elif l2 is None:
        l2 = max(L2_GRID)
    head = fit_head(standardized, l2)
    return HeadFit(
        head=standardization.fold_into(head), l2=l2, train_loss=data_loss(head, standardized).item(),
        cv_loss=None if chosen is None else chosen.loss,
        cv_accuracy=None if chosen is None else chosen.accuracy,
        folds=folds if chosen is not None else 0,
    )
