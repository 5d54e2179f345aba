"""New comparisons sampled from a policy: ``samples`` responses per prompt, one pair per prompt by a pairing rule.

The policy is a causal LM, with the LoRA adapters of a finished PPO run loaded (``adapter_dir``) or without
them (the base policy). Pairing rules:

- ``random``: two distinct responses drawn at random.
- ``max_min``: the best and the worst response by the combined reward ``Σ_o w_o R̂_o`` of a reward model,
  ``R̂_o = (R_o − mean_o) / std_o`` with the stats the model was saved with (its held-out rewards).
- ``uncertain``: the pair the reward model tells apart least, by the smallest normalized margin
  ``min_o |R_o(A) − R_o(B)| / std_o``: close on every objective it separates least.
- ``policy_vs_reference``: one response with the adapters on, one with them off (needs ``adapter_dir``).

Two identical responses never make a pair; a prompt whose responses are all the same gives none. Sides are
shuffled (seeded), so the better response of ``max_min`` is as often A as B. No Django: the worker's
``generation_runner`` turns the pairs into an import.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, model_validator

from .data import Prompt, prompt_held_out
from .ppo_config import DEFAULT_POLICY_GGUF, _is_default_policy, default_policy
from .schema import BASIC, Device, NonEmptyText, Seed, TrainingConfig, Weight, choices

if TYPE_CHECKING:  # the web process validates configs with this module: no torch at module level
    from .run_io import Callbacks

Pairing = Literal["random", "max_min", "uncertain", "policy_vs_reference"]
PAIRINGS = choices(Pairing)
# Rules that score responses with a reward model.
SCORED_PAIRINGS = ("max_min", "uncertain")
# The ``model_a`` / ``model_b`` name of a response sampled with the adapters off (or from a policy without any).
BASE_MODEL_NAME = "base"


class GenerationConfig(TrainingConfig):
    """How to sample new comparisons from a policy: ``samples`` responses to each of ``n_prompts`` prompts, then
    one pair per prompt by ``pairing``."""

    title = "Invalid generation config"

    pairing: Pairing = Field("random", json_schema_extra={**BASIC, "choice_help": {
        "random": "two distinct responses at random",
        "max_min": "best vs worst by a reward run's combined reward",
        "uncertain": "the pair the reward run separates least",
        "policy_vs_reference": "the PPO run's policy vs its reference",
    }})
    """``random``; ``max_min`` and ``uncertain`` need a reward run; ``policy_vs_reference`` needs a PPO run (one
    response with its adapters, one without)."""

    samples: int = Field(4, ge=2, le=32, json_schema_extra=BASIC)
    """Responses sampled per prompt (K); ``policy_vs_reference`` draws half of them with the adapters off."""

    n_prompts: int = Field(32, ge=1, le=100_000, json_schema_extra=BASIC)
    """Prompts used, drawn at random (seeded) when more are available; each gives at most one comparison."""

    temperature: float = Field(1.0, gt=0, le=100, json_schema_extra=BASIC)
    """Sampling temperature."""

    max_new_tokens: int = Field(64, ge=1, le=2048, json_schema_extra=BASIC)
    """Most tokens generated per response."""

    top_p: float = Field(1.0, gt=0, le=1)
    """Nucleus sampling mass; 1.0 disables."""

    top_k: int = Field(0, ge=0, le=1_000_000)
    """Sample among the k most likely tokens; 0 disables."""

    max_prompt_length: int = Field(256, ge=1, le=32768)
    """Prompt tokens kept; longer prompts lose their beginning (the end of a conversation matters most)."""

    weights: dict[str, Weight] = Field(default_factory=dict, json_schema_extra={"modes": ["max_min"]})
    """``{objective: w_o}`` of max_min's combined reward. Left empty: the weights the PPO run ended with when one
    is given, else 1 for every head of the reward model."""

    include_heldout_prompts: bool = False
    """Also use the project's prompts that PPO holds out for its before/after evaluation (the PPO run's split,
    or a default PPO run's without one); an uploaded prompt file is always used whole."""

    batch_size: int = Field(8, ge=1, le=1024)
    """Prompts sampled at once (each ``samples`` times)."""

    policy: NonEmptyText = Field(default_factory=default_policy)
    """The base causal LM (a model name from MORM_MODEL_DIRS); a PPO run's own policy when one is given."""

    policy_gguf_file: NonEmptyText | None = None
    """GGUF file inside ``policy`` to load; left None with the default policy, its Q4_1 file."""

    seed: Seed = 0
    """Seeds the prompt draw, sampling and side order: the same settings give the same comparisons."""

    device: Device = "auto"
    """``auto`` (CUDA when available, else CPU), ``cpu``, ``cuda``, ``cuda:N`` or ``mps``."""

    @model_validator(mode="before")
    @classmethod
    def _default_gguf_file(cls, data: Any) -> Any:
        """The default policy's GGUF file, as PPOConfig fills it in."""
        if isinstance(data, dict) and data.get("policy_gguf_file") is None and (
            "policy" not in data or _is_default_policy(data["policy"])
        ):
            data = {**data, "policy_gguf_file": DEFAULT_POLICY_GGUF}
        return data

    def rule_problems(self) -> list[tuple[str, str]]:
        if self.weights and self.pairing != "max_min":
            return [("weights", "is only used by max_min pairing")]
        if self.weights and not any(self.weights.values()):
            return [("weights", "must give at least one objective a positive weight")]
        return []

    def sampling(self) -> dict[str, Any]:
        """The sampling settings a generated comparison records (``meta.generated_by``)."""
        return {name: getattr(self, name) for name in ("samples", "temperature", "top_p", "top_k", "max_new_tokens",
                                                        "seed")}


