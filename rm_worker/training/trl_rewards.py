"""A trained morm reward model as TRL ``GRPOTrainer`` reward functions, one per objective.

TRL calls each reward function as ``fn(prompts=..., completions=..., completion_ids=..., **columns)`` and
logs it under its ``__name__`` (``rewards/<name>/mean`` and ``rewards/<name>/std``), so one function per
objective gives one reward curve per objective, and ``GRPOConfig.reward_weights`` combines them. The
functions share one loaded model and the scores of the last batch: all of them together cost one
reward-model pass per batch.

Usage::

    from trl import GRPOConfig, GRPOTrainer
    from rm_worker.training.trl_rewards import grpo_reward_functions

    funcs, weights = grpo_reward_functions("media/reward_models/run-7", weights={"harmless": 0.6})
    trainer = GRPOTrainer(
        model="Qwen/Qwen2.5-0.5B-Instruct",
        reward_funcs=funcs,  # logged as rewards/morm_helpful/mean, rewards/morm_harmless/mean, ...
        args=GRPOConfig(output_dir="grpo-out", reward_weights=weights),
        train_dataset=dataset,  # a "prompt" column: strings or chat turns
    )
    trainer.train()
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from .model import RewardModel
from .model_io import METADATA_FILE
from .scalarization import resolve_weights


def _text(content: Any) -> str:
    """A message's content as text: a string, None (a tool call), or a list of typed parts (text kept)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, Sequence):
        return "".join(
            part if isinstance(part, str) else str(part.get("text") or "")
            for part in content
            if isinstance(part, str) or (isinstance(part, Mapping) and part.get("type", "text") == "text")
        )
    raise ValueError(f"unsupported message content {type(content).__name__}")


def _prompt(prompt: Any) -> str | list[dict[str, str]]:
    """A TRL prompt (a string, or a list of chat messages) as a morm prompt."""
    if isinstance(prompt, str):
        return prompt
    if isinstance(prompt, Sequence) and all(isinstance(turn, Mapping) for turn in prompt):
        return [{"role": str(turn.get("role", "user")), "content": _text(turn.get("content"))} for turn in prompt]
    raise ValueError(f"a prompt must be a string or a list of chat messages, got {type(prompt).__name__}")


def _completion(completion: Any) -> str:
    """A TRL completion as the response text: a string, or the assistant messages' content of a conversation."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, Sequence) and all(isinstance(turn, Mapping) for turn in completion):
        # Tool results between assistant turns are not the policy's words; the assistant turns are.
        return "\n".join(_text(turn.get("content")) for turn in completion if turn.get("role") == "assistant")
    raise ValueError(f"a completion must be a string or a list of chat messages, got {type(completion).__name__}")


class MormRewardScorer:
    """One loaded reward model that remembers the scores of the last (prompts, completions) batch."""

    def __init__(self, model: RewardModel, *, normalized: bool, batch_size: int):
        self.model = model
        self.normalized = normalized
        self.batch_size = batch_size
        self._lock = threading.Lock()
        self._last_key: tuple | None = None
        self._last_scores: list[dict[str, float]] = []

    def scores(self, prompts: Sequence[Any], completions: Sequence[Any]) -> list[dict[str, float]]:
        """``[{objective: reward}]`` per completion; the same batch again is answered from the cache."""
        if len(prompts) != len(completions):
            raise ValueError(f"{len(prompts)} prompts but {len(completions)} completions")
        morm_prompts = [_prompt(p) for p in prompts]
        responses = [_completion(c) for c in completions]
        key = tuple(
            (p if isinstance(p, str) else tuple((t["role"], t["content"]) for t in p), r)
            for p, r in zip(morm_prompts, responses)
        )
        with self._lock:
            if key != self._last_key:
                self._last_scores = self.model.score_batch(
                    morm_prompts, responses, normalized=self.normalized, batch_size=self.batch_size
                )
                self._last_key = key
            return self._last_scores


class ObjectiveReward:
    """A TRL reward function for one objective: ``fn(prompts, completions, **kwargs) -> list[float]``."""

    def __init__(self, scorer: MormRewardScorer, objective: str):
        self.scorer = scorer
        self.objective = objective
        self.__name__ = f"morm_{objective}"  # TRL's metric name: rewards/morm_<objective>/mean

    def __call__(self, prompts: Sequence[Any], completions: Sequence[Any], **kwargs: Any) -> list[float]:
        return [row[self.objective] for row in self.scorer.scores(prompts, completions)]

    def __repr__(self) -> str:
        return f"<morm reward {self.__name__}>"


def objective_weights(objectives: Sequence[str], weights: Mapping[str, float] | None = None) -> list[float]:
    """Per-objective weights in ``objectives`` order: the defaults, overridden by ``weights``."""
    weights = dict(weights or {})
    unknown = sorted(set(weights) - set(objectives))
    if unknown:
        raise ValueError(f"weights name objectives the model lacks: {', '.join(unknown)} (it has {list(objectives)})")
    for objective, weight in weights.items():
        if isinstance(weight, bool) or not isinstance(weight, int | float) or not math.isfinite(weight):
            raise ValueError(f"weight for {objective!r} must be a finite number, got {weight!r}")
    return list(resolve_weights(objectives, weights).values())


def grpo_reward_functions(
    model_dir: str | Path,
    *,
    weights: dict[str, float] | None = None,
    normalized: bool = True,
    batch_size: int = 32,
    device: str | None = None,
) -> tuple[list[Callable[..., list[float]]], list[float]]:
    """``(reward_funcs, reward_weights)`` for ``GRPOTrainer`` from a saved morm reward model folder.

    One function per objective, in the model's objective order, named ``morm_<objective>``; the model is
    loaded once (on ``device``, default CUDA if available) and scored once per batch for all of them.
    ``normalized`` scores with the (r - mean) / std stats saved with the model, so objectives are on one
    scale. ``weights`` overrides the defaults per objective (helpful 0.40, harmless 0.45, honest 0.15,
    any other objective 1.0); naming an objective the model lacks is an error. Pass the weights as
    ``GRPOConfig(reward_weights=...)``. See the module docstring for an example.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    directory = Path(model_dir)
    if not (directory / METADATA_FILE).is_file():
        raise FileNotFoundError(f"{directory}: not a saved morm reward model (no {METADATA_FILE})")
    model = RewardModel.from_pretrained(directory, device=device)
    reward_weights = objective_weights(model.objectives, weights)
    if normalized:
        missing = [o for o in model.objectives if o not in model.normalization]
        if missing:
            raise ValueError(
                f"{directory}: no normalization stats for {', '.join(missing)}; pass normalized=False for raw rewards"
            )
    scorer = MormRewardScorer(model, normalized=normalized, batch_size=batch_size)
    return [ObjectiveReward(scorer, objective) for objective in model.objectives], reward_weights
