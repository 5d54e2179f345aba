"""Scalarization: how per-objective rewards become the one reward PPO maximizes.

Three modes, all working on normalized rewards ``R̂_o`` (see `PPOConfig.normalize_rewards`):

- ``static``: ``Σ_o w_o R̂_o`` with fixed weights.
- ``schedule``: the same sum, the weights moving linearly from ``weights`` (first step) to ``weights_end``
  (last step).
- ``constrained``: maximize ``Σ_o w_o R̂_o`` subject to ``mean R̂_c >= threshold`` for one constraint
  objective ``c``, through the Lagrangian ``Σ_o w_o R̂_o + λ R̂_c``. The multiplier ``λ >= 0`` follows
  projected gradient ascent on the constraint violation after every step:
  ``λ <- max(0, λ + lagrange_lr · (threshold - mean R̂_c))``, so it grows while the constraint is violated
  and shrinks back to 0 once it holds.

No torch at module level: the web process validates configs with this module. ``combine`` takes tensors
(and returns one) or plain lists.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

SCALARIZATION_MODES = ("static", "schedule", "constrained")

# House weights for the standard objectives (the same as the GRPO reward functions'); any other weighs 1.0.
DEFAULT_OBJECTIVE_WEIGHTS = {"helpful": 0.40, "harmless": 0.45, "honest": 0.15}


def resolve_weights(objectives: Sequence[str], weights: Mapping[str, float] | None = None) -> dict[str, float]:
    """``{objective: w_o}`` in ``objectives`` order: ``weights`` where given, else the house default, else 1.0."""
    weights = weights or {}
    return {o: float(weights.get(o, DEFAULT_OBJECTIVE_WEIGHTS.get(o, 1.0))) for o in objectives}


class Scalarizer:
    """Turns ``[B, O]`` normalized rewards into ``[B]`` combined rewards, step by step.

    ``step`` is the 0-based index of the PPO step being run; `update` is called after each step with
    that step's mean normalized rewards and moves to the next step.
    """

    def __init__(
        self,
        objectives: Sequence[str],
        *,
        mode: str = "static",
        weights: Mapping[str, float] | None = None,
        weights_end: Mapping[str, float] | None = None,
        total_steps: int = 1,
        constraint_objective: str | None = None,
        constraint_threshold: float = 0.0,
        lagrange_lr: float = 0.1,
        lagrange_init: float = 0.0,
    ):
        if mode not in SCALARIZATION_MODES:
            raise ValueError(f"scalarization must be one of {', '.join(SCALARIZATION_MODES)}, got {mode!r}")
        if mode == "constrained" and constraint_objective not in objectives:
            raise ValueError(f"constraint_objective must be one of {list(objectives)}, got {constraint_objective!r}")
        self.objectives = list(objectives)
        self.mode = mode
        self.start_weights = resolve_weights(self.objectives, weights)
        # Objectives weights_end does not name keep their starting weight.
        self.end_weights = {o: float((weights_end or {}).get(o, w)) for o, w in self.start_weights.items()}
        self.total_steps = total_steps
        self.constraint_objective = constraint_objective
        self.constraint_threshold = float(constraint_threshold)
        self.lagrange_lr = float(lagrange_lr)
        self._multiplier = max(0.0, float(lagrange_init))
        self.step = 0

    @classmethod
    def from_config(cls, config: Any) -> Scalarizer:
        """The scalarizer a `PPOConfig` describes."""
        return cls(
            config.objectives,
            mode=config.scalarization,
            weights=config.weights,
            weights_end=config.weights_end,
            total_steps=config.steps,
            constraint_objective=config.constraint_objective,
            constraint_threshold=config.constraint_threshold,
            lagrange_lr=config.lagrange_lr,
            lagrange_init=config.lagrange_init,
        )

    @property
    def multiplier(self) -> float | None:
        """The Lagrange multiplier λ (``constrained`` mode), else None."""
        return self._multiplier if self.mode == "constrained" else None

    def weights(self, step: int | None = None) -> dict[str, float]:
        """``{objective: w_o}`` at ``step`` (default: the current step); λ is not included."""
        if self.mode != "schedule":
            return dict(self.start_weights)
        step = self.step if step is None else step
        fraction = min(1.0, max(0.0, step / max(1, self.total_steps - 1)))
        return {o: start + fraction * (self.end_weights[o] - start) for o, start in self.start_weights.items()}

    def coefficients(self, step: int | None = None) -> list[float]:
        """What each objective's normalized reward is multiplied by, in objective order (λ included)."""
        weights = self.weights(step)
        if self.mode == "constrained":
            weights[self.constraint_objective] += self._multiplier
        return [weights[o] for o in self.objectives]

    def combine(self, normalized_rewards: Any, step: int | None = None) -> Any:
        """``[B, O]`` normalized rewards (tensor, or list of rows) -> ``[B]`` combined rewards of the same kind."""
        coefficients = self.coefficients(step)
        if isinstance(normalized_rewards, (list, tuple)):
            return [sum(c * r for c, r in zip(coefficients, row, strict=True)) for row in normalized_rewards]
        if normalized_rewards.shape[-1] != len(coefficients):
            raise ValueError(f"expected {len(coefficients)} reward columns, got {normalized_rewards.shape[-1]}")
        return normalized_rewards @ normalized_rewards.new_tensor(coefficients)

    def update(self, step: int, mean_rewards: Mapping[str, float]) -> None:
        """After step ``step``: move λ by the constraint violation (constrained mode) and go to the next step."""
        if self.mode == "constrained":
            violation = self.constraint_threshold - float(mean_rewards[self.constraint_objective])
            self._multiplier = max(0.0, self._multiplier + self.lagrange_lr * violation)
        self.step = step + 1

    def state_dict(self) -> dict[str, float | int]:
        """What a checkpoint keeps: λ and the step."""
        return {"multiplier": self._multiplier, "step": self.step}

    def load_state_dict(self, state: Mapping[str, float | int]) -> None:
        self._multiplier = float(state["multiplier"])
        self.step = int(state["step"])