@dataclass
class GeneratedPair:
    """One new comparison; ``from_policy_a`` / ``_b`` say whether a side came with the adapters on."""

    prompt: Prompt
    response_a: str
    response_b: str
    from_policy_a: bool
    from_policy_b: bool
    # {objective: {"a": raw reward, "b": raw reward}} for the scored rules, else None
    rewards: dict[str, dict[str, float]] | None = None


@dataclass
class GenerationResult:
    pairs: list[GeneratedPair]
    prompts: int  # prompts sampled
    without_pair: int  # prompts whose responses were all identical
    cancelled: bool
    seconds: float
    # Where the reward stds came from: "reward model" (its saved held-out stats), "samples" (the std of the
    # scored responses: the model has none saved), or None when nothing was scored.
    normalization: str | None = None
    weights: dict[str, float] = field(default_factory=dict)  # max_min: the combined reward's weights


def prompts_drawn(prompts: Sequence[Prompt], config: GenerationConfig,
                  held_out: tuple[float, int] | None = None) -> list[Prompt]:
    """At most ``n_prompts`` of ``prompts`` in their order, drawn at random (seeded); with ``held_out`` =
    (eval_fraction, seed) of a PPO run, its held-out prompts are left out unless ``include_heldout_prompts``."""
    if held_out is not None and not config.include_heldout_prompts:
        prompts = [prompt for prompt in prompts if not prompt_held_out(prompt, *held_out)]
    if len(prompts) <= config.n_prompts:
        return list(prompts)
    kept = sorted(random.Random(config.seed).sample(range(len(prompts)), config.n_prompts))
    return [prompts[index] for index in kept]


def generate_pairs(
    config: GenerationConfig,
    prompts: Sequence[Prompt],
    *,
    adapter_dir: str | Path | None = None,
    reward_model_dir: str | Path | None = None,
    callbacks: Callbacks | None = None,
    policy_factory=None,
) -> GenerationResult:
    """Sample ``config.samples`` responses to each prompt and pair them by ``config.pairing``.

    ``adapter_dir``: a PPO run's ``adapter/`` folder, loaded onto ``config.policy`` (which must be the policy it
    trained). ``reward_model_dir``: a saved reward model, needed by ``max_min`` and ``uncertain``.
    ``policy_factory(config) -> (causal LM, tokenizer)`` replaces loading ``config.policy`` (tests).
    Progress is reported in prompts; ``callbacks.should_stop`` is asked between batches, and a cancelled
    generation returns no pairs.
    """
    import torch

    from .checkpoint import seed_everything
    from .config import resolve_device
    from .run_io import Callbacks

    started = time.monotonic()
    callbacks = callbacks or Callbacks()
    if config.pairing in SCORED_PAIRINGS and reward_model_dir is None:
        raise ValueError(f"{config.pairing} pairing needs a reward model")
    if config.pairing == "policy_vs_reference" and adapter_dir is None:
        raise ValueError("policy_vs_reference pairing needs a PPO run's adapters")
    callbacks.progress(0, len(prompts))
    seed_everything(config.seed)
    device = resolve_device(config.device)
    callbacks.stage("loading policy")
    policy = _policy(config, adapter_dir, policy_factory).to(device)
    scorer = None
    if config.pairing in SCORED_PAIRINGS:
        callbacks.stage("loading reward model")
        scorer = _RewardScorer(reward_model_dir, device)
    # Seeded again: loading a reward model draws random numbers (its heads' init), and random, max_min and
    # uncertain should sample the same responses from the same settings.
    seed_everything(config.seed)
    callbacks.stage("sampling")
    sampled: list[tuple[Prompt, list[str], list[bool]]] = []
    with torch.no_grad():
        for start in range(0, len(prompts), config.batch_size):
            if callbacks.stop_requested():
                return GenerationResult([], len(prompts), 0, True, time.monotonic() - started)
            batch = list(prompts[start : start + config.batch_size])
            sampled.extend(_sample(policy, batch, config))
            callbacks.progress(start + len(batch), len(prompts))
    callbacks.stage("scoring and pairing" if scorer else "pairing")
    rng = random.Random(config.seed)
    if scorer is None:
        pairs = [_unscored_pair(rng, prompt, responses, from_policy) for prompt, responses, from_policy in sampled]
        pairs = [pair for pair in pairs if pair is not None]
        return GenerationResult(pairs, len(prompts), len(sampled) - len(pairs), False, time.monotonic() - started)
    return _scored_pairs(config, scorer, sampled, rng, started, callbacks)


