"""Reward-model training: plain PyTorch/transformers, never imports Django.

Config in (`RewardModelConfig`), pairs in (`load_pairs`), metrics out through `Callbacks`,
a saved model out (`RewardModel.save_pretrained` / `from_pretrained`).

The names below load on first use (PEP 562): the web process imports the config module
to validate run settings, and must not load torch by doing so.
"""

import importlib

_EXPORTS = {
    "Callbacks": ".run_io",
    "DEFAULT_OBJECTIVE_WEIGHTS": ".scalarization",
    "DataReport": ".data",
    "EmbeddingCache": ".embedding_cache",
    "EncodedPairs": ".batching",
    "HumanJudgment": ".data",
    "KLController": ".ppo",
    "KL_ESTIMATORS": ".ppo_config",
    "MODES": ".config",
    "ObjectiveCounts": ".data",
    "POOLINGS": ".config",
    "PPOConfig": ".ppo_config",
    "PPOResult": ".ppo",
    "PairBatch": ".batching",
    "PolicyWithValueHead": ".policy",
    "PreferencePair": ".data",
    "RewardModel": ".model",
    "RewardModelConfig": ".config",
    "SCALARIZATION_MODES": ".scalarization",
    "Scalarizer": ".scalarization",
    "ScoredText": ".data",
    "TrainResult": ".trainer",
    "bradley_terry_loss": ".loss",
    "bucketed_batches": ".batching",
    "chat_scored_text": ".data",
    "clipped_policy_loss": ".ppo",
    "clipped_value_loss": ".ppo",
    "compute_gae": ".ppo",
    "default_backbone": ".config",
    "default_policy": ".ppo_config",
    "encode_pairs": ".batching",
    "encode_texts": ".batching",
    "evaluate_reward_model": ".evaluate",
    "format_prompt": ".data",
    "format_report": ".report",
    "grpo_reward_functions": ".trl_rewards",
    "human_judgments": ".data",
    "kl_per_token": ".ppo",
    "load_pairs": ".data",
    "load_policy": ".policy",
    "masked_whiten": ".ppo",
    "mean_margin": ".loss",
    "pair_text": ".data",
    "pairwise_accuracy": ".loss",
    "pool_hidden_states": ".model",
    "resolve_pooling": ".model",
    "response_mask": ".ppo",
    "response_starts": ".batching",
    "reward_model_report": ".report",
    "scored_text": ".data",
    "select_trainable_pairs": ".data",
    "split_pairs": ".data",
    "token_rewards": ".ppo",
    "train_ppo": ".ppo",
    "train_reward_model": ".trainer",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name], __name__), name)
