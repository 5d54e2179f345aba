"""Loading local Hugging Face models offline: a model folder, or a GGUF file inside one."""

from __future__ import annotations

from torch import nn
from transformers import AutoTokenizer, GgufConfig


def load_pretrained(auto_class, path: str, gguf_file: str | None = None) -> tuple[nn.Module, object]:
    """``(auto_class.from_pretrained(path), AutoTokenizer.from_pretrained(path))``; never downloads.

    With ``gguf_file`` both come from that file in ``path``, its weights de-quantized to plain float
    tensors: GGUF blocks can neither be trained (reward-model backbone, LoRA policy) nor written back
    by ``save_pretrained``.
    """
    options = {"local_files_only": True}
    if gguf_file:
        options["gguf_file"] = gguf_file
    model_options = {**options, "quantization_config": GgufConfig(dequantize=True)} if gguf_file else options
    return auto_class.from_pretrained(path, **model_options), AutoTokenizer.from_pretrained(path, **options)
