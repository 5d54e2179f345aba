"""On-disk cache of pooled backbone embeddings for frozen mode.

A frozen backbone maps the same text to the same vector, so retraining the heads after new labels
only needs the embeddings of texts never seen before. Entries are keyed by a namespace (backbone
weights, tokenizer, pooling, max_length: see `embedding_namespace`) and the sha256 of
the exact text with the length of its response (what ``response`` pooling averages over), and stored
as float32 blobs in one sqlite file.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from .data import ScoredText
from .model_io import SHARED

if TYPE_CHECKING:
    from .model import RewardModel

CACHE_FILE = "embeddings.sqlite3"
_LOOKUP_CHUNK = 500  # keys per SELECT, well under sqlite's bound-parameter limit


def embedding_namespace(model: RewardModel) -> str:
    """The cache namespace of ``model``'s embeddings: what they depend on (backbone weights, tokenizer, pooling
    and max_length)."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.backbones[SHARED].state_dict().items()):
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    backend = getattr(model.tokenizer, "backend_tokenizer", None)
    digest.update(f"{type(model.tokenizer).__name__}:{len(model.tokenizer)}".encode())
    if backend is not None:
        # Truncation and padding settings change as the tokenizer is used; they are not its identity.
        definition = {k: v for k, v in json.loads(backend.to_str()).items() if k not in ("truncation", "padding")}
        digest.update(json.dumps(definition, sort_keys=True).encode())
    return f"{digest.hexdigest()[:32]}|{model.pooling}|{model.max_length}"


def cache_key(item: ScoredText) -> str:
    """The cache key of one scored text: its characters and where its response starts."""
    return hashlib.sha256(f"{item.response_chars}:{item.text}".encode()).hexdigest()


class EmbeddingCache:
    """``embed(texts)`` returns [N, H] float32 embeddings, computing only the texts not cached yet.

    ``computed`` and ``reused`` count distinct texts over this object's lifetime: after a retrain with
    100 new labels, ``computed`` is the number of new texts. ``cache_dir=None`` keeps the cache in memory.
    """

    def __init__(
        self,
        cache_dir: str | Path | None,
        namespace: str,
        compute: Callable[[Sequence[ScoredText]], torch.Tensor],
    ):
        self.namespace = namespace
        self.compute = compute
        self.computed = 0
        self.reused = 0
        if cache_dir is None:
            location = ":memory:"
        else:
            Path(cache_dir).mkdir(parents=True, exist_ok=True)
            location = str(Path(cache_dir) / CACHE_FILE)
        # Several trainers may share a cache folder: wait for another writer rather than fail.
        self._db = sqlite3.connect(location, timeout=60)
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS embeddings ("
            " namespace TEXT NOT NULL, text_sha256 TEXT NOT NULL, vector BLOB NOT NULL,"
            " PRIMARY KEY (namespace, text_sha256))"
        )
        self._db.commit()

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> EmbeddingCache:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _lookup(self, keys: list[str]) -> dict[str, np.ndarray]:
        found = {}
        for start in range(0, len(keys), _LOOKUP_CHUNK):
            chunk = keys[start : start + _LOOKUP_CHUNK]
            placeholders = ",".join("?" * len(chunk))
            rows = self._db.execute(
                f"SELECT text_sha256, vector FROM embeddings WHERE namespace = ? AND text_sha256 IN ({placeholders})",
                [self.namespace, *chunk],
            )
            found.update((key, np.frombuffer(blob, dtype=np.float32)) for key, blob in rows)
        return found

    def embed(self, texts: Sequence[ScoredText]) -> torch.Tensor:
        """[N, H] float32 embeddings of ``texts`` (in order); duplicates and cached texts are not recomputed."""
        keys = [cache_key(text) for text in texts]
        unique = dict(zip(keys, texts))
        vectors = self._lookup(list(unique))
        missing = [key for key in unique if key not in vectors]
        self.reused += len(unique) - len(missing)
        if missing:
            computed = self.compute([unique[key] for key in missing]).to(torch.float32).cpu().numpy()
            self._db.executemany(
                "INSERT OR REPLACE INTO embeddings (namespace, text_sha256, vector) VALUES (?, ?, ?)",
                [(self.namespace, key, row.tobytes()) for key, row in zip(missing, computed)],
            )
            self._db.commit()
            vectors.update(zip(missing, computed))
            self.computed += len(missing)
        if not keys:
            return torch.empty(0, 0)
        return torch.from_numpy(np.stack([vectors[key] for key in keys]).astype(np.float32, copy=False))
