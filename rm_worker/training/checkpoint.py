"""The resumable training checkpoint: weights, optimizer, scheduler, position in the data, RNG states, config.

Written at every evaluation (and on cancel) to ``<output_dir>/checkpoint/trainer_state.pt``, atomically,
so a crash while writing leaves the previous checkpoint intact.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .config import RewardModelConfig
from .model import RewardModel
from .run_io import atomic_save, check_resumable

CHECKPOINT_FILE = "trainer_state.pt"
# Fields a resumed run may change: they extend or re-route training without changing what is learned so far.
RESUMABLE_CHANGES = frozenset({"epochs", "max_steps", "eval_every", "log_every", "device", "devices", "cache_dir"})


@dataclass
class TrainingPosition:
    """Where a run stands: optimizer steps done, and the next step's place in the epoch's batch order."""

    step: int = 0
    epoch: int = 0
    epoch_step: int = 0
    best_step: int | None = None
    best_accuracy: float | None = None
    best_loss: float | None = None


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # seeds CUDA too


def rng_state() -> dict[str, Any]:
    name, keys, position, has_gauss, cached = np.random.get_state()
    state = {
        "python": random.getstate(),
        # Plain lists, so the checkpoint loads with torch.load(weights_only=True).
        "numpy": (name, keys.tolist(), position, has_gauss, cached),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    name, keys, position, has_gauss, cached = state["numpy"]
    np.random.set_state((name, np.array(keys, dtype=np.uint32), position, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _trained_state(model: RewardModel) -> dict[str, torch.Tensor]:
    # A frozen backbone never changes: it is reloaded from its folder, not copied into every checkpoint.
    return {
        name: tensor
        for name, tensor in model.state_dict().items()
        if not (model.mode == "frozen" and name.startswith("backbones."))
    }


def save_checkpoint(
    directory: str | Path,
    *,
    model: RewardModel,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    config: RewardModelConfig,
    position: TrainingPosition,
) -> None:
    state = {
        "model": _trained_state(model),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "config": config.to_dict(),
        "position": vars(position),
        "rng": rng_state(),
    }
    atomic_save(state, Path(directory) / CHECKPOINT_FILE)


def load_checkpoint(
    directory: str | Path,
    *,
    model: RewardModel,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    config: RewardModelConfig,
) -> TrainingPosition:
    """Restore a run in place (weights, optimizer, scheduler, RNG); returns where it stood.

    Raises ValueError when the checkpoint was trained with a config that differs in a field
    outside `RESUMABLE_CHANGES`.
    """
    state = torch.load(Path(directory) / CHECKPOINT_FILE, map_location=model.device, weights_only=True)
    check_resumable(state["config"], config.to_dict(), RESUMABLE_CHANGES, directory)
    missing, unexpected = model.load_state_dict(state["model"], strict=False)
    if unexpected or any(not (model.mode == "frozen" and name.startswith("backbones.")) for name in missing):
        raise ValueError(
            f"The checkpoint in {directory} does not match the model (missing {missing}, unexpected {unexpected})"
        )
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    restore_rng_state(state["rng"])
    return TrainingPosition(**state["position"])