# --- sampling ------------------------------------------------------------------------------------------


def _policy(config: GenerationConfig, adapter_dir: str | Path | None, policy_factory):
    """The policy with the run's adapters loaded, or with fresh ones (LoRA's B starts at zero, so fresh adapters
    leave the base model's outputs unchanged)."""
    from peft.utils import load_peft_weights
    from safetensors.torch import load_file

    from .policy import VALUE_HEAD_FILE, PolicyWithValueHead, load_policy
    from .ppo import ADAPTER_METADATA_FILE

    model, tokenizer = policy_factory(config) if policy_factory else load_policy(config)
    if adapter_dir is None:
        return PolicyWithValueHead(model, tokenizer)
    adapter_dir = Path(adapter_dir)
    trained = json.loads((adapter_dir / ADAPTER_METADATA_FILE).read_text(encoding="utf-8"))["config"]
    policy = PolicyWithValueHead(model, tokenizer, lora_r=trained["lora_r"], lora_alpha=trained["lora_alpha"],
                                 target_modules=trained["lora_target_modules"])
    policy.load_trainable_state_dict({"adapter": load_peft_weights(str(adapter_dir), device="cpu"),
                                      "value_head": load_file(adapter_dir / VALUE_HEAD_FILE)})
    return policy


def _sampling_config(policy, config: GenerationConfig):
    from transformers import GenerationConfig as HFGenerationConfig

    tokenizer = policy.tokenizer
    return HFGenerationConfig(do_sample=True, max_new_tokens=config.max_new_tokens, temperature=config.temperature,
                              top_k=config.top_k, top_p=config.top_p, pad_token_id=tokenizer.pad_token_id,
                              eos_token_id=tokenizer.eos_token_id)


def _sample(policy, prompts: list[Prompt], config: GenerationConfig) -> list[tuple[Prompt, list[str], list[bool]]]:
    """``(prompt, responses, from_policy)`` per prompt: ``samples`` responses, with the adapters on; for
    ``policy_vs_reference`` the second half with them off."""
    from .ppo import rollout

    sampling = _sampling_config(policy, config)
    k = config.samples
    with_adapters = k - k // 2 if config.pairing == "policy_vs_reference" else k
    on = rollout(policy, [p for p in prompts for _ in range(with_adapters)], config, sampling).responses
    off: list[str] = []
    if with_adapters < k:
        with policy.reference():
            off = rollout(policy, [p for p in prompts for _ in range(k - with_adapters)], config, sampling).responses
    rows = []
    for index, prompt in enumerate(prompts):
        mine = on[index * with_adapters : (index + 1) * with_adapters]
        reference = off[index * (k - with_adapters) : (index + 1) * (k - with_adapters)]
        rows.append((prompt, mine + reference, [True] * len(mine) + [False] * len(reference)))
    return rows


# --- pairing -------------------------------------------------------------------------------------------


def _distinct(responses: list[str]) -> list[int]:
    """Indexes of the first occurrence of each distinct response."""
    first: dict[str, int] = {}
    for index, response in enumerate(responses):
        first.setdefault(response, index)
    return sorted(first.values())


def _pair(rng: random.Random, prompt: Prompt, responses: list[str], from_policy: list[bool], i: int, j: int,
          rewards: dict[str, list[float]] | None = None) -> GeneratedPair:
    """Responses ``i`` and ``j`` as a comparison, sides in a seeded random order."""
    if rng.random() < 0.5:
        i, j = j, i
    by_head = {o: {"a": values[i], "b": values[j]} for o, values in rewards.items()} if rewards else None
    return GeneratedPair(prompt, responses[i], responses[j], from_policy[i], from_policy[j], by_head)


