"""The reward-model training loop: config and pairs in, metrics (through callbacks) and a saved model out.

Layout of ``output_dir``::

    checkpoint/   resumable state, written at every evaluation and on cancel
    best/         the model at the step with the best mean eval accuracy (with its normalization stats)
    model/        the final export: a copy of best/ (or the last step when nothing is held out)
"""

from __future__ import annotations

import logging
import math
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from torch import nn
from transformers import get_linear_schedule_with_warmup

from .batching import EncodedPairs, PairBatch, bucketed_batches, encode_pairs, pad_token_id
from .checkpoint import CHECKPOINT_FILE, TrainingPosition, load_checkpoint, save_checkpoint, seed_everything
from .config import RewardModelConfig, resolve_device
from .data import DataReport, PreferencePair, select_trainable_pairs, split_pairs
from .embedding_cache import EmbeddingCache
from .loss import bradley_terry_loss
from .metrics import PairMetrics
from .model import RewardModel
from .run_io import Callbacks, start_output_dir

logger = logging.getLogger(__name__)

CHECKPOINT_DIR = "checkpoint"
BEST_DIR = "best"
MODEL_DIR = "model"

BackboneFactory = Callable[[RewardModelConfig], tuple[nn.Module, object]]


@dataclass
class TrainResult:
    metrics: dict[str, float]  # the latest value of every metric reported
    best_step: int | None  # step of the exported model
    steps: int  # optimizer steps done (including those before a resume)
    model_dir: Path | None  # the exported model; None when cancelled
    data_report: DataReport
    cancelled: bool
    seconds: float
    embeddings_computed: int = 0  # frozen mode: texts embedded by the backbone in this run
    embeddings_reused: int = 0  # frozen mode: texts found in the embedding cache


def _pair_rewards(model: RewardModel, batch: PairBatch) -> tuple[torch.Tensor, torch.Tensor]:
    """(rewards of the A sides, rewards of the B sides), each [B, O]."""
    if batch.embeddings is not None:
        rewards = model.heads_on_embeddings(batch.embeddings)
    else:
        rewards = model(batch.input_ids, batch.attention_mask, batch.response_start)
    pairs = batch.label_mask.shape[0]
    return rewards[:pairs], rewards[pairs:]


def _parameter_groups(model: RewardModel, config: RewardModelConfig) -> list[dict]:
    """AdamW groups: backbone and heads at their own learning rates; no decay on biases and norms (1-D)."""
    groups = []
    for name, module, learning_rate in (
        ("backbone", model.backbones, config.learning_rate),
        ("heads", model.heads, config.head_learning_rate),
    ):
        trained = [parameter for parameter in module.parameters() if parameter.requires_grad]
        for decay, parameters in (
            (config.weight_decay, [p for p in trained if p.ndim >= 2]),
            (0.0, [p for p in trained if p.ndim < 2]),
        ):
            if parameters:
                groups.append({"name": name, "params": parameters, "lr": learning_rate, "weight_decay": decay})
    return groups


def _embed_pairs(
    model: RewardModel, config: RewardModelConfig, splits: dict[str, Sequence[PreferencePair]], device: torch.device
) -> tuple[dict[str, tuple[torch.Tensor, torch.Tensor]], int, int]:
    """Frozen mode: pooled embeddings of both sides of every pair, through the on-disk cache."""
    texts = []
    for pairs in splits.values():
        texts += [model.scored_text(p.prompt, p.response_a) for p in pairs]
        texts += [model.scored_text(p.prompt, p.response_b) for p in pairs]
    with EmbeddingCache(config.cache_dir, model.embedding_namespace(), model.embed_texts) as cache:
        embeddings = cache.embed(texts).to(device)
    by_split, start = {}, 0
    for split, pairs in splits.items():
        count = len(pairs)
        by_split[split] = (embeddings[start : start + count], embeddings[start + count : start + 2 * count])
        start += 2 * count
    return by_split, cache.computed, cache.reused


