"""The reward model: a Hugging Face backbone, pooling, and one linear reward head per objective.

Saved and loaded by `model_io` (the folder layout is described there).
"""


from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import torch
from torch import nn
from transformers import AutoModel
from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES, MODEL_FOR_MASKED_LM_MAPPING_NAMES

from .batching import encode_texts, pad_right, pad_token_id, require_offsets, response_starts
from .config import MODES, POOLINGS, RewardModelConfig
from .data import Prompt, ScoredText, chat_scored_text, scored_text
from .lora import with_lora_adapters
from .loss import RatingMap
from .model_io import SHARED, load_heads, load_reward_model, save_reward_model
from .pretrained import load_pretrained


def load_backbone(path: str, gguf_file: str | None = None) -> tuple[nn.Module, object]:
    """(AutoModel, AutoTokenizer) from a local folder, or from the GGUF file ``gguf_file`` in it; never downloads."""
    return load_pretrained(AutoModel, path, gguf_file)


def is_decoder_config(backbone_config) -> bool:
    """Whether a backbone reads left to right (so only its last token has seen the whole text)."""
    if getattr(backbone_config, "is_decoder", False):
        return True
    architectures = getattr(backbone_config, "architectures", None) or []
    if any(name.endswith(("ForCausalLM", "LMHeadModel")) for name in architectures):
        return True
    # BERT-like types also have a causal-LM class; only types without a masked-LM class are decoder-only.
    model_type = getattr(backbone_config, "model_type", "")
    return model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES and model_type not in MODEL_FOR_MASKED_LM_MAPPING_NAMES


def resolve_pooling(pooling: str, backbone_config) -> str:
    """``auto`` becomes ``last`` for decoders and ``mean`` for encoders; other values stay."""
    if pooling not in POOLINGS:
        raise ValueError(f"pooling must be one of {', '.join(POOLINGS)}, got {pooling!r}")
    if pooling != "auto":
        return pooling
    return "last" if is_decoder_config(backbone_config) else "mean"


def pool_hidden_states(
    hidden: torch.Tensor,
    attention_mask: torch.Tensor,
    pooling: str,
    response_start: torch.Tensor | None = None,
) -> torch.Tensor:
    """[B, L, H] -> [B, H]: mean over non-pad tokens, the first token, the last non-pad token, or (``response``)
    mean over the non-pad tokens from ``response_start`` [B] on (right-padded rows)."""
    if pooling == "cls":
        return hidden[:, 0]
    if pooling in ("mean", "response"):
        mask = attention_mask.bool()
        if pooling == "response":
            if response_start is None:
                raise ValueError("response pooling needs the position where each response starts")
            positions = torch.arange(hidden.shape[1], device=hidden.device)
            mask = mask & (positions.unsqueeze(0) >= response_start.to(hidden.device).unsqueeze(1))
        weights = mask.to(hidden.dtype).unsqueeze(-1)
        return (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1)
    if pooling == "last":
        # Position of the last 1 in the mask: right for right padding, left padding works too.
        positions = torch.arange(hidden.shape[1], device=hidden.device)
        last = (attention_mask.long() * positions).argmax(dim=1)
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
    raise ValueError(f"unknown pooling {pooling!r}")


