"""RewardModelConfig: defaults, JSON round trip, one rejection per bad value, and a range for every number."""

import json
from pathlib import Path

import pytest

from rm_worker.training import PPOConfig, RewardModelConfig, default_backbone
from rm_worker.training.schema import field_spec


def test_defaults_point_at_the_packaged_minilm_and_weigh_objectives_equally():
    config = RewardModelConfig(objectives=["helpful", "harmless"], loss_weights={"harmless": 2.0})
    assert config.backbone == default_backbone()
    assert (Path(config.backbone) / "config.json").is_file()
    assert config.objective_weights() == {"helpful": 1.0, "harmless": 2.0}
    assert config.mode == "multi_head" and config.pooling == "response"


def test_json_round_trip():
    config = RewardModelConfig(objectives=["helpful"], backbone="/models/x", mode="frozen", max_steps=5, cache_dir="/c")
    assert RewardModelConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config


def test_from_dict_rejects_unknown_fields_and_missing_objectives():
    with pytest.raises(ValueError, match="Invalid reward model config: lr: unknown field"):
        RewardModelConfig.from_dict({"objectives": ["helpful"], "backbone": "/m", "lr": 1})
    with pytest.raises(ValueError, match="objectives: is required"):
        RewardModelConfig.from_dict({"backbone": "/m"})


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"objectives": []}, 'objectives: List should have at least 1 item after validation, not 0, got []'),
        ({"objectives": ["helpful", "helpful"]}, 'objectives: must not repeat'),
        ({"objectives": ["a.b"]}, "objectives: keys must not contain '.'"),
        ({"mode": "ensemble"}, "mode: Input should be 'multi_head', 'separate' or 'frozen', got 'ensemble'"),
        ({"pooling": "max"}, "pooling: Input should be 'auto', 'mean', 'response', 'cls' or 'last', got 'max'"),
        ({"backbone": ""}, "backbone: String should have at least 1 character, got ''"),
        ({"backbone_gguf_file": ""}, "backbone_gguf_file: String should have at least 1 character, got ''"),
        ({"backbone_gguf_file": 3}, 'backbone_gguf_file: Input should be a valid string, got 3'),
        ({"loss_weights": {"honest": 1.0}}, 'loss_weights: names unknown objective(s): honest'),
        (
            {"loss_weights": {"helpful": -1.0}},
            'loss_weights.helpful: Input should be greater than or equal to 0, got -1.0',
        ),
        ({"loss_weights": {"helpful": 0.0}}, 'loss_weights: must give at least one objective a positive weight'),
        ({"epochs": 0}, 'epochs: Input should be greater than or equal to 1, got 0'),
        ({"max_steps": 0}, 'max_steps: Input should be greater than or equal to 1, got 0'),
        ({"learning_rate": 0.0}, 'learning_rate: Input should be greater than 0, got 0.0'),
        ({"head_learning_rate": -1e-3}, 'head_learning_rate: Input should be greater than 0, got -0.001'),
        ({"batch_size": 0}, 'batch_size: Input should be greater than or equal to 1, got 0'),
        ({"batch_size": 2.5}, 'batch_size: Input should be a valid integer, got 2.5'),
        ({"max_length": -1}, 'max_length: Input should be greater than or equal to 8, got -1'),
        ({"margin_scale": -0.5}, 'margin_scale: Input should be greater than or equal to 0, got -0.5'),
        ({"rating_loss_weight": -1}, 'rating_loss_weight: Input should be greater than or equal to 0, got -1'),
        ({"rating_loss_weight": "1"}, "rating_loss_weight: Input should be a valid number, got '1'"),
        ({"warmup_ratio": 1.0}, 'warmup_ratio: Input should be less than 1, got 1.0'),
        ({"weight_decay": -0.1}, 'weight_decay: Input should be greater than or equal to 0, got -0.1'),
        ({"grad_clip": 0}, 'grad_clip: Input should be greater than 0, got 0'),
        ({"eval_every": 0}, 'eval_every: Input should be greater than or equal to 1, got 0'),
        ({"log_every": 0}, 'log_every: Input should be greater than or equal to 1, got 0'),
        ({"eval_fraction": 0.95}, 'eval_fraction: Input should be less than or equal to 0.9, got 0.95'),
        ({"eval_fraction": -0.1}, 'eval_fraction: Input should be greater than or equal to 0, got -0.1'),
        ({"use_margin": "yes"}, "use_margin: Input should be a valid boolean, got 'yes'"),
        ({"disable_dropout": 1}, 'disable_dropout: Input should be a valid boolean, got 1'),
        ({"chat_template": "yes"}, "chat_template: Input should be a valid boolean, got 'yes'"),
        ({"seed": -1}, 'seed: Input should be greater than or equal to 0, got -1'),
        ({"device": "gpu"}, "device: String should match pattern '^(auto|cpu|mps|cuda(:\\d+)?)$', got 'gpu'"),
        ({"cache_dir": ""}, "cache_dir: String should have at least 1 character, got ''"),
        ({"init_heads_from": ""}, "init_heads_from: String should have at least 1 character, got ''"),
        ({"init_heads_from": 7}, 'init_heads_from: Input should be a valid string, got 7'),
        ({"gradient_accumulation": 0}, 'gradient_accumulation: Input should be greater than or equal to 1, got 0'),
        ({"lora_r": -1}, 'lora_r: Input should be greater than or equal to 0, got -1'),
        ({"lora_r": "8"}, "lora_r: Input should be a valid integer, got '8'"),
        ({"lora_alpha": 0}, 'lora_alpha: Input should be greater than 0, got 0'),
        ({"lora_target_modules": "q_proj"}, "lora_target_modules: Input should be a valid list, got 'q_proj'"),
        ({"lora_target_modules": [""]}, "lora_target_modules.0: String should have at least 1 character, got ''"),
        (
            {"lora_r": 8, "mode": "frozen"},
            'lora_r: applies to multi_head and separate modes: frozen mode trains no backbone weights',
        ),
    ],
)
def test_making_a_config_rejects(overrides, message):
    with pytest.raises(ValueError, match="Invalid reward model config") as error:
        RewardModelConfig(**{"objectives": ["helpful"], "backbone": "/m", **overrides})
    assert message in str(error.value)


@pytest.mark.parametrize("config_class", [RewardModelConfig, PPOConfig])
def test_every_number_has_a_minimum_and_a_maximum(config_class):
    for name in config_class.model_fields:
        spec = field_spec(config_class, name)
        if spec.kind in ("int", "float"):
            assert {spec.minimum, spec.exclusive_minimum} != {None}, name
            assert {spec.maximum, spec.exclusive_maximum} != {None}, name


def test_a_huge_number_is_refused_naming_the_field_and_a_config_cannot_change():
    with pytest.raises(ValueError, match="epochs: Input should be less than or equal to 100, got 9223372036854775808"):
        RewardModelConfig(objectives=["helpful"], backbone="/m", epochs=2**63)
    config = RewardModelConfig(objectives=["helpful"], backbone="/m")
    with pytest.raises(ValueError, match="frozen"):
        config.epochs = 0
    assert config.epochs == 1
