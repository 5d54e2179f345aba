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
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path

import torch
from torch import nn
from transformers import get_linear_schedule_with_warmup

from .batching import EncodedPairs, PairBatch, bucketed_batches, encode_pairs, pad_token_id
from .checkpoint import CHECKPOINT_FILE, TrainingPosition, load_checkpoint, save_checkpoint, seed_everything
from .config import RewardModelConfig, resolve_device
from .data import DataReport, PreferencePair, select_trainable_pairs, split_pairs
from .distributed import Ranks, rank_device, run_ranks
from .embedding_cache import EmbeddingCache, embedding_namespace
from .frozen_fit import HeadFit, fit_frozen_head, head_data
from .loss import bradley_terry_loss, rating_loss
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
    for name, modules, learning_rate in (
        ("backbone", [model.backbones], config.learning_rate),
        ("heads", [model.heads, model.rating_map], config.head_learning_rate),
    ):
        trained = [parameter for module in modules for parameter in module.parameters() if parameter.requires_grad]
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
    with EmbeddingCache(config.cache_dir, embedding_namespace(model), model.embed_texts) as cache:
        embeddings = cache.embed(texts).to(device)
    by_split, start = {}, 0
    for split, pairs in splits.items():
        count = len(pairs)
        by_split[split] = (embeddings[start : start + count], embeddings[start + count : start + 2 * count])
        start += 2 * count
    return by_split, cache.computed, cache.reused


@dataclass
class PreparedData:
    """The run's pairs, encoded, and (frozen mode) their cached embeddings."""

    train: EncodedPairs
    eval: EncodedPairs
    report: DataReport
    embeddings: dict[str, tuple[torch.Tensor, torch.Tensor]] = field(default_factory=dict)  # split: (A, B) sides
    computed: int = 0  # frozen mode: texts embedded by the backbone in this run
    reused: int = 0  # frozen mode: texts found in the embedding cache

    def split(self, name: str) -> EncodedPairs:
        return self.train if name == "train" else self.eval


def _split(
    config: RewardModelConfig, pairs: Sequence[PreferencePair]
) -> tuple[list[PreferencePair], list[PreferencePair], DataReport]:
    """(train pairs, held-out pairs, report) of the pairs labeled for the config's objectives."""
    used, report = select_trainable_pairs(pairs, config.objectives, use_ratings=config.rating_loss_weight > 0)
    train_pairs, eval_pairs = split_pairs(used, config.eval_fraction, config.seed)
    if not train_pairs:
        raise ValueError(f"No pairs to train on: {report.as_dict()}")
    return train_pairs, eval_pairs, report


def _build_model(
    config: RewardModelConfig, backbone_factory: BackboneFactory | None, resume: bool, device: torch.device
) -> RewardModel:
    model = RewardModel.from_config(config, backbone_factory).to(device)
    if config.init_heads_from and not resume:  # a resumed run's heads come from its checkpoint
        copied = model.load_heads(config.init_heads_from)
        logger.info("heads %s start from %s", ", ".join(copied), config.init_heads_from)
    return model