class RewardModel(nn.Module):
    """Backbone(s) + pooling + one ``nn.Linear(hidden, 1)`` head per objective; outputs [batch, objectives].

    ``backbone`` is one module, or in ``separate`` mode optionally ``{objective: module}``; given one
    module in ``separate`` mode, each further objective gets its own deep copy (same start, no sharing).
    The tokenizer is switched to left truncation.
    ``pooling`` defaults to ``auto`` here (the architecture's usual choice, see `resolve_pooling`); runs
    build the model with `from_config`, whose `RewardModelConfig.pooling` defaults to ``response``.
    ``disable_dropout`` keeps the backbone(s) in eval mode while training (always so in ``frozen`` mode).
    ``chat_template`` writes conversations in the tokenizer's chat template (see `scored_text`).
    ``lora_r > 0`` puts trainable LoRA adapters on each backbone and freezes its own weights
    (see `RewardModelConfig.lora_r`); `save_pretrained` writes the backbones with the adapters merged.
    """

    def __init__(
        self,
        backbone: nn.Module | Mapping[str, nn.Module],
        tokenizer,
        objectives: Sequence[str],
        *,
        mode: str = "multi_head",
        pooling: str = "auto",
        max_length: int = 256,
        disable_dropout: bool = False,
        chat_template: bool = False,
        lora_r: int = 0,
        lora_alpha: float = 16,
        lora_target_modules: list[str] | None = None,
        training_config: RewardModelConfig | None = None,
    ):
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        if not objectives:
            raise ValueError("a reward model needs at least one objective")
        self.objectives = list(objectives)
        self.mode = mode
        self.max_length = max_length
        self.training_config = training_config
        # Frozen backbones keep dropout off too, so embeddings match the cached ones.
        self.disable_dropout = disable_dropout or mode == "frozen"
        self.tokenizer = tokenizer
        self.tokenizer.truncation_side = "left"
        if chat_template and not getattr(tokenizer, "chat_template", None):
            raise ValueError("chat_template is on but the backbone's tokenizer has no chat template")
        self.chat_template = chat_template
        backbones = self._arrange_backbones(backbone)
        if lora_r:
            if mode == "frozen":
                raise ValueError("frozen mode trains no backbone weights: it takes no LoRA adapters")
            backbones = {
                key: with_lora_adapters(module, r=lora_r, alpha=lora_alpha, target_modules=lora_target_modules)
                for key, module in backbones.items()
            }
        self.backbones = nn.ModuleDict(backbones)
        first = next(iter(self.backbones.values()))
        self.pooling = resolve_pooling(pooling, first.config)
        if self.pooling == "response":
            require_offsets(tokenizer)
        positions = getattr(first.config, "max_position_embeddings", None)
        if positions is not None and max_length > positions:
            raise ValueError(f"max_length {max_length} is longer than the backbone's {positions} positions")
        self.hidden_size = first.config.hidden_size
        self.heads = nn.ModuleDict({objective: nn.Linear(self.hidden_size, 1) for objective in self.objectives})
        # Training only (ratings as a signal, see `RatingMap`): in checkpoints, not in the saved model folder.
        self.rating_map = RatingMap(len(self.objectives))
        self.normalization: dict[str, dict[str, float]] = {}
        if mode == "frozen":
            self.backbones.requires_grad_(False)
            self.backbones.eval()

    def _arrange_backbones(self, backbone: nn.Module | Mapping[str, nn.Module]) -> dict[str, nn.Module]:
        if self.mode != "separate":
            if isinstance(backbone, Mapping):
                raise ValueError(f"{self.mode} mode shares one backbone; got a mapping")
            return {SHARED: backbone}
        if isinstance(backbone, Mapping):
            if list(backbone) != self.objectives:
                raise ValueError(f"separate backbones must be keyed by {self.objectives}, got {list(backbone)}")
            return dict(backbone)
        return {
            objective: backbone if i == 0 else copy.deepcopy(backbone) for i, objective in enumerate(self.objectives)
        }

    @classmethod
    def from_config(
        cls,
        config: RewardModelConfig,
        backbone_factory: Callable[[RewardModelConfig], tuple[nn.Module, object]] | None = None,
    ) -> RewardModel:
        """A fresh model to train: ``backbone_factory(config) -> (backbone, tokenizer)``, default the local folder."""
        if backbone_factory:
            backbone, tokenizer = backbone_factory(config)
        else:
            backbone, tokenizer = load_backbone(config.backbone, config.backbone_gguf_file)
        return cls(
            backbone,
            tokenizer,
            config.objectives,
            mode=config.mode,
            pooling=config.pooling,
            max_length=config.max_length,
            disable_dropout=config.disable_dropout,
            chat_template=config.chat_template,
            lora_r=config.lora_r,
            lora_alpha=config.lora_alpha,
            lora_target_modules=config.lora_target_modules,
            training_config=config,
        )

    @property
    def device(self) -> torch.device:
        return self.heads[self.objectives[0]].weight.device

    def train(self, mode: bool = True) -> RewardModel:
        super().train(mode)
        if self.disable_dropout:
            # Eval mode turns off every kind of dropout a backbone has (modules and attention
            # probabilities); gradients still flow.
            self.backbones.eval()
        return self

    def pooled(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        response_start: torch.Tensor | None = None,
        backbone_key: str = SHARED,
    ) -> torch.Tensor:
        """[B, H] pooled hidden states of one backbone (``response_start`` [B]: for ``response`` pooling)."""
        hidden = self.backbones[backbone_key](input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return pool_hidden_states(hidden, attention_mask, self.pooling, response_start)

    def heads_on_embeddings(self, embeddings: torch.Tensor) -> torch.Tensor:
        """[B, H] pooled embeddings -> [B, O] rewards (shared backbone modes)."""
        embeddings = embeddings.to(self.heads[self.objectives[0]].weight.dtype)
        return torch.cat([self.heads[objective](embeddings) for objective in self.objectives], dim=-1)

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, response_start: torch.Tensor | None = None
    ) -> torch.Tensor:
        """[B, L] tokens -> [B, O] rewards, one column per objective in ``self.objectives`` order.

        ``response_start`` [B] (see `response_starts`) is needed by ``response`` pooling only.
        """
        if self.mode != "separate":
            return self.heads_on_embeddings(self.pooled(input_ids, attention_mask, response_start))
        columns = []
        for objective in self.objectives:
            pooled = self.pooled(input_ids, attention_mask, response_start, objective)
            pooled = pooled.to(self.heads[objective].weight.dtype)
            columns.append(self.heads[objective](pooled))
        return torch.cat(columns, dim=-1)

    @torch.no_grad()
    def _over_texts(self, texts: Sequence[ScoredText], compute, width: int, batch_size: int) -> torch.Tensor:
        """Apply ``compute(input_ids, attention_mask, response_start)`` to texts in length-sorted batches;
        rows in input order."""
        if not texts:
            return torch.empty(0, width)
        token_ids, _ = encode_texts(self.tokenizer, [item.text for item in texts], self.max_length)
        starts = response_starts(self.tokenizer, texts, self.max_length) if self.pooling == "response" else None
        order = sorted(range(len(token_ids)), key=lambda index: len(token_ids[index]))
        pad_id = pad_token_id(self.tokenizer)
        was_training = self.training
        self.eval()
        try:
            chunks = []
            for start in range(0, len(order), batch_size):
                rows = order[start : start + batch_size]
                input_ids, attention_mask = pad_right([token_ids[i] for i in rows], pad_id)
                response_start = None if starts is None else torch.tensor([starts[i] for i in rows], device=self.device)
                chunks.append(
                    compute(input_ids.to(self.device), attention_mask.to(self.device), response_start).float().cpu()
                )
        finally:
            self.train(was_training)
        results = torch.empty(len(texts), width)
        results[torch.tensor(order)] = torch.cat(chunks)
        return results

    def embed_texts(self, texts: Sequence[ScoredText], batch_size: int = 64) -> torch.Tensor:
        """[N, H] float32 pooled embeddings of the shared backbone (what frozen mode caches); see `scored_text`."""
        if self.mode == "separate":
            raise ValueError("separate mode has one backbone per objective: there is no shared embedding")
        return self._over_texts(texts, self.pooled, self.hidden_size, batch_size)

    def rewards_for_texts(self, texts: Sequence[ScoredText], batch_size: int = 32) -> torch.Tensor:
        """[N, O] raw rewards of responses in their conversations (see `scored_text`), eval mode, no gradient."""
        return self._over_texts(texts, self.forward, len(self.objectives), batch_size)

    def normalize(self, rewards: torch.Tensor) -> torch.Tensor:
        """(r - mean) / std per head, with the stats measured when the model was saved after training."""
        missing = [objective for objective in self.objectives if objective not in self.normalization]
        if missing:
            raise ValueError(f"no reward normalization stats for {', '.join(missing)}")
        mean = torch.tensor([self.normalization[o]["mean"] for o in self.objectives])
        std = torch.tensor([self.normalization[o]["std"] for o in self.objectives]).clamp(min=1e-6)
        return (rewards - mean) / std

    def scored_text(self, prompt: Prompt, response: str) -> ScoredText:
        """``response`` answering ``prompt`` as this model reads it: plain text, or the chat template's."""
        if self.chat_template:
            return chat_scored_text(self.tokenizer, prompt, response)
        return scored_text(prompt, response)

    def score_batch(
        self, prompts: Sequence[Prompt], responses: Sequence[str], *, normalized: bool = False, batch_size: int = 32
    ) -> list[dict[str, float]]:
        """``[{objective: reward}]``, one dict per (prompt, response)."""
        if len(prompts) != len(responses):
            raise ValueError(f"{len(prompts)} prompts but {len(responses)} responses")
        rewards = self.rewards_for_texts([self.scored_text(p, r) for p, r in zip(prompts, responses)], batch_size)
        if normalized:
            rewards = self.normalize(rewards)
        return [dict(zip(self.objectives, row)) for row in rewards.tolist()]

    def score(self, prompt: Prompt, response: str, *, normalized: bool = False) -> dict[str, float]:
        """``{objective: reward}`` for one response."""
        return self.score_batch([prompt], [response], normalized=normalized)[0]

    def save_pretrained(self, directory: str | Path, *, step: int | None = None) -> Path:
        """Write the model folder (see `model_io`); returns its path."""
        return save_reward_model(self, directory, step=step)

    def load_heads(self, directory: str | Path) -> list[str]:
        """Copy the heads of a saved reward model into this model's heads of the same objectives (see
        `model_io.load_heads`); returns the objectives copied."""
        return load_heads(self, directory)

    @classmethod
    def from_pretrained(cls, directory: str | Path, device: str | torch.device | None = None) -> RewardModel:
        """Load a folder written by `save_pretrained`, in eval mode, on ``device`` (default: CUDA if available)."""
        return load_reward_model(cls, directory, device)
