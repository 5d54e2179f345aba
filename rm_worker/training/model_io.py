"""Saving and loading a `RewardModel`: a folder that plain transformers can read too::

    morm_reward_model.json   objectives, mode, pooling, max_length, chat_template, step, training config,
                             per-head reward normalization {objective: {"mean", "std"}}
    heads.safetensors        "<objective>.weight" [1, hidden], "<objective>.bias" [1]
    backbone/                AutoModel folder (backbone_<objective>/ per objective in separate mode)
    tokenizer files          AutoTokenizer.from_pretrained(folder)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from safetensors.torch import load_file, save_file
from transformers import AutoModel, AutoTokenizer

from .config import RewardModelConfig, resolve_device
from .lora import merged_copy

if TYPE_CHECKING:
    from .model import RewardModel

METADATA_FILE = "morm_reward_model.json"
HEADS_FILE = "heads.safetensors"
FORMAT_VERSION = 1
SHARED = "shared"  # key of the one backbone in multi_head and frozen modes


def _backbone_folder(key: str) -> str:
    return "backbone" if key == SHARED else f"backbone_{key}"


def save_reward_model(model: RewardModel, directory: str | Path, *, step: int | None = None) -> Path:
    """Write ``model``'s folder (see the module docstring); returns its path."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for key, backbone in model.backbones.items():
        merged_copy(backbone).save_pretrained(directory / _backbone_folder(key))
    model.tokenizer.save_pretrained(directory)
    heads = {
        f"{objective}.{name}": tensor.detach().cpu().contiguous()
        for objective, head in model.heads.items()
        for name, tensor in head.state_dict().items()
    }
    save_file(heads, directory / HEADS_FILE)
    metadata = {
        "format_version": FORMAT_VERSION,
        "objectives": model.objectives,
        "mode": model.mode,
        "pooling": model.pooling,
        "max_length": model.max_length,
        "chat_template": model.chat_template,
        "hidden_size": model.hidden_size,
        "step": step,
        "backbones": {key: _backbone_folder(key) for key in model.backbones},
        "normalization": model.normalization,
        "config": model.training_config.to_dict() if model.training_config else None,
    }
    (directory / METADATA_FILE).write_text(json.dumps(metadata, indent=2) + "\n", encoding="utf-8")
    return directory


def load_heads(model: RewardModel, directory: str | Path) -> list[str]:
    """Copy the heads of a saved reward model into ``model``'s heads of the same objectives; returns the
    objectives copied. The saved model must read text in the same format and pool it the same way into
    vectors of the same size, and share at least one objective."""
    directory = Path(directory)
    metadata = _read_metadata(directory)
    problems = []
    if metadata["hidden_size"] != model.hidden_size:
        problems.append(f"its hidden size is {metadata['hidden_size']}, this backbone's is {model.hidden_size}")
    if metadata["pooling"] != model.pooling:
        problems.append(f"it pools {metadata['pooling']!r}, this model pools {model.pooling!r}")
    if metadata["chat_template"] != model.chat_template:
        formats = {True: "the chat template", False: "plain text"}
        problems.append(
            f"it reads {formats[metadata['chat_template']]}, this model reads {formats[model.chat_template]}"
        )
    shared = [objective for objective in model.objectives if objective in metadata["objectives"]]
    if not shared:
        problems.append(
            f"it has no head for {', '.join(model.objectives)} (it has {', '.join(metadata['objectives'])})"
        )
    if problems:
        raise ValueError(f"cannot start heads from {directory}: " + "; ".join(problems))
    heads = load_file(directory / HEADS_FILE)
    with torch.no_grad():
        for objective in shared:
            for name, parameter in model.heads[objective].named_parameters():
                parameter.copy_(heads[f"{objective}.{name}"])
    return shared


def load_reward_model(
    model_class: type[RewardModel], directory: str | Path, device: str | torch.device | None = None
) -> RewardModel:
    """A ``model_class`` from a folder written by `save_reward_model`, in eval mode, on ``device`` (default:
    CUDA if available)."""
    directory = Path(directory)
    metadata = _read_metadata(directory)
    backbones = {
        key: AutoModel.from_pretrained(directory / folder, local_files_only=True)
        for key, folder in metadata["backbones"].items()
    }
    model = model_class(
        backbones if metadata["mode"] == "separate" else backbones[SHARED],
        AutoTokenizer.from_pretrained(directory, local_files_only=True),
        metadata["objectives"],
        mode=metadata["mode"],
        pooling=metadata["pooling"],
        max_length=metadata["max_length"],
        chat_template=metadata["chat_template"],
        # Validated when it was trained; kept as written, so a model trained under wider limits still loads.
        training_config=RewardModelConfig.model_construct(**metadata["config"]) if metadata.get("config") else None,
    )
    load_heads(model, directory)
    model.normalization = metadata.get("normalization") or {}
    model.to(device if isinstance(device, torch.device) else resolve_device(device or "auto"))
    return model.eval()


def _read_metadata(directory: Path) -> dict:
    """The saved model's `METADATA_FILE`; ValueError when the folder is not a reward model of this format."""
    if not (directory / METADATA_FILE).is_file():
        raise ValueError(f"{directory} is not a saved reward model (no {METADATA_FILE})")
    metadata = json.loads((directory / METADATA_FILE).read_text(encoding="utf-8"))
    if metadata.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{directory}: unsupported reward model format {metadata.get('format_version')!r}")
    metadata.setdefault("chat_template", False)  # models saved before the option existed read plain text
    return metadata
