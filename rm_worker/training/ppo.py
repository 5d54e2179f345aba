"""PPO fine-tuning of a causal LM against a multi-objective reward model: config and prompts in, metrics
(through callbacks) and LoRA adapters out.

Follows the implementation details of TRL's former ``PPOTrainer`` ("The N Implementation Details of RLHF
with PPO", Huang et al.): per-token KL penalty against the reference with an adaptive coefficient, the
score on the last response token, GAE, whitened advantages, clipped policy and value losses, tokens after
the first EOS masked out, a penalty for responses that never end.

Layout of ``output_dir``::

    checkpoint/   resumable state (adapters, value head, optimizer, λ, KL coefficient, step, RNG, config),
                  written every ``checkpoint_every`` steps, at the end and on cancel
    adapter/      the final LoRA adapters (peft), ``value_head.safetensors`` and ``morm_ppo.json``
"""

from __future__ import annotations

import json
import logging
import random
import shutil
import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from transformers import GenerationConfig

from .checkpoint import restore_rng_state, rng_state, seed_everything
from .config import resolve_device
from .data import Prompt, format_prompt, pair_text, prompt_held_out
from .model import RewardModel
from .policy import PolicyFactory, PolicyWithValueHead
from .ppo_config import PPO_RESUMABLE_CHANGES, PPOConfig
from .run_io import Callbacks, atomic_save, check_resumable, start_output_dir
from .scalarization import Scalarizer

logger = logging.getLogger(__name__)

CHECKPOINT_DIR = "checkpoint"
CHECKPOINT_FILE = "ppo_state.pt"
ADAPTER_DIR = "adapter"
ADAPTER_METADATA_FILE = "morm_ppo.json"
SAMPLE_ROWS = 8  # rows in each table of sample generations

RewardFn = Callable[[Sequence[Prompt], Sequence[str]], torch.Tensor]
Normalization = dict[str, dict[str, float]]


@dataclass
class PPOResult:
    metrics: dict[str, float]  # the latest value of every metric reported
    eval_before: dict[str, Any]  # {objective: {"raw", "normalized"}, "combined": float}, reference policy
    eval_after: dict[str, Any]  # the same for the trained policy; {} when cancelled or nothing is held out
    steps: int  # PPO steps done (including those before a resume)
    seconds: float
    cancelled: bool
    adapter_dir: Path | None  # None when cancelled
    seconds_per_step: float | None = None  # mean wall time of the steps run by this call


# --- PPO arithmetic ------------------------------------------------------------------------------------


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return (values * mask).sum() / mask.sum().clamp(min=1)


