"""Reward-model training: plain PyTorch/transformers, never imports Django.

Config in (`RewardModelConfig`), pairs in (`load_pairs`), metrics out through `TrainCallbacks`,
a saved model out (`RewardModel.save_pretrained` / `from_pretrained`).

The names below load on first use (PEP 562): the web process imports the config module
to validate run settings, and must not load torch by doing so.
"""

import importlib

_EXPORTS = {
    "DataReport": ".data",
    "EmbeddingCache": ".embedding_cache",
    "EncodedPairs": ".batching",
    "MODES": ".config",
    "ObjectiveCounts": ".data",
    "POOLINGS": ".config",
    "PairBatch": ".batching",
    "PreferencePair": ".data",
    "RewardModel": ".model",
    "RewardModelConfig": ".config",
    "TrainCallbacks": ".trainer",
    "TrainResult": ".trainer",
    "bradley_terry_loss": ".loss",
    "bucketed_batches": ".batching",
    "default_backbone": ".config",
    "encode_pairs": ".batching",
    "encode_texts": ".batching",
    "evaluate_reward_model": ".evaluate",
    "format_prompt": ".data",
    "grpo_reward_functions": ".trl_rewards",
    "load_pairs": ".data",
    "mean_margin": ".loss",
    "pair_text": ".data",
    "pairwise_accuracy": ".loss",
    "pool_hidden_states": ".model",
    "resolve_pooling": ".model",
    "select_trainable_pairs": ".data",
    "split_pairs": ".data",
    "train_reward_model": ".trainer",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name], __name__), name)
