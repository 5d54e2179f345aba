"""What both trainers share about a run: the callbacks they report through, and the files in ``output_dir``
(clearing an earlier run's outputs, checking that a checkpoint can be resumed, saving it atomically)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch


@dataclass
class Callbacks:
    """Optional hooks of `train_reward_model` and `train_ppo`; the loop calls them between steps, never from
    another thread.

    ``on_metrics(step, {"train/loss": .., "ppo/kl": .., ...})``; ``on_progress(step, total)``;
    ``should_stop()``: return True to stop cleanly between steps (cooperative cancel);
    ``on_resume(step)`` once, before training, when a resumed run restored its checkpoint of ``step``;
    ``on_stage(text)`` when the run enters a stage ("loading backbone", "tokenizing", "training", ...);
    ``on_samples(step, rows)`` (PPO only) every ``sample_every`` steps with rows
    ``{"prompt", "response", "rewards", "normalized", "combined"}``.
    """

    on_metrics: Callable[[int, dict[str, float]], None] | None = None
    on_progress: Callable[[int, int], None] | None = None
    should_stop: Callable[[], bool] | None = None
    on_resume: Callable[[int], None] | None = None
    on_samples: Callable[[int, list[dict[str, Any]]], None] | None = None
    on_stage: Callable[[str], None] | None = None

    def metrics(self, step: int, values: dict[str, float]) -> None:
        if self.on_metrics:
            self.on_metrics(step, values)

    def progress(self, step: int, total: int) -> None:
        if self.on_progress:
            self.on_progress(step, total)

    def stop_requested(self) -> bool:
        return bool(self.should_stop and self.should_stop())

    def resumed(self, step: int) -> None:
        if self.on_resume:
            self.on_resume(step)

    def samples(self, step: int, rows: list[dict[str, Any]]) -> None:
        if self.on_samples:
            self.on_samples(step, rows)

    def stage(self, text: str) -> None:
        if self.on_stage:
            self.on_stage(text)


def start_output_dir(output_dir: Path, *, resume: bool, checkpoint_file: Path, outputs: Iterable[str]) -> None:
    """Check that a resumed run has its checkpoint; a fresh run removes an earlier run's ``outputs`` folders,
    so it never mixes with their checkpoint or models."""
    if resume and not checkpoint_file.is_file():
        raise ValueError(f"resume=True but there is no checkpoint in {checkpoint_file.parent}")
    if not resume:
        for name in outputs:
            if (output_dir / name).exists():
                shutil.rmtree(output_dir / name)


def check_resumable(
    saved: Mapping[str, Any], current: Mapping[str, Any], resumable: Iterable[str], directory: Path | str
) -> None:
    """ValueError when the checkpoint's config ``saved`` differs from ``current`` outside the ``resumable`` fields."""
    resumable = frozenset(resumable)
    changed = sorted(key for key, value in saved.items() if key not in resumable and current.get(key) != value)
    if changed:
        raise ValueError(
            f"The checkpoint in {directory} was trained with different {', '.join(changed)}; "
            "resume with the same values or start a new run"
        )


def atomic_save(state: dict[str, Any], path: Path) -> None:
    """``torch.save`` through a temporary file, so a crash while writing leaves the previous file intact."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".tmp")
    torch.save(state, partial)
    os.replace(partial, path)