def masked_whiten(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean 0, std 1 over the masked positions (unbiased variance); masked-out positions become 0."""
    count = mask.sum()
    mean = masked_mean(values, mask)
    variance = masked_mean((values - mean) ** 2, mask)
    if count > 1:
        variance = variance * count / (count - 1)
    return (values - mean) * torch.rsqrt(variance + 1e-8) * mask


def response_mask(responses: torch.Tensor, eos_token_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(mask [B, T] float, ended [B] bool)``: tokens up to and including the first EOS, and whether there is one."""
    is_eos = responses == eos_token_id
    eos_before = is_eos.long().cumsum(dim=1) - is_eos.long()
    return (eos_before == 0).float(), is_eos.any(dim=1)


def kl_per_token(logprobs: torch.Tensor, ref_logprobs: torch.Tensor, estimator: str = "k1") -> torch.Tensor:
    """KL(π || π_ref) estimated per sampled token: ``k1`` = log π - log π_ref, ``k3`` = (r - 1) - log r,
    r = π_ref / π."""
    if estimator == "k1":
        return logprobs - ref_logprobs
    if estimator == "k3":
        log_ratio = ref_logprobs - logprobs
        return torch.expm1(log_ratio) - log_ratio
    raise ValueError(f"unknown KL estimator {estimator!r}")


def token_rewards(scores: torch.Tensor, kl: torch.Tensor, mask: torch.Tensor, kl_coef: float) -> torch.Tensor:
    """[B, T] rewards: ``-kl_coef · KL_t`` on every response token, plus the score on the last one."""
    rewards = -kl_coef * kl * mask
    last = (mask.sum(dim=1).long() - 1).clamp(min=0)
    rewards[torch.arange(rewards.shape[0], device=rewards.device), last] += scores
    return rewards


def compute_gae(
    rewards: torch.Tensor, values: torch.Tensor, mask: torch.Tensor, gamma: float, lam: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(advantages, returns)``, each [B, T], by generalized advantage estimation.

    ``δ_t = r_t + γ V_{t+1} - V_t`` and ``A_t = δ_t + γλ A_{t+1}``, with ``V`` and ``A`` zero past the last
    response token; ``returns = A + V`` are the value targets.
    """
    rewards, values = rewards * mask, values * mask
    advantages = torch.zeros_like(rewards)
    next_advantage = torch.zeros_like(rewards[:, 0])
    length = rewards.shape[1]
    for t in reversed(range(length)):
        next_value = values[:, t + 1] if t + 1 < length else torch.zeros_like(values[:, 0])
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        next_advantage = delta + gamma * lam * next_advantage
        advantages[:, t] = next_advantage
    advantages = advantages * mask
    return advantages, advantages + values


def clipped_policy_loss(
    logprobs: torch.Tensor, old_logprobs: torch.Tensor, advantages: torch.Tensor, mask: torch.Tensor, cliprange: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(loss, clip_fraction, approx_kl)``: ``mean(max(-A·ρ, -A·clip(ρ, 1 - ε, 1 + ε)))``, ρ = π / π_old.

    ``approx_kl`` is ``0.5 · mean((log π - log π_old)²)``; ``clip_fraction`` the share of tokens where the
    clipped term won.
    """
    log_ratio = logprobs - old_logprobs
    ratio = torch.exp(log_ratio)
    unclipped = -advantages * ratio
    clipped = -advantages * torch.clamp(ratio, 1.0 - cliprange, 1.0 + cliprange)
    loss = masked_mean(torch.maximum(unclipped, clipped), mask)
    clip_fraction = masked_mean((clipped > unclipped).float(), mask)
    approx_kl = 0.5 * masked_mean(log_ratio.detach() ** 2, mask)
    return loss, clip_fraction.detach(), approx_kl


def clipped_value_loss(
    values: torch.Tensor, old_values: torch.Tensor, returns: torch.Tensor, mask: torch.Tensor, cliprange_value: float
) -> torch.Tensor:
    """``0.5 · mean(max((V - R)², (V_clip - R)²))`` with ``V_clip = V_old + clip(V - V_old, ±cliprange_value)``."""
    clipped = old_values + torch.clamp(values - old_values, -cliprange_value, cliprange_value)
    return 0.5 * masked_mean(torch.maximum((values - returns) ** 2, (clipped - returns) ** 2), mask)


class KLController:
    """The KL coefficient β: fixed, or adaptive (Ziegler et al. 2019) toward a target KL."""

    def __init__(self, init_coef: float, *, adaptive: bool, target: float, horizon: int):
        self.value = float(init_coef)
        self.adaptive = adaptive
        self.target = target
        self.horizon = horizon

    def update(self, current_kl: float, n_steps: int) -> None:
        """After a batch of ``n_steps`` responses: β *= 1 + clip(KL/target - 1, -0.2, 0.2) · n_steps / horizon."""
        if not self.adaptive:
            return
        proportional_error = min(max(current_kl / self.target - 1.0, -0.2), 0.2)
        self.value *= 1.0 + proportional_error * n_steps / self.horizon


# --- prompts, rewards, evaluation ----------------------------------------------------------------------


def prompt_text(tokenizer, prompt: Prompt) -> str:
    """The text the policy continues: the tokenizer's chat template with the generation prompt when it has one,
    else the conversation as the reward model reads it, ending with ``Assistant:``."""
    if getattr(tokenizer, "chat_template", None):
        turns = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else prompt
        return tokenizer.apply_chat_template(turns, add_generation_prompt=True, tokenize=False)
    return pair_text(prompt, "").rstrip(" ")


def split_prompts(prompts: Sequence[Prompt], config: PPOConfig) -> tuple[list[Prompt], list[Prompt]]:
    """(train, held-out) by a hash of each prompt, so a prompt never changes side as the prompt set grows."""
    train, held_out = [], []
    for prompt in prompts:
        (held_out if prompt_held_out(prompt, config.eval_fraction, config.seed) else train).append(prompt)
    return train, held_out[: config.eval_max_prompts]


def reward_model_scorer(config: PPOConfig, device: torch.device) -> tuple[RewardFn, Normalization]:
    """``(reward_fn, normalization)`` from the saved reward model: all heads scored in one forward per batch."""
    model = RewardModel.from_pretrained(config.reward_model_dir, device=device)
    missing = [o for o in config.objectives if o not in model.objectives]
    if missing:
        raise ValueError(
            f"{config.reward_model_dir}: the reward model has no head for {', '.join(missing)} "
            f"(it has {', '.join(model.objectives)})"
        )
    columns = [model.objectives.index(o) for o in config.objectives]

    def reward_fn(prompts: Sequence[Prompt], responses: Sequence[str]) -> torch.Tensor:
        texts = [model.scored_text(p, r) for p, r in zip(prompts, responses, strict=True)]
        return model.rewards_for_texts(texts, batch_size=max(1, len(texts)))[:, columns]

    return reward_fn, model.normalization


def normalization_tensors(config: PPOConfig, normalization: Normalization | None) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean [O], std [O]) that normalize raw rewards; identity when ``normalize_rewards`` is off."""
    objectives = config.objectives
    if not config.normalize_rewards:
        return torch.zeros(len(objectives)), torch.ones(len(objectives))
    normalization = normalization or {o: {"mean": 0.0, "std": 1.0} for o in objectives}
    missing = [o for o in objectives if o not in normalization]
    if missing:
        raise ValueError(f"no reward normalization stats for {', '.join(missing)}; set normalize_rewards=False")
    mean = torch.tensor([float(normalization[o]["mean"]) for o in objectives])
    std = torch.tensor([float(normalization[o]["std"]) for o in objectives]).clamp(min=1e-6)
    return mean, std


@dataclass
class Rollout:
    """One step's sampled batch and everything PPO needs from it (all on the policy's device)."""

    prompts: list[Prompt]
    responses: list[str]
    input_ids: torch.Tensor  # [B, P + T] prompt (left-padded) then response
    attention_mask: torch.Tensor  # [B, P + T], 0 on prompt padding and after the first EOS
    prompt_width: int  # P
    mask: torch.Tensor  # [B, T] response tokens kept (through the first EOS)
    ended: torch.Tensor  # [B] whether the response ended with EOS


def rollout(
    policy: PolicyWithValueHead, prompts: list[Prompt], config: PPOConfig, generation_config: GenerationConfig
) -> Rollout:
    """Generate responses to ``prompts`` with ``generation_config``; masks end at each response's first EOS."""
    tokenizer = policy.tokenizer
    texts = [prompt_text(tokenizer, p) for p in prompts]
    templated = bool(getattr(tokenizer, "chat_template", None))
    encoded = tokenizer(
        texts,
        padding=True,
        truncation=True,
        max_length=config.max_prompt_length,
        add_special_tokens=not templated,  # a chat template writes its own special tokens
        return_tensors="pt",
    ).to(policy.device)
    responses = policy.generate(encoded["input_ids"], encoded["attention_mask"], generation_config)
    mask, ended = response_mask(responses, tokenizer.eos_token_id)
    decoded = [
        tokenizer.decode(row[: int(length)], skip_special_tokens=True).strip()
        for row, length in zip(responses.tolist(), mask.sum(dim=1).tolist())
    ]
    return Rollout(
        prompts=prompts,
        responses=decoded,
        input_ids=torch.cat([encoded["input_ids"], responses], dim=1),
        attention_mask=torch.cat([encoded["attention_mask"], mask.long()], dim=1),
        prompt_width=encoded["input_ids"].shape[1],
        mask=mask,
        ended=ended,
    )