def _unscored_pair(rng: random.Random, prompt: Prompt, responses: list[str],
                   from_policy: list[bool]) -> GeneratedPair | None:
    """``random``, or ``policy_vs_reference``: a random couple of distinct responses (one from each side)."""
    distinct = _distinct(responses)
    couples = [(i, j) for i, j in combinations(distinct, 2) if all(from_policy) or from_policy[i] != from_policy[j]]
    if not couples:
        return None
    return _pair(rng, prompt, responses, from_policy, *rng.choice(couples))


class _RewardScorer:
    """Every head's raw reward of (prompt, response) pairs by a saved reward model, and its normalization."""

    def __init__(self, model_dir: str | Path, device):
        from .model import RewardModel

        self.model = RewardModel.from_pretrained(model_dir, device=device)
        self.objectives = list(self.model.objectives)
        stats = self.model.normalization
        self.saved_stats = stats if all(o in stats for o in self.objectives) else None

    def rewards(self, prompts: list[Prompt], responses: list[str]) -> list[list[float]]:
        texts = [self.model.scored_text(p, r) for p, r in zip(prompts, responses, strict=True)]
        return self.model.rewards_for_texts(texts, batch_size=max(1, len(texts))).tolist()


def _scored_pairs(config: GenerationConfig, scorer: _RewardScorer, sampled, rng: random.Random,
                  started: float, callbacks: Callbacks) -> GenerationResult:
    """``max_min`` or ``uncertain`` pairs of the sampled responses, scored by ``scorer``; each prompt's scored
    responses go to ``callbacks.samples(index, rows)`` as PPO reports its samples."""
    import torch

    objectives = scorer.objectives
    raw = [torch.tensor(scorer.rewards([prompt] * len(responses), responses)) for prompt, responses, _ in sampled]
    if scorer.saved_stats is not None:
        mean = torch.tensor([float(scorer.saved_stats[o]["mean"]) for o in objectives])
        std = torch.tensor([float(scorer.saved_stats[o]["std"]) for o in objectives])
        source = "reward model"
    else:
        every = torch.cat(raw)
        mean, std, source = every.mean(dim=0), every.std(dim=0, correction=0), "samples"
    std = std.clamp(min=1e-6)
    weights = _combined_weights(config, objectives)
    weight_vector = torch.tensor([weights.get(o, 0.0) for o in objectives])
    pairs = []
    for index, ((prompt, responses, from_policy), rewards) in enumerate(zip(sampled, raw, strict=True)):
        normalized = (rewards - mean) / std
        combined = normalized @ weight_vector
        callbacks.samples(index, _sample_rows(objectives, prompt, responses, rewards, normalized, combined))
        distinct = _distinct(responses)
        if len(distinct) < 2:
            continue
        if config.pairing == "max_min":
            ranked = sorted(distinct, key=lambda index: (float(combined[index]), index))
            i, j = ranked[-1], ranked[0]
        else:
            i, j = min(combinations(distinct, 2),
                       key=lambda couple: float((normalized[couple[0]] - normalized[couple[1]]).abs().min()))
        by_head = {o: rewards[:, column].tolist() for column, o in enumerate(objectives)}
        pairs.append(_pair(rng, prompt, responses, from_policy, i, j, by_head))
    return GenerationResult(pairs, len(sampled), len(sampled) - len(pairs), False, time.monotonic() - started,
                            normalization=source, weights=weights if config.pairing == "max_min" else {})


def _sample_rows(objectives, prompt, responses, rewards, normalized, combined) -> list[dict[str, Any]]:
    """One row per response: ``{"prompt", "response", "rewards", "normalized", "combined"}`` (raw and normalized
    per objective; ``combined`` by the max_min weights)."""
    return [{"prompt": prompt, "response": response, "rewards": dict(zip(objectives, raw.tolist(), strict=True)),
             "normalized": dict(zip(objectives, norm.tolist(), strict=True)), "combined": float(total)}
            for response, raw, norm, total in zip(responses, rewards, normalized, combined, strict=True)]


def _combined_weights(config: GenerationConfig, objectives: list[str]) -> dict[str, float]:
    """``config.weights`` over the reward model's heads, or 1 for each head when none are given."""
    unknown = sorted(set(config.weights) - set(objectives))
    if unknown:
        raise ValueError(f"weights name {', '.join(unknown)}, which the reward model has no head for "
                         f"(it has {', '.join(objectives)})")
    return {o: float(config.weights[o]) for o in objectives if o in config.weights} or {o: 1.0 for o in objectives}