def train_reward_model(
    config: RewardModelConfig,
    pairs: Sequence[PreferencePair],
    output_dir: str | Path,
    *,
    callbacks: Callbacks | None = None,
    backbone_factory: BackboneFactory | None = None,
    resume: bool = False,
) -> TrainResult:
    """Train a reward model on ``pairs`` (see `load_pairs`) and export it to ``output_dir/model``.

    ``backbone_factory(config) -> (backbone, tokenizer)`` replaces loading ``config.backbone`` (tests
    pass tiny in-memory models). ``resume=True`` continues from ``output_dir/checkpoint`` at its step;
    otherwise earlier ``checkpoint/``, ``best/`` and ``model/`` folders in ``output_dir`` are removed.
    """
    started = time.monotonic()
    callbacks = callbacks or Callbacks()
    output_dir = Path(output_dir)
    start_output_dir(
        output_dir,
        resume=resume,
        checkpoint_file=output_dir / CHECKPOINT_DIR / CHECKPOINT_FILE,
        outputs=(CHECKPOINT_DIR, BEST_DIR, MODEL_DIR),
    )
    seed_everything(config.seed)
    device = resolve_device(config.device)

    used, report = select_trainable_pairs(pairs, config.objectives)
    train_pairs, eval_pairs = split_pairs(used, config.eval_fraction, config.seed)
    if not train_pairs:
        raise ValueError(f"No pairs to train on: {report.as_dict()}")
    model = RewardModel.from_config(config, backbone_factory).to(device)
    if config.init_heads_from and not resume:  # a resumed run's heads come from its checkpoint
        copied = model.load_heads(config.init_heads_from)
        logger.info("heads %s start from %s", ", ".join(copied), config.init_heads_from)
    margin_scale = config.margin_scale if config.use_margin else None
    # Frozen mode reads cached embeddings: spans only matter when the backbone runs on the batches.
    spans = model.pooling == "response" and config.mode != "frozen"
    train_data, eval_data = (
        encode_pairs(
            pairs, model.tokenizer, config.objectives, config.max_length, margin_scale, spans, model.scored_text
        )
        for pairs in (train_pairs, eval_pairs)
    )
    report = replace(
        report,
        train_pairs=len(train_pairs),
        eval_pairs=len(eval_pairs),
        truncated=train_data.truncated + eval_data.truncated,
    )
    logger.info("reward model data: %s", report.as_dict())

    embeddings, computed, reused = {}, 0, 0
    if config.mode == "frozen":
        embeddings, computed, reused = _embed_pairs(model, config, {"train": train_pairs, "eval": eval_pairs}, device)
        logger.info("frozen backbone: %d texts embedded, %d from the cache", computed, reused)
    pad_id = pad_token_id(model.tokenizer)

    def make_batch(data: EncodedPairs, split: str, indices: Sequence[int]) -> PairBatch:
        if embeddings:
            return data.embedding_batch(indices, *embeddings[split]).to(device)
        return data.token_batch(indices, pad_id).to(device)

    weights = config.objective_weights()

    @torch.no_grad()
    def measure(data: EncodedPairs, split: str, prefix: str) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
        """Metrics and per-head reward stats over a whole split, in eval mode."""
        model.eval()
        collected = PairMetrics(weights)
        by_length = sorted(range(len(data)), key=data.lengths.__getitem__)
        for start in range(0, len(by_length), config.batch_size):
            batch = make_batch(data, split, by_length[start : start + config.batch_size])
            collected.add(*_pair_rewards(model, batch), batch)
        model.train()
        return collected.summary(prefix), collected.reward_stats()

    micro_batches_per_epoch = math.ceil(len(train_data) / config.batch_size)
    steps_per_epoch = math.ceil(micro_batches_per_epoch / config.gradient_accumulation)
    total_steps = config.max_steps or config.epochs * steps_per_epoch

    def epoch_steps(epoch: int) -> list[list[list[int]]]:
        """The epoch's batches (seeded by epoch, so a resumed run sees the same order), grouped per optimizer step."""
        batches = bucketed_batches(train_data.lengths, config.batch_size, seed=config.seed + epoch)
        accumulation = config.gradient_accumulation
        return [batches[i : i + accumulation] for i in range(0, len(batches), accumulation)]

    optimizer = torch.optim.AdamW(_parameter_groups(model, config))
    trained_parameters = [p for group in optimizer.param_groups for p in group["params"]]
    scheduler = get_linear_schedule_with_warmup(optimizer, round(config.warmup_ratio * total_steps), total_steps)
    position = TrainingPosition()
    if resume:
        position = load_checkpoint(
            output_dir / CHECKPOINT_DIR, model=model, optimizer=optimizer, scheduler=scheduler, config=config
        )
        logger.info("resuming at step %d of %d", position.step, total_steps)
        callbacks.resumed(position.step)

    metrics: dict[str, float] = {}

    def report_metrics(new: dict[str, float]) -> None:
        metrics.update(new)
        callbacks.metrics(position.step, new)

    def checkpoint() -> None:
        save_checkpoint(
            output_dir / CHECKPOINT_DIR,
            model=model,
            optimizer=optimizer,
            scheduler=scheduler,
            config=config,
            position=position,
        )

    def evaluate_and_keep_best() -> None:
        eval_metrics, reward_stats = measure(eval_data, "eval", "eval")
        report_metrics(eval_metrics)
        logger.info("step %d eval: %s", position.step, eval_metrics)
        candidate = (eval_metrics["eval/accuracy"], -eval_metrics["eval/loss"])
        if position.best_step is None or candidate > (position.best_accuracy, -position.best_loss):
            model.normalization = reward_stats
            model.save_pretrained(output_dir / BEST_DIR, step=position.step)
            position.best_step = position.step
            position.best_accuracy, position.best_loss = eval_metrics["eval/accuracy"], eval_metrics["eval/loss"]

    window = PairMetrics(weights)
    cancelled = False
    model.train()
    while position.step < total_steps and not cancelled:
        steps = epoch_steps(position.epoch)
        while position.epoch_step < len(steps) and position.step < total_steps:
            if callbacks.stop_requested():
                cancelled = True
                break
            group = steps[position.epoch_step]
            optimizer.zero_grad(set_to_none=True)
            for indices in group:
                batch = make_batch(train_data, "train", indices)
                rewards_a, rewards_b = _pair_rewards(model, batch)
                loss, _ = bradley_terry_loss(
                    rewards_a, rewards_b, batch.chosen_is_a, batch.label_mask, weights, batch.margins
                )
                (loss / len(group)).backward()
                window.add(rewards_a, rewards_b, batch)
            grad_norm = torch.nn.utils.clip_grad_norm_(trained_parameters, config.grad_clip)
            optimizer.step()
            scheduler.step()
            position.step += 1
            position.epoch_step += 1

            if position.step % config.log_every == 0 or position.step == total_steps:
                learning_rates = {f"train/learning_rate/{g['name']}": g["lr"] for g in optimizer.param_groups}
                report_metrics(
                    {
                        **window.summary("train"),
                        **learning_rates,
                        "train/grad_norm": grad_norm.item(),
                        "train/epoch": position.epoch + position.epoch_step / len(steps),
                    }
                )
                window = PairMetrics(weights)
            callbacks.progress(position.step, total_steps)

            if position.step % config.eval_every == 0 or position.step == total_steps:
                if len(eval_data):
                    evaluate_and_keep_best()
                checkpoint()
        if position.epoch_step >= len(steps):
            position.epoch += 1
            position.epoch_step = 0

    model_dir = None
    if cancelled:
        checkpoint()
        logger.info("reward model training cancelled at step %d", position.step)
    else:
        model_dir = output_dir / MODEL_DIR
        if model_dir.exists():
            shutil.rmtree(model_dir)
        if len(eval_data):
            if position.best_step is None:  # resumed from a checkpoint taken before any evaluation
                evaluate_and_keep_best()
            shutil.copytree(output_dir / BEST_DIR, model_dir)
        else:
            # Nothing held out: export the last step, its rewards normalized on the training data.
            _, model.normalization = measure(train_data, "train", "train")
            model.save_pretrained(model_dir, step=position.step)
            position.best_step = position.step
    return TrainResult(
        metrics=metrics,
        best_step=position.best_step,
        steps=position.step,
        model_dir=model_dir,
        data_report=report,
        cancelled=cancelled,
        seconds=time.monotonic() - started,
        embeddings_computed=computed,
        embeddings_reused=reused,
    )