@dataclass
class Experience:
    """What the policy before the update and the reference say about a rollout (no gradients)."""

    logprobs: torch.Tensor  # [B, T] log π_old of each response token
    values: torch.Tensor  # [B, T] V_old, 0 past the response
    ref_logprobs: torch.Tensor  # [B, T] log π_ref


@torch.no_grad()
def experience_of(policy: PolicyWithValueHead, rolled: Rollout, temperature: float) -> Experience:
    """Log-probabilities and values of the policy as it sampled, and the reference's log-probabilities."""
    inputs = (rolled.input_ids, rolled.attention_mask, rolled.prompt_width, temperature)
    logprobs, values = policy.response_logprobs(*inputs)
    with policy.reference():
        ref_logprobs, _ = policy.response_logprobs(*inputs, with_values=False)
    return Experience(logprobs, values * rolled.mask, ref_logprobs)


@dataclass
class Scores:
    """A batch's rewards, on the CPU."""

    raw: torch.Tensor  # [B, O] from the reward function
    normalized: torch.Tensor  # [B, O] (raw - mean) / std per objective
    combined: torch.Tensor  # [B] the scalarized normalized rewards
    penalized: torch.Tensor  # [B] combined, less the missing-EOS penalty: the score PPO maximizes


def score_rollout(
    score: Callable[[list[Prompt], list[str]], tuple[torch.Tensor, torch.Tensor]],
    rolled: Rollout,
    scalarizer: Scalarizer,
    missing_eos_penalty: float | None,
) -> Scores:
    """``score(prompts, responses) -> (raw, normalized)``, combined by ``scalarizer``, with the penalty."""
    raw, normalized = score(rolled.prompts, rolled.responses)
    combined = scalarizer.combine(normalized)
    penalized = combined.clone()
    if missing_eos_penalty is not None:
        penalized -= missing_eos_penalty * (~rolled.ended).float().cpu()
    return Scores(raw, normalized, combined, penalized)