def _prepare_data(
    config: RewardModelConfig,
    model: RewardModel,
    splits: tuple[list[PreferencePair], list[PreferencePair], DataReport],
    device: torch.device,
    callbacks: Callbacks,
) -> PreparedData:
    """Tokenize both splits (and in frozen mode embed them through the cache); the report gets their sizes."""
    train_pairs, eval_pairs, report = splits
    callbacks.stage("tokenizing")
    margin_scale = config.margin_scale if config.use_margin else None
    # Frozen mode reads cached embeddings: spans only matter when the backbone runs on the batches.
    spans = model.pooling == "response" and config.mode != "frozen"
    train_data, eval_data = (
        encode_pairs(
            pairs, model.tokenizer, config.objectives, config.max_length, margin_scale, spans, model.scored_text,
            use_ratings=config.rating_loss_weight > 0,
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
    data = PreparedData(train_data, eval_data, report)
    if config.mode == "frozen":
        callbacks.stage("embedding")
        data.embeddings, data.computed, data.reused = _embed_pairs(
            model, config, {"train": train_pairs, "eval": eval_pairs}, device
        )
        logger.info("frozen backbone: %d texts embedded, %d from the cache", data.computed, data.reused)
    return data


# --- the pieces of one run: batches, a step, evaluation, keeping the best model --------------------------


def make_batch(
    data: EncodedPairs,
    indices: Sequence[int],
    *,
    pad_id: int,
    device: torch.device,
    embeddings: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> PairBatch:
    """The pairs ``indices`` of ``data`` on ``device``: padded tokens, or their cached (A, B) ``embeddings``."""
    if embeddings is not None:
        return data.embedding_batch(indices, *embeddings).to(device)
    return data.token_batch(indices, pad_id).to(device)


def step_batches(lengths: Sequence[int], batch_size: int, accumulation: int, seed: int) -> list[list[list[int]]]:
    """An epoch's batches of pair indices (length-bucketed, shuffled by ``seed``), grouped per optimizer step."""
    batches = bucketed_batches(lengths, batch_size, seed=seed)
    return [batches[i : i + accumulation] for i in range(0, len(batches), accumulation)]


def length_sorted_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Every index once, in batches of similar length (little padding): the order evaluation reads a split in."""
    by_length = sorted(range(len(lengths)), key=lengths.__getitem__)
    return [by_length[start : start + batch_size] for start in range(0, len(by_length), batch_size)]


def batch_loss(
    model: RewardModel, batch: PairBatch, rewards: tuple[torch.Tensor, torch.Tensor], weights: dict[str, float],
    rating_weight: float = 0.0, whole: PairBatch | None = None,
) -> torch.Tensor:
    """The training loss of one batch: Bradley-Terry over its preferences, plus ``rating_weight`` times the
    rating loss over its ratings (a batch without ratings has no rating term). ``whole``: the labels of the
    micro-batch ``batch`` is one process's share of; its means are taken over them (`Ranks`)."""
    rewards_a, rewards_b = rewards
    labeled = rated = None
    if whole is not None:
        labeled = whole.label_mask.sum(dim=0)
        rated = None if whole.rating_mask is None else whole.rating_mask.sum(dim=(0, 1))
    loss, _ = bradley_terry_loss(
        rewards_a, rewards_b, batch.chosen_is_a, batch.label_mask, weights, batch.margins, labeled
    )
    if rating_weight > 0 and batch.rating_mask is not None and batch.rating_mask.any():
        rating, _ = rating_loss(
            rewards_a, rewards_b, batch.ratings, batch.rating_mask, weights, model.rating_map, rated
        )
        loss = loss + rating_weight * rating
    return loss


def train_step(
    model: RewardModel,
    batches: Sequence[PairBatch],
    weights: dict[str, float],
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    grad_clip: float,
    window: PairMetrics,
    rating_weight: float = 0.0,
) -> torch.Tensor:
    """One optimizer step on the mean `batch_loss` over ``batches`` (gradient accumulation); the rewards go
    into ``window``. Returns the gradient norm before clipping."""
    optimizer.zero_grad(set_to_none=True)
    for batch in batches:
        rewards_a, rewards_b = _pair_rewards(model, batch)
        loss = batch_loss(model, batch, (rewards_a, rewards_b), weights, rating_weight)
        (loss / len(batches)).backward()
        window.add(rewards_a, rewards_b, batch)
    trained = [parameter for group in optimizer.param_groups for parameter in group["params"]]
    grad_norm = torch.nn.utils.clip_grad_norm_(trained, grad_clip)
    optimizer.step()
    scheduler.step()
    return grad_norm


def shared_train_step(
    model: RewardModel,
    micro_batches: Sequence[tuple[PairBatch | None, PairBatch]],
    weights: dict[str, float],
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    grad_clip: float,
    window: PairMetrics,
    rating_weight: float,
    ranks: Ranks,
) -> torch.Tensor:
    """`train_step` as one of ``ranks``: ``micro_batches`` are (this rank's share, None when it is empty; the
    labels of the whole micro-batch in `Ranks.ordered` order). Gradients are summed over the ranks, so every
    rank takes the one-process step; rank 0's ``window`` gets the rewards of every pair."""
    optimizer.zero_grad(set_to_none=True)
    for share, whole in micro_batches:
        rewards = (torch.empty(0, len(weights)), torch.empty(0, len(weights)))
        if share is not None:
            rewards = _pair_rewards(model, share)
            (batch_loss(model, share, rewards, weights, rating_weight, whole) / len(micro_batches)).backward()
        rewards = ranks.gather_rewards(rewards)
        if ranks.main:
            window.add(*rewards, whole)
    trained = [parameter for group in optimizer.param_groups for parameter in group["params"]]
    ranks.sum_gradients(trained)
    grad_norm = torch.nn.utils.clip_grad_norm_(trained, grad_clip)
    optimizer.step()
    scheduler.step()
    return grad_norm


def train_metrics(
    window: PairMetrics, optimizer: torch.optim.Optimizer, grad_norm: torch.Tensor, epoch: float
) -> dict[str, float]:
    """The ``train/`` metrics of the steps since the last report."""
    return {
        **window.summary("train"),
        **{f"train/learning_rate/{group['name']}": group["lr"] for group in optimizer.param_groups},
        "train/grad_norm": grad_norm.item(),
        "train/epoch": epoch,
    }


@torch.no_grad()
def evaluate_pairs(
    model: RewardModel, batches: Iterable[PairBatch], weights: dict[str, float], prefix: str,
    rating_weight: float = 0.0,
) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """(metrics ``{"<prefix>/..."}``, per-head reward stats) over ``batches``, in eval mode (with the rating
    metrics when ``rating_weight`` is positive, see `PairMetrics`)."""
    model.eval()
    collected = PairMetrics(weights, model.rating_map, rating_weight)
    for batch in batches:
        collected.add(*_pair_rewards(model, batch), batch)
    model.train()
    return collected.summary(prefix), collected.reward_stats()


def keep_if_best(
    model: RewardModel,
    eval_metrics: dict[str, float],
    reward_stats: dict[str, dict[str, float]],
    position: TrainingPosition,
    best_dir: Path,
) -> bool:
    """Save the model to ``best_dir`` (normalized by ``reward_stats``) when its eval accuracy beats the best so
    far (ties: lower loss); ``position`` records it. Returns whether it was saved."""
    # A held-out split of rating-only pairs rated alike on both sides has no accuracy: the loss decides.
    candidate = (eval_metrics.get("eval/accuracy", 0.0), -eval_metrics["eval/loss"])
    if position.best_step is not None and candidate <= (position.best_accuracy, -position.best_loss):
        return False
    model.normalization = reward_stats
    model.save_pretrained(best_dir, step=position.step)
    position.best_step = position.step
    position.best_accuracy, position.best_loss = candidate[0], eval_metrics["eval/loss"]
    return True


# --- the loop ------------------------------------------------------------------------------------------


@dataclass
class _Run:
    """The live objects of one run, shared by the loop and its export."""

    config: RewardModelConfig
    model: RewardModel
    data: PreparedData
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    callbacks: Callbacks
    output_dir: Path
    device: torch.device
    ranks: Ranks | None = None  # None: the run's only process
    position: TrainingPosition = field(default_factory=TrainingPosition)
    metrics: dict[str, float] = field(default_factory=dict)  # the latest value of every metric reported

    def __post_init__(self) -> None:
        self.weights = self.config.objective_weights()
        self.pad_id = pad_token_id(self.model.tokenizer)

    def window(self) -> PairMetrics:
        """A fresh collector of the training metrics (rating metrics too when ratings are used)."""
        return PairMetrics(self.weights, self.model.rating_map, self.config.rating_loss_weight)

    @property
    def main(self) -> bool:
        """Whether this process reports, evaluates, checkpoints and exports (the only one, or rank 0)."""
        return self.ranks is None or self.ranks.main

    def stop_requested(self) -> bool:
        """Whether to stop before the next step; asked on rank 0, whose answer every rank follows."""
        requested = self.main and self.callbacks.stop_requested()
        return requested if self.ranks is None else self.ranks.agree(requested)

    def step(self, micro_batches: Sequence[Sequence[int]], window: PairMetrics) -> torch.Tensor:
        """One optimizer step on the pairs ``micro_batches``; returns the gradient norm before clipping."""
        config = self.config
        if self.ranks is None:
            batches = [self.batch("train", indices) for indices in micro_batches]
            return train_step(
                self.model, batches, self.weights, self.optimizer, self.scheduler, config.grad_clip, window,
                config.rating_loss_weight,
            )
        shares = []
        for indices in micro_batches:
            share = self.ranks.share(indices)  # empty for some ranks in an epoch's last, short micro-batch
            whole = self.data.train.label_batch(self.ranks.ordered(indices)).to(self.device)
            shares.append((self.batch("train", share) if share else None, whole))
        return shared_train_step(
            self.model, shares, self.weights, self.optimizer, self.scheduler, config.grad_clip, window,
            config.rating_loss_weight, self.ranks,
        )

    def batch(self, split: str, indices: Sequence[int]) -> PairBatch:
        data, embeddings = self.data.split(split), self.data.embeddings.get(split)
        return make_batch(data, indices, pad_id=self.pad_id, device=self.device, embeddings=embeddings)

    def measure(self, split: str, prefix: str) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
        """Metrics and per-head reward stats over a whole split."""
        rows = length_sorted_batches(self.data.split(split).lengths, self.config.batch_size)
        batches = (self.batch(split, r) for r in rows)
        return evaluate_pairs(self.model, batches, self.weights, prefix, self.config.rating_loss_weight)

    def report(self, new: dict[str, float]) -> None:
        self.metrics.update(new)
        self.callbacks.metrics(self.position.step, new)

    def checkpoint(self) -> None:
        save_checkpoint(
            self.output_dir / CHECKPOINT_DIR,
            model=self.model,
            optimizer=self.optimizer,
            scheduler=self.scheduler,
            config=self.config,
            position=self.position,
        )

    def evaluate_and_keep_best(self) -> None:
        eval_metrics, reward_stats = self.measure("eval", "eval")
        self.report(eval_metrics)
        logger.info("step %d eval: %s", self.position.step, eval_metrics)
        keep_if_best(self.model, eval_metrics, reward_stats, self.position, self.output_dir / BEST_DIR)


def _train_loop(run: _Run, total_steps: int) -> bool:
    """Optimizer steps until ``total_steps``, reporting, evaluating and checkpointing on schedule; returns
    True when a stop was requested (before a step)."""
    config, position = run.config, run.position
    window, unreported = run.window(), None
    run.model.train()
    while position.step < total_steps:
        seed = config.seed + position.epoch  # seeded by epoch, so a resumed run sees the same order
        steps = step_batches(run.data.train.lengths, config.batch_size, config.gradient_accumulation, seed)
        while position.epoch_step < len(steps) and position.step < total_steps:
            if run.stop_requested():
                if unreported is not None:  # a cancelled run keeps the curve of every step it took
                    run.report(unreported())
                return True
            grad_norm = run.step(steps[position.epoch_step], window)
            position.step += 1
            position.epoch_step += 1
            epoch = position.epoch + position.epoch_step / len(steps)
            unreported = partial(train_metrics, window, run.optimizer, grad_norm, epoch)
            if position.step % config.log_every == 0 or position.step == total_steps:
                run.report(unreported())
                window, unreported = run.window(), None
            run.callbacks.progress(position.step, total_steps)
            if run.main and (position.step % config.eval_every == 0 or position.step == total_steps):
                if len(run.data.eval):
                    run.evaluate_and_keep_best()
                run.checkpoint()
        if position.epoch_step >= len(steps):
            position.epoch += 1
            position.epoch_step = 0
    return False


def _fit_frozen_head(run: _Run, column: int, objective: str) -> HeadFit | None:
    """Fit the head of ``objective`` (column ``column``) on the cached training embeddings and load it into the
    model; None, the head kept, when the objective weighs 0 or has no labeled (nor, with ratings, rated)
    training pair."""
    config = run.config
    data = head_data(run.data.embeddings["train"], run.data.train, column, config.rating_loss_weight)
    if run.weights[objective] == 0:
        return None
    if not data.trainable:
        logger.warning("frozen head %s: no labeled preference or rating in the training split; its head is not "
                       "fitted", objective)
        return None
    fit = fit_frozen_head(data, l2=config.frozen_l2, folds=config.cv_folds, seed=config.seed)
    with torch.no_grad():
        run.model.heads[objective].weight.copy_(fit.head.weight.view(1, -1))
        run.model.heads[objective].bias.fill_(fit.head.bias)
    logger.info("frozen head %s: l2 %g (%d-fold cross-validated loss %s, accuracy %s), training loss %.4f",
                objective, fit.l2, fit.folds, fit.cv_loss, fit.cv_accuracy, fit.train_loss)
    return fit


def _fit_frozen(run: _Run, total_steps: int) -> bool:
    """Frozen mode: each objective's head fitted to convergence on the cached embeddings (`frozen_fit`), one
    step per objective, then measured on both splits; returns True when a stop was requested (between
    objectives)."""
    position, fitted = run.position, 0
    for column, objective in enumerate(run.config.objectives):
        if run.callbacks.stop_requested():
            return True
        fit = _fit_frozen_head(run, column, objective)
        position.step += 1
        if fit is not None:
            fitted += 1
            run.report(fit.metrics(objective))
        run.callbacks.progress(position.step, total_steps)
    if not fitted:
        raise ValueError("frozen mode fits each head on its labeled preferences and ratings, and no objective "
                         "weighted above 0 has either in the training split")
    run.report(run.measure("train", "train")[0])
    if len(run.data.eval):
        run.evaluate_and_keep_best()
    return False


def _export(run: _Run) -> Path:
    """Write ``model/``: a copy of ``best/``, or with nothing held out the last step, its rewards normalized
    on the training data."""
    model_dir = run.output_dir / MODEL_DIR
    if model_dir.exists():
        shutil.rmtree(model_dir)
    if len(run.data.eval):
        if run.position.best_step is None:  # resumed from a checkpoint taken before any evaluation
            run.evaluate_and_keep_best()
        shutil.copytree(run.output_dir / BEST_DIR, model_dir)
    else:
        _, run.model.normalization = run.measure("train", "train")
        run.model.save_pretrained(model_dir, step=run.position.step)
        run.position.best_step = run.position.step
    return model_dir


def total_steps_of(config: RewardModelConfig, train_pairs: int) -> int:
    """Steps of the run: in frozen mode one full-batch fit per objective; else optimizer steps, ``max_steps``,
    else ``epochs`` passes over ``train_pairs`` but at least ``min_steps``."""
    if config.steps_without_data() is not None:
        return config.steps_without_data()
    micro_batches_per_epoch = math.ceil(train_pairs / config.batch_size)
    steps_per_epoch = math.ceil(micro_batches_per_epoch / config.gradient_accumulation)
    return max(config.epochs * steps_per_epoch, config.min_steps)


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
    pass tiny in-memory models; with ``devices`` > 1 it must be picklable: a module-level function).
    ``resume=True`` continues from ``output_dir/checkpoint`` at its step; otherwise earlier ``checkpoint/``,
    ``best/`` and ``model/`` folders in ``output_dir`` are removed. With ``devices`` > 1 this process is
    rank 0 of that many (`distributed`): only it calls ``callbacks`` and writes ``output_dir``.
    """
    if config.devices == 1:
        return _train(config, pairs, Path(output_dir), callbacks or Callbacks(), backbone_factory, resume)
    helper_call = (_train_helper_rank, (config, list(pairs), Path(output_dir), backbone_factory, resume))
    return run_ranks(
        config.devices, resolve_device(config.device),
        partial(_train, config, pairs, Path(output_dir), callbacks or Callbacks(), backbone_factory, resume),
        helper_call,
    )


def _train_helper_rank(
    config: RewardModelConfig, pairs: list[PreferencePair], output_dir: Path,
    backbone_factory: BackboneFactory | None, resume: bool, *, ranks: Ranks,
) -> None:
    """Ranks 1..N-1 of a multi-process run: the same loop, without callbacks or files of their own."""
    _train(config, pairs, output_dir, Callbacks(), backbone_factory, resume, ranks)


def _train(
    config: RewardModelConfig,
    pairs: Sequence[PreferencePair],
    output_dir: Path,
    callbacks: Callbacks,
    backbone_factory: BackboneFactory | None,
    resume: bool,
    ranks: Ranks | None = None,
) -> TrainResult:
    """`train_reward_model` in this process: the only one (``ranks`` None) or one of ``ranks``."""
    started = time.monotonic()
    # A frozen fit takes seconds and keeps no state between steps: a restarted frozen run fits again.
    refit, resume = resume and config.mode == "frozen", resume and config.mode != "frozen"
    checkpoint_file = output_dir / CHECKPOINT_DIR / CHECKPOINT_FILE
    outputs = (CHECKPOINT_DIR, BEST_DIR, MODEL_DIR)
    if ranks is None or ranks.main:
        start_output_dir(output_dir, resume=resume, checkpoint_file=checkpoint_file, outputs=outputs)
    seed_everything(config.seed)
    device = resolve_device(config.device)
    if ranks is not None:
        device = rank_device(device, ranks)
    splits = _split(config, pairs)
    # The steps are known from the pairs: reported before the slow part (loading, tokenizing, embedding), so a
    # dashboard shows "0 / N" from the start. A resumed run keeps the progress its checkpoint reports.
    total_steps = total_steps_of(config, len(splits[0]))
    if not resume:
        callbacks.progress(0, total_steps)
    callbacks.stage("loading backbone")
    model = _build_model(config, backbone_factory, resume, device)
    data = _prepare_data(config, model, splits, device, callbacks)
    optimizer = torch.optim.AdamW(_parameter_groups(model, config))
    scheduler = get_linear_schedule_with_warmup(optimizer, round(config.warmup_ratio * total_steps), total_steps)
    run = _Run(config, model, data, optimizer, scheduler, callbacks, output_dir, device, ranks)
    if resume:
        run.position = load_checkpoint(
            checkpoint_file.parent, model=model, optimizer=optimizer, scheduler=scheduler, config=config
        )
        logger.info("resuming at step %d of %d", run.position.step, total_steps)
        run.callbacks.resumed(run.position.step)
    if ranks is not None:
        ranks.broadcast_module(model)
    if refit:
        run.callbacks.resumed(0)
    callbacks.stage("fitting heads" if config.mode == "frozen" else "training")
    # Step times are measured from here: loading and tokenizing are not a step's.
    callbacks.progress(run.position.step, total_steps)
    cancelled = (_fit_frozen if config.mode == "frozen" else _train_loop)(run, total_steps)
    model_dir = None
    if cancelled and run.main:
        run.checkpoint()
        logger.info("reward model training cancelled at step %d", run.position.step)
    elif run.main:
        callbacks.stage("exporting the model")
        model_dir = _export(run)
    return TrainResult(
        metrics=run.metrics,
        best_step=run.position.best_step,
        steps=run.position.step,
        model_dir=model_dir,
        data_report=data.report,
        cancelled=cancelled,
        seconds=time.monotonic() - started,
        embeddings_computed=data.computed,
        embeddings_reused=data.reused,
    )
