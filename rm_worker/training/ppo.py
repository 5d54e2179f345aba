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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import GenerationConfig

from .checkpoint import restore_rng_state, rng_state, seed_everything
from .config import resolve_device
from .data import Prompt, format_prompt, is_held_out, pair_text
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
        key = json.dumps(prompt, ensure_ascii=False, sort_keys=True)
        (held_out if is_held_out(key, config.eval_fraction, config.seed) else train).append(prompt)
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


def _rollout(
    policy: PolicyWithValueHead, prompts: list[Prompt], config: PPOConfig, generation_config: GenerationConfig
) -> Rollout:
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


# --- the loop ------------------------------------------------------------------------------------------


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
    callbacks = callbacks or Callbacks()
    output_dir = Path(output_dir)
    checkpoint_file = output_dir / CHECKPOINT_DIR / CHECKPOINT_FILE
    start_output_dir(output_dir, resume=resume, checkpoint_file=checkpoint_file, outputs=(CHECKPOINT_DIR, ADAPTER_DIR))
    train_prompts, eval_prompts = split_prompts(prompts, config)
    if not train_prompts:
        raise ValueError(f"No prompts to train on ({len(prompts)} given, {len(eval_prompts)} held out)")

    seed_everything(config.seed)
    device = resolve_device(config.device)
    policy = PolicyWithValueHead.from_config(config, policy_factory).to(device)
    tokenizer = policy.tokenizer
    if reward_fn is None:
        reward_fn, reward_normalization = reward_model_scorer(config, device)
    norm_mean, norm_std = normalization_tensors(config, reward_normalization)
    objectives = config.objectives

    scalarizer = Scalarizer.from_config(config)
    kl_controller = KLController(
        config.init_kl_coef, adaptive=config.adaptive_kl, target=config.target_kl, horizon=config.kl_horizon
    )
    # Adam's eps of 1e-5 (not 1e-8) as in the reference PPO implementations; no weight decay on adapters.
    optimizer = torch.optim.AdamW(policy.trainable_parameters(), lr=config.learning_rate, eps=1e-5, weight_decay=0.0)
    sampling = GenerationConfig(
        do_sample=True,
        max_new_tokens=config.max_new_tokens,
        temperature=config.temperature,
        top_k=config.top_k,
        top_p=config.top_p,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    greedy = GenerationConfig(
        do_sample=False,
        max_new_tokens=config.max_new_tokens,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )

    def score(batch_prompts: list[Prompt], responses: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """(raw [B, O], normalized [B, O]) rewards on the CPU."""
        raw = torch.as_tensor(reward_fn(batch_prompts, responses)).detach().float().cpu()
        expected = (len(responses), len(objectives))
        if tuple(raw.shape) != expected:
            raise ValueError(f"reward_fn returned shape {tuple(raw.shape)}, expected {expected}")
        return raw, (raw - norm_mean) / norm_std

    @torch.no_grad()
    def evaluate(reference: bool) -> dict[str, dict[str, float]]:
        """Per-objective mean raw and normalized reward of greedy responses to the held-out prompts."""
        policy.eval()
        raws, normalized = [], []
        for start in range(0, len(eval_prompts), config.batch_size):
            batch = list(eval_prompts[start : start + config.batch_size])
            if reference:
                with policy.reference():
                    rollout = _rollout(policy, batch, config, greedy)
            else:
                rollout = _rollout(policy, batch, config, greedy)
            raw, norm = score(batch, rollout.responses)
            raws.append(raw)
            normalized.append(norm)
        raw_mean, norm_mean_ = torch.cat(raws).mean(dim=0).tolist(), torch.cat(normalized).mean(dim=0).tolist()
        return {o: {"raw": r, "normalized": n} for o, r, n in zip(objectives, raw_mean, norm_mean_)}

    step = 0
    eval_before: dict[str, Any] = {}
    metrics: dict[str, float] = {}
    if resume:
        state = torch.load(checkpoint_file, map_location=device, weights_only=True)
        check_resumable(state["config"], config.to_dict(), PPO_RESUMABLE_CHANGES, checkpoint_file.parent)
        policy.load_trainable_state_dict(state["trainable"])
        optimizer.load_state_dict(state["optimizer"])
        scalarizer.load_state_dict(state["scalarizer"])
        kl_controller.value = state["kl_coef"]
        step, eval_before, metrics = state["step"], state["eval_before"], state["metrics"]
        restore_rng_state(state["rng"])
        logger.info("resuming PPO at step %d of %d", step, config.steps)
        callbacks.resumed(step)
    elif eval_prompts:
        eval_before = evaluate(reference=True)
        logger.info("PPO eval before training: %s", eval_before)

    def checkpoint() -> None:
        state = {
            "trainable": policy.trainable_state_dict(),
            "optimizer": optimizer.state_dict(),
            "scalarizer": scalarizer.state_dict(),
            "kl_coef": kl_controller.value,
            "step": step,
            "config": config.to_dict(),
            "eval_before": eval_before,
            "metrics": metrics,
            "rng": rng_state(),
        }
        atomic_save(state, checkpoint_file)

    def ppo_step(batch_prompts: list[Prompt]) -> tuple[dict[str, float], list[dict[str, Any]]]:
        """One rollout and update; returns the step's metrics and its sample rows."""
        policy.eval()
        rollout = _rollout(policy, batch_prompts, config, sampling)
        with torch.no_grad():
            old_logprobs, old_values = policy.response_logprobs(
                rollout.input_ids, rollout.attention_mask, rollout.prompt_width, config.temperature
            )
            with policy.reference():
                ref_logprobs, _ = policy.response_logprobs(
                    rollout.input_ids,
                    rollout.attention_mask,
                    rollout.prompt_width,
                    config.temperature,
                    with_values=False,
                )
        mask = rollout.mask
        old_values = old_values * mask

        raw, normalized = score(batch_prompts, rollout.responses)
        weights = scalarizer.weights()
        multiplier = scalarizer.multiplier
        combined = scalarizer.combine(normalized)
        scores = combined.clone()
        if config.missing_eos_penalty is not None:
            scores -= config.missing_eos_penalty * (~rollout.ended).float().cpu()

        kl = kl_per_token(old_logprobs, ref_logprobs, config.kl_estimator) * mask
        kl_coef = kl_controller.value
        rewards = token_rewards(scores.to(device), kl, mask, kl_coef)
        advantages, returns = compute_gae(rewards, old_values, mask, config.gamma, config.lam)
        if config.whiten_advantages:
            advantages = masked_whiten(advantages, mask)

        policy.train()
        totals = {"policy_loss": 0.0, "value_loss": 0.0, "clip_fraction": 0.0, "approx_kl": 0.0}
        updates = 0
        batch_size = len(batch_prompts)
        for _ in range(config.ppo_epochs):
            order = torch.randperm(batch_size, device=device)
            for start in range(0, batch_size, config.mini_batch_size):
                rows = order[start : start + config.mini_batch_size]
                logprobs, values = policy.response_logprobs(
                    rollout.input_ids[rows], rollout.attention_mask[rows], rollout.prompt_width, config.temperature
                )
                policy_loss, clip_fraction, approx_kl = clipped_policy_loss(
                    logprobs, old_logprobs[rows], advantages[rows], mask[rows], config.cliprange
                )
                value_loss = clipped_value_loss(
                    values, old_values[rows], returns[rows], mask[rows], config.cliprange_value
                )
                loss = policy_loss + config.vf_coef * value_loss
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(policy.trainable_parameters(), config.max_grad_norm)
                optimizer.step()
                for name, value in (
                    ("policy_loss", policy_loss),
                    ("value_loss", value_loss),
                    ("clip_fraction", clip_fraction),
                    ("approx_kl", approx_kl),
                ):
                    totals[name] += value.item()
                updates += 1
        policy.eval()

        mean_kl = kl.sum(dim=1).mean().item()
        kl_controller.update(mean_kl, batch_size)
        mean_normalized = dict(zip(objectives, normalized.mean(dim=0).tolist()))
        scalarizer.update(step, mean_normalized)

        step_metrics = {f"ppo/reward/{o}": value for o, value in zip(objectives, raw.mean(dim=0).tolist())}
        step_metrics.update({f"ppo/reward_normalized/{o}": value for o, value in mean_normalized.items()})
        step_metrics["ppo/reward/combined"] = combined.mean().item()
        step_metrics["ppo/score"] = scores.mean().item()
        step_metrics.update({f"ppo/weight/{o}": value for o, value in weights.items()})
        if multiplier is not None:
            step_metrics["ppo/lagrange_multiplier"] = multiplier
        step_metrics.update({f"ppo/{name}": total / updates for name, total in totals.items()})
        step_metrics.update(
            {
                "ppo/kl": mean_kl,
                "ppo/kl_coef": kl_coef,
                "ppo/response_length": mask.sum(dim=1).mean().item(),
                "ppo/eos_fraction": rollout.ended.float().mean().item(),
            }
        )
        sample_rows = [
            {
                "prompt": format_prompt(prompt),
                "response": response,
                "rewards": dict(zip(objectives, raw_row)),
                "normalized": dict(zip(objectives, normalized_row)),
                "combined": combined_value,
            }
            for prompt, response, raw_row, normalized_row, combined_value in zip(
                batch_prompts, rollout.responses, raw.tolist(), normalized.tolist(), combined.tolist()
            )
        ][:SAMPLE_ROWS]
        return step_metrics, sample_rows

    step_seconds: list[float] = []
    cancelled = False
    while step < config.steps:
        if callbacks.stop_requested():
            cancelled = True
            break
        step_started = time.monotonic()
        # Seeded by step, so a resumed run draws the same batches as an uninterrupted one.
        draw = random.Random(f"{config.seed}:{step}")
        if len(train_prompts) >= config.batch_size:
            batch_prompts = draw.sample(train_prompts, config.batch_size)
        else:
            batch_prompts = draw.choices(train_prompts, k=config.batch_size)
        step_metrics, sample_rows = ppo_step(batch_prompts)
        step += 1
        step_seconds.append(time.monotonic() - step_started)
        metrics.update(step_metrics)
        callbacks.metrics(step, step_metrics)
        if step % config.sample_every == 0 or step == config.steps:
            callbacks.samples(step, sample_rows)
        callbacks.progress(step, config.steps)
        if step % config.checkpoint_every == 0 and step < config.steps:
            checkpoint()

    checkpoint()
    eval_after: dict[str, Any] = {}
    adapter_dir = None
    if cancelled:
        logger.info("PPO cancelled at step %d", step)
    else:
        if eval_prompts:
            eval_after = evaluate(reference=False)
        # Both evaluations combine with the weights of the last step: the objective the run ended on.
        final_weights = scalarizer.weights(config.steps - 1)
        for evaluation in (eval_before, eval_after):
            if evaluation:
                evaluation["combined"] = sum(final_weights[o] * evaluation[o]["normalized"] for o in objectives)
        adapter_dir = output_dir / ADAPTER_DIR
        if adapter_dir.exists():
            shutil.rmtree(adapter_dir)
        policy.save_pretrained(adapter_dir)
        metadata = {
            "step": step,
            "config": config.to_dict(),
            "eval_before": eval_before,
            "eval_after": eval_after,
        }
        (adapter_dir / ADAPTER_METADATA_FILE).write_text(json.dumps(metadata, indent=2) + "\n", encoding="utf-8")
        logger.info("PPO done after %d steps: before %s, after %s", step, eval_before, eval_after)
    return PPOResult(
        metrics=metrics,
        eval_before=eval_before,
        eval_after=eval_after,
        steps=step,
        seconds=time.monotonic() - started,
        cancelled=cancelled,
        adapter_dir=adapter_dir,
        seconds_per_step=sum(step_seconds) / len(step_seconds) if step_seconds else None,
    )