def advantages_and_returns(
    scores: torch.Tensor,
    experience: Experience,
    mask: torch.Tensor,
    *,
    kl_coef: float,
    kl_estimator: str,
    gamma: float,
    lam: float,
    whiten: bool,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(kl, advantages, returns)``, each [B, T]: per-token KL to the reference, GAE on the KL-penalized
    rewards with ``scores`` [B] on the last response token, advantages whitened when ``whiten``."""
    kl = kl_per_token(experience.logprobs, experience.ref_logprobs, kl_estimator) * mask
    rewards = token_rewards(scores, kl, mask, kl_coef)
    advantages, returns = compute_gae(rewards, experience.values, mask, gamma, lam)
    if whiten:
        advantages = masked_whiten(advantages, mask)
    return kl, advantages, returns


def ppo_update(
    policy: PolicyWithValueHead,
    optimizer: torch.optim.Optimizer,
    rolled: Rollout,
    experience: Experience,
    advantages: torch.Tensor,
    returns: torch.Tensor,
    config: PPOConfig,
) -> dict[str, float]:
    """``ppo_epochs`` passes of clipped policy + value loss over shuffled mini-batches of the rollout; returns
    the mean ``policy_loss``, ``value_loss``, ``clip_fraction`` and ``approx_kl`` over the updates."""
    policy.train()
    totals = {"policy_loss": 0.0, "value_loss": 0.0, "clip_fraction": 0.0, "approx_kl": 0.0}
    updates, batch_size, mask = 0, rolled.mask.shape[0], rolled.mask
    for _ in range(config.ppo_epochs):
        order = torch.randperm(batch_size, device=mask.device)
        for start in range(0, batch_size, config.mini_batch_size):
            rows = order[start : start + config.mini_batch_size]
            logprobs, values = policy.response_logprobs(
                rolled.input_ids[rows], rolled.attention_mask[rows], rolled.prompt_width, config.temperature
            )
            policy_loss, clip_fraction, approx_kl = clipped_policy_loss(
                logprobs, experience.logprobs[rows], advantages[rows], mask[rows], config.cliprange
            )
            value_loss = clipped_value_loss(
                values, experience.values[rows], returns[rows], mask[rows], config.cliprange_value
            )
            optimizer.zero_grad(set_to_none=True)
            (policy_loss + config.vf_coef * value_loss).backward()
            torch.nn.utils.clip_grad_norm_(policy.trainable_parameters(), config.max_grad_norm)
            optimizer.step()
            for name, value in zip(totals, (policy_loss, value_loss, clip_fraction, approx_kl)):
                totals[name] += value.item()
            updates += 1
    policy.eval()
    return {name: total / updates for name, total in totals.items()}


def step_metrics(
    objectives: Sequence[str],
    scores: Scores,
    weights: dict[str, float],
    multiplier: float | None,
    losses: dict[str, float],
    kl: torch.Tensor,
    kl_coef: float,
    rolled: Rollout,
) -> dict[str, float]:
    """The ``ppo/`` metrics of one step: batch means of rewards, weights, losses, KL and response shape."""
    metrics = {f"ppo/reward/{o}": value for o, value in zip(objectives, scores.raw.mean(dim=0).tolist())}
    metrics.update(
        {f"ppo/reward_normalized/{o}": value for o, value in zip(objectives, scores.normalized.mean(dim=0).tolist())}
    )
    metrics["ppo/reward/combined"] = scores.combined.mean().item()
    metrics["ppo/score"] = scores.penalized.mean().item()
    metrics.update({f"ppo/weight/{o}": value for o, value in weights.items()})
    if multiplier is not None:
        metrics["ppo/lagrange_multiplier"] = multiplier
    metrics.update({f"ppo/{name}": value for name, value in losses.items()})
    metrics.update(
        {
            "ppo/kl": kl.sum(dim=1).mean().item(),
            "ppo/kl_coef": kl_coef,
            "ppo/response_length": rolled.mask.sum(dim=1).mean().item(),
            "ppo/eos_fraction": rolled.ended.float().mean().item(),
        }
    )
    return metrics


def sample_rows(objectives: Sequence[str], rolled: Rollout, scores: Scores) -> list[dict[str, Any]]:
    """The first `SAMPLE_ROWS` responses with their rewards, as ``on_samples`` gets them."""
    rows = zip(
        rolled.prompts, rolled.responses, scores.raw.tolist(), scores.normalized.tolist(), scores.combined.tolist()
    )
    return [
        {
            "prompt": format_prompt(prompt),
            "response": response,
            "rewards": dict(zip(objectives, raw)),
            "normalized": dict(zip(objectives, normalized)),
            "combined": combined,
        }
        for prompt, response, raw, normalized, combined in rows
    ][:SAMPLE_ROWS]


def draw_batch(prompts: Sequence[Prompt], batch_size: int, seed: int, step: int) -> list[Prompt]:
    """The step's prompts, seeded by step so a resumed run draws the same batches as an uninterrupted one."""
    draw = random.Random(f"{seed}:{step}")
    if len(prompts) >= batch_size:
        return draw.sample(prompts, batch_size)
    return draw.choices(prompts, k=batch_size)


# --- the loop ------------------------------------------------------------------------------------------


@dataclass
class _PPORun:
    """The live objects of one run, shared by the loop, its checkpoints and its evaluations."""

    config: PPOConfig
    policy: PolicyWithValueHead
    reward_fn: RewardFn
    norm: tuple[torch.Tensor, torch.Tensor]  # (mean [O], std [O]) of the raw rewards
    scalarizer: Scalarizer
    kl_controller: KLController
    optimizer: torch.optim.Optimizer
    callbacks: Callbacks
    checkpoint_file: Path
    step: int = 0
    eval_before: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)  # the latest value of every metric reported

    def generation(self, sample: bool) -> GenerationConfig:
        tokenizer, config = self.policy.tokenizer, self.config
        sampling = {"temperature": config.temperature, "top_k": config.top_k, "top_p": config.top_p} if sample else {}
        return GenerationConfig(
            do_sample=sample,
            max_new_tokens=config.max_new_tokens,
            **sampling,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
        )

    def score(self, prompts: list[Prompt], responses: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """(raw [B, O], normalized [B, O]) rewards on the CPU."""
        raw = torch.as_tensor(self.reward_fn(prompts, responses)).detach().float().cpu()
        expected = (len(responses), len(self.config.objectives))
        if tuple(raw.shape) != expected:
            raise ValueError(f"reward_fn returned shape {tuple(raw.shape)}, expected {expected}")
        return raw, (raw - self.norm[0]) / self.norm[1]

    @torch.no_grad()
    def evaluate(self, prompts: Sequence[Prompt], reference: bool) -> dict[str, dict[str, float]]:
        """Per-objective mean raw and normalized reward of greedy responses to ``prompts``."""
        self.policy.eval()
        raws, normalized, greedy = [], [], self.generation(sample=False)
        for start in range(0, len(prompts), self.config.batch_size):
            batch = list(prompts[start : start + self.config.batch_size])
            with self.policy.reference() if reference else nullcontext():
                rolled = rollout(self.policy, batch, self.config, greedy)
            raw, norm = self.score(batch, rolled.responses)
            raws.append(raw)
            normalized.append(norm)
        raw_mean, norm_mean = torch.cat(raws).mean(dim=0).tolist(), torch.cat(normalized).mean(dim=0).tolist()
        return {o: {"raw": r, "normalized": n} for o, r, n in zip(self.config.objectives, raw_mean, norm_mean)}

    def checkpoint(self) -> None:
        state = {
            "trainable": self.policy.trainable_state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scalarizer": self.scalarizer.state_dict(),
            "kl_coef": self.kl_controller.value,
            "step": self.step,
            "config": self.config.to_dict(),
            "eval_before": self.eval_before,
            "metrics": self.metrics,
            "rng": rng_state(),
        }
        atomic_save(state, self.checkpoint_file)

    def restore(self) -> None:
        state = torch.load(self.checkpoint_file, map_location=self.policy.device, weights_only=True)
        check_resumable(state["config"], self.config.to_dict(), PPO_RESUMABLE_CHANGES, self.checkpoint_file.parent)
        self.policy.load_trainable_state_dict(state["trainable"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scalarizer.load_state_dict(state["scalarizer"])
        self.kl_controller.value = state["kl_coef"]
        self.step, self.eval_before, self.metrics = state["step"], state["eval_before"], state["metrics"]
        restore_rng_state(state["rng"])


def _start_run(
    config: PPOConfig,
    policy_factory: PolicyFactory | None,
    reward_fn: RewardFn | None,
    reward_normalization: Normalization | None,
    callbacks: Callbacks,
    checkpoint_file: Path,
) -> _PPORun:
    """The policy, reward, scalarizer, KL controller and optimizer of a run, built in a seeded order."""
    device = resolve_device(config.device)
    callbacks.stage("loading policy")
    policy = PolicyWithValueHead.from_config(config, policy_factory).to(device)
    if reward_fn is None:
        callbacks.stage("loading reward model")
        reward_fn, reward_normalization = reward_model_scorer(config, device)
    norm = normalization_tensors(config, reward_normalization)
    scalarizer = Scalarizer.from_config(config)
    kl_controller = KLController(
        config.init_kl_coef, adaptive=config.adaptive_kl, target=config.target_kl, horizon=config.kl_horizon
    )
    # Adam's eps of 1e-5 (not 1e-8) as in the reference PPO implementations; no weight decay on adapters.
    optimizer = torch.optim.AdamW(policy.trainable_parameters(), lr=config.learning_rate, eps=1e-5, weight_decay=0.0)
    return _PPORun(
        config, policy, reward_fn, norm, scalarizer, kl_controller, optimizer, callbacks, checkpoint_file
    )


def ppo_step(run: _PPORun, batch_prompts: list[Prompt]) -> tuple[dict[str, float], list[dict[str, Any]]]:
    """One rollout and update; returns the step's metrics and its sample rows."""
    config, policy, objectives = run.config, run.policy, run.config.objectives
    policy.eval()
    rolled = rollout(policy, batch_prompts, config, run.generation(sample=True))
    experience = experience_of(policy, rolled, config.temperature)
    scores = score_rollout(run.score, rolled, run.scalarizer, config.missing_eos_penalty)
    weights, multiplier, kl_coef = run.scalarizer.weights(), run.scalarizer.multiplier, run.kl_controller.value
    kl, advantages, returns = advantages_and_returns(
        scores.penalized.to(policy.device),
        experience,
        rolled.mask,
        kl_coef=kl_coef,
        kl_estimator=config.kl_estimator,
        gamma=config.gamma,
        lam=config.lam,
        whiten=config.whiten_advantages,
    )
    losses = ppo_update(policy, run.optimizer, rolled, experience, advantages, returns, config)
    run.kl_controller.update(kl.sum(dim=1).mean().item(), len(batch_prompts))
    run.scalarizer.update(run.step, dict(zip(objectives, scores.normalized.mean(dim=0).tolist())))
    metrics = step_metrics(objectives, scores, weights, multiplier, losses, kl, kl_coef, rolled)
    return metrics, sample_rows(objectives, rolled, scores)


def _ppo_loop(run: _PPORun, train_prompts: list[Prompt]) -> tuple[bool, list[float]]:
    """PPO steps until ``config.steps`` or a stop request; returns (cancelled, seconds of each step)."""
    config, step_seconds = run.config, []
    while run.step < config.steps:
        if run.callbacks.stop_requested():
            return True, step_seconds
        step_started = time.monotonic()
        step_metrics, rows = ppo_step(run, draw_batch(train_prompts, config.batch_size, config.seed, run.step))
        run.step += 1
        step_seconds.append(time.monotonic() - step_started)
        run.metrics.update(step_metrics)
        run.callbacks.metrics(run.step, step_metrics)
        if run.step % config.sample_every == 0 or run.step == config.steps:
            run.callbacks.samples(run.step, rows)
        run.callbacks.progress(run.step, config.steps)
        if run.step % config.checkpoint_every == 0 and run.step < config.steps:
            run.checkpoint()
    return False, step_seconds


def _export_adapter(run: _PPORun, eval_after: dict[str, Any], adapter_dir: Path) -> Path:
    """Write the adapters and ``morm_ppo.json``; both evaluations get their ``combined`` reward."""
    # Both evaluations combine with the weights of the last step: the objective the run ended on.
    final_weights = run.scalarizer.weights(run.config.steps - 1)
    for evaluation in (run.eval_before, eval_after):
        if evaluation:
            evaluation["combined"] = sum(final_weights[o] * evaluation[o]["normalized"] for o in run.config.objectives)
    if adapter_dir.exists():
        shutil.rmtree(adapter_dir)
    run.policy.save_pretrained(adapter_dir)
    metadata = {
        "step": run.step,
        "config": run.config.to_dict(),
        "eval_before": run.eval_before,
        "eval_after": eval_after,
    }
    (adapter_dir / ADAPTER_METADATA_FILE).write_text(json.dumps(metadata, indent=2) + "\n", encoding="utf-8")
    return adapter_dir


def train_ppo(
    config: PPOConfig,
    prompts: Sequence[Prompt],
    output_dir: str | Path,
    *,
    callbacks: Callbacks | None = None,
    policy_factory: PolicyFactory | None = None,
    reward_fn: RewardFn | None = None,
    reward_normalization: Normalization | None = None,
    resume: bool = False,
) -> PPOResult:
    """Fine-tune the policy with PPO on ``prompts`` (strings or chat turns); adapters go to ``output_dir/adapter``.

    ``policy_factory(config) -> (causal LM, tokenizer)`` replaces loading ``config.policy``.
    ``reward_fn(prompts, responses) -> [B, len(config.objectives)]`` raw rewards replaces the reward model in
    ``config.reward_model_dir``; its ``reward_normalization`` ``{objective: {"mean", "std"}}`` defaults to
    mean 0, std 1. ``resume=True`` continues from ``output_dir/checkpoint`` at its step; otherwise earlier
    ``checkpoint/`` and ``adapter/`` folders in ``output_dir`` are removed.
    """
    started = time.monotonic()
    output_dir = Path(output_dir)
    checkpoint_file = output_dir / CHECKPOINT_DIR / CHECKPOINT_FILE
    start_output_dir(output_dir, resume=resume, checkpoint_file=checkpoint_file, outputs=(CHECKPOINT_DIR, ADAPTER_DIR))
    train_prompts, eval_prompts = split_prompts(prompts, config)
    if not train_prompts:
        raise ValueError(f"No prompts to train on ({len(prompts)} given, {len(eval_prompts)} held out)")
    seed_everything(config.seed)
    callbacks = callbacks or Callbacks()
    if not resume:  # "0 / N" before the slow loading; a resumed run keeps the progress it had
        callbacks.progress(0, config.steps)
    run = _start_run(config, policy_factory, reward_fn, reward_normalization, callbacks, checkpoint_file)
    if resume:
        run.restore()
        logger.info("resuming PPO at step %d of %d", run.step, config.steps)
        callbacks.resumed(run.step)
    elif eval_prompts:
        callbacks.stage("evaluating the reference policy")
        run.eval_before = run.evaluate(eval_prompts, reference=True)
        logger.info("PPO eval before training: %s", run.eval_before)
    callbacks.stage("training")
    # Step times are measured from here: the loading and the evaluation before are not a step's.
    callbacks.progress(run.step, config.steps)
    cancelled, step_seconds = _ppo_loop(run, train_prompts)
    run.checkpoint()
    eval_after: dict[str, Any] = {}
    adapter_dir = None
    if cancelled:
        logger.info("PPO cancelled at step %d", run.step)
    else:
        callbacks.stage("evaluating the trained policy")
        eval_after = run.evaluate(eval_prompts, reference=False) if eval_prompts else {}
        callbacks.stage("saving adapters")
        adapter_dir = _export_adapter(run, eval_after, output_dir / ADAPTER_DIR)
        logger.info("PPO done after %d steps: before %s, after %s", run.step, run.eval_before, eval_after)
    return PPOResult(
        metrics=run.metrics,
        eval_before=run.eval_before,
        eval_after=eval_after,
        steps=run.step,
        seconds=time.monotonic() - started,
        cancelled=cancelled,
        adapter_dir=adapter_dir,
        seconds_per_step=sum(step_seconds) / len(step_seconds) if step_seconds else None,
    )
