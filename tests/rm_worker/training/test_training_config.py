"""RewardModelConfig: defaults, JSON round trip, and one rejection per bad value."""

import json
from pathlib import Path

import pytest

from rm_worker.training import RewardModelConfig, default_backbone


def test_defaults_point_at_the_packaged_minilm_and_weigh_objectives_equally():
    config = RewardModelConfig(objectives=["helpful", "harmless"], loss_weights={"harmless": 2.0})
    assert config.backbone == default_backbone()
    assert (Path(config.backbone) / "config.json").is_file()
    assert config.objective_weights() == {"helpful": 1.0, "harmless": 2.0}
    assert config.mode == "multi_head" and config.pooling == "response"
    config.validate()


def test_json_round_trip():
    config = RewardModelConfig(objectives=["helpful"], backbone="/models/x", mode="frozen", max_steps=5, cache_dir="/c")
    assert RewardModelConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config


def test_from_dict_rejects_unknown_fields_and_missing_objectives():
    with pytest.raises(ValueError, match="Unknown reward model config field.*: lr"):
        RewardModelConfig.from_dict({"objectives": ["helpful"], "backbone": "/m", "lr": 1})
    with pytest.raises(ValueError, match="needs 'objectives'"):
        RewardModelConfig.from_dict({"backbone": "/m"})


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"objectives": []}, "objectives must be a non-empty list"),
        ({"objectives": ["helpful", "helpful"]}, "must not repeat"),
        ({"objectives": ["a.b"]}, "must not contain '.'"),
        ({"mode": "ensemble"}, "mode must be one of"),
        ({"pooling": "max"}, "pooling must be one of"),
        ({"backbone": ""}, "backbone must be"),
        ({"backbone_gguf_file": ""}, "backbone_gguf_file must be a file name"),
        ({"backbone_gguf_file": 3}, "backbone_gguf_file must be a file name"),
        ({"loss_weights": {"honest": 1.0}}, "unknown objective(s): honest"),
        ({"loss_weights": {"helpful": -1.0}}, "loss_weights must be numbers >= 0"),
        ({"loss_weights": {"helpful": 0.0}}, "at least one objective a positive weight"),
        ({"epochs": 0}, "epochs must be a positive integer"),
        ({"max_steps": 0}, "max_steps must be a positive integer or None"),
        ({"learning_rate": 0.0}, "learning_rate must be a positive number"),
        ({"head_learning_rate": -1e-3}, "head_learning_rate must be a positive number"),
        ({"batch_size": 0}, "batch_size must be a positive integer"),
        ({"batch_size": 2.5}, "batch_size must be a positive integer"),
        ({"max_length": -1}, "max_length must be a positive integer"),
        ({"margin_scale": -0.5}, "margin_scale must be a number >= 0"),
        ({"warmup_ratio": 1.0}, "warmup_ratio must be in [0, 1)"),
        ({"weight_decay": -0.1}, "weight_decay must be a number >= 0"),
        ({"grad_clip": 0}, "grad_clip must be a positive number"),
        ({"eval_every": 0}, "eval_every must be a positive integer"),
        ({"log_every": 0}, "log_every must be a positive integer"),
        ({"eval_fraction": 0.95}, "eval_fraction must be in [0, 0.9]"),
        ({"eval_fraction": -0.1}, "eval_fraction must be in [0, 0.9]"),
        ({"use_margin": "yes"}, "use_margin must be true or false"),
        ({"disable_dropout": 1}, "disable_dropout must be true or false"),
        ({"chat_template": "yes"}, "chat_template must be true or false"),
        ({"seed": -1}, "seed must be an integer"),
        ({"device": "gpu"}, "device must be auto, cpu, cuda"),
        ({"cache_dir": ""}, "cache_dir must be a folder path or None"),
        ({"init_heads_from": ""}, "init_heads_from must be a folder path or None"),
        ({"init_heads_from": 7}, "init_heads_from must be a folder path or None"),
        ({"gradient_accumulation": 0}, "gradient_accumulation must be a positive integer"),
        ({"lora_r": -1}, "lora_r must be an integer >= 0"),
        ({"lora_r": "8"}, "lora_r must be an integer >= 0"),
        ({"lora_alpha": 0}, "lora_alpha must be a positive number"),
        ({"lora_target_modules": "q_proj"}, "lora_target_modules must be a non-empty list"),
        ({"lora_target_modules": [""]}, "lora_target_modules must be a non-empty list"),
        ({"lora_r": 8, "mode": "frozen"}, "frozen mode trains no backbone weights"),
    ],
)
def test_validate_rejects(overrides, message):
    config = RewardModelConfig(**{"objectives": ["helpful"], "backbone": "/m", **overrides})
    with pytest.raises(ValueError, match="Invalid reward model config") as error:
        config.validate()
    assert message in str(error.value)
