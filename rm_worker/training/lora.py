"""LoRA adapters (peft) on a backbone: the PPO policy always trains them, a reward model when ``lora_r > 0``."""

from __future__ import annotations

import copy

from peft import LoraConfig, PeftModel, get_peft_model
from peft.utils.constants import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING
from torch import nn

FALLBACK_TARGET_MODULES = ["q_proj", "v_proj"]


def lora_target_modules(model: nn.Module, requested: list[str] | None = None) -> list[str]:
    """``requested``, else peft's default modules for the model type, else ``q_proj`` and ``v_proj``."""
    if requested:
        return list(requested)
    model_type = getattr(getattr(model, "config", None), "model_type", None)
    return list(TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING.get(model_type) or FALLBACK_TARGET_MODULES)


def with_lora_adapters(
    model: nn.Module,
    *,
    r: int,
    alpha: float,
    target_modules: list[str] | None = None,
    dropout: float = 0.0,
    task_type: str | None = None,
) -> PeftModel:
    """``model`` with fresh LoRA adapters on ``target_modules`` (see `lora_target_modules`); only the
    adapters are trainable. peft injects them into ``model`` itself, which the result wraps."""
    lora = LoraConfig(
        task_type=task_type,
        r=r,
        lora_alpha=alpha,
        lora_dropout=dropout,
        target_modules=lora_target_modules(model, target_modules),
    )
    return get_peft_model(model, lora)


def merged_copy(model: nn.Module) -> nn.Module:
    """A plain transformers model with the adapters folded into its weights (``model`` is left as it is);
    a model without adapters is returned unchanged."""
    if not isinstance(model, PeftModel):
        return model
    return copy.deepcopy(model).merge_and_unload()
