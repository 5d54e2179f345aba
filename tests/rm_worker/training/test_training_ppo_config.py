"""PPOConfig: defaults, JSON round trip, one rejection per bad value, and no torch for the web process."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from rm_worker.training import PPOConfig, default_policy


def config(**overrides) -> PPOConfig:
    return PPOConfig(**{"objectives": ["helpful", "harmless"], "reward_model_dir": "/runs/rm/model", **overrides})


def test_defaults_point_at_the_packaged_smollm2_gguf():
    default = config()
    assert default.policy == default_policy()
    assert default.policy_gguf_file == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert (Path(default.policy) / default.policy_gguf_file).is_file()
    assert default.objective_weights() == {"helpful": 0.40, "harmless": 0.45}
    default.validate()
    # Another policy folder is a regular model folder unless a GGUF file is named.
    assert config(policy="/models/other").policy_gguf_file is None


def test_json_round_trip():
    original = config(
        policy="/models/p",
        scalarization="schedule",
        weights={"helpful": 1.0},
        weights_end={"harmless": 2.0},
        lora_target_modules=["q_proj"],
        kl_estimator="k3",
    )
    assert PPOConfig.from_dict(json.loads(json.dumps(original.to_dict()))) == original


def test_from_dict_rejects_unknown_fields_and_missing_required_ones():
    with pytest.raises(ValueError, match="Unknown PPO config field.*: lr"):
        PPOConfig.from_dict({"objectives": ["helpful"], "reward_model_dir": "/m", "lr": 1})
    with pytest.raises(ValueError, match="needs 'reward_model_dir'"):
        PPOConfig.from_dict({"objectives": ["helpful"]})


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"objectives": []}, "objectives must be a non-empty list"),
        ({"objectives": ["helpful", "helpful"]}, "must not repeat"),
        ({"reward_model_dir": ""}, "reward_model_dir must be"),
        ({"policy": ""}, "policy must be"),
        ({"policy_gguf_file": ""}, "policy_gguf_file must be"),
        ({"lora_r": 0}, "lora_r must be a positive integer"),
        ({"lora_alpha": -1}, "lora_alpha must be a positive number"),
        ({"lora_dropout": 1.0}, "lora_dropout must be in"),
        ({"lora_target_modules": []}, "lora_target_modules must be"),
        ({"steps": 0}, "steps must be a positive integer"),
        ({"batch_size": 2.5}, "batch_size must be a positive integer"),
        ({"mini_batch_size": 8}, "mini_batch_size \\(8\\) must not exceed batch_size"),
        ({"ppo_epochs": 0}, "ppo_epochs must be a positive integer"),
        ({"learning_rate": 0}, "learning_rate must be a positive number"),
        ({"init_kl_coef": -0.1}, "init_kl_coef must be a number >= 0"),
        ({"adaptive_kl": "yes"}, "adaptive_kl must be true or false"),
        ({"target_kl": 0}, "target_kl must be a positive number"),
        ({"kl_horizon": 0}, "kl_horizon must be a positive integer"),
        ({"kl_estimator": "k2"}, "kl_estimator must be one of k1, k3"),
        ({"gamma": 1.5}, "gamma must be in"),
        ({"lam": -0.1}, "lam must be in"),
        ({"cliprange": 0}, "cliprange must be a positive number"),
        ({"cliprange_value": float("nan")}, "cliprange_value must be a positive number"),
        ({"vf_coef": -1}, "vf_coef must be a number >= 0"),
        ({"whiten_advantages": 1}, "whiten_advantages must be true or false"),
        ({"max_grad_norm": 0}, "max_grad_norm must be a positive number"),
        ({"max_prompt_length": 0}, "max_prompt_length must be a positive integer"),
        ({"max_new_tokens": 0}, "max_new_tokens must be a positive integer"),
        ({"temperature": 0}, "temperature must be a positive number"),
        ({"top_k": -1}, "top_k must be an integer >= 0"),
        ({"top_p": 0}, "top_p must be in"),
        ({"missing_eos_penalty": -1.0}, "missing_eos_penalty must be"),
        ({"normalize_rewards": None}, "normalize_rewards must be true or false"),
        ({"eval_fraction": 0.95}, "eval_fraction must be in"),
        ({"eval_max_prompts": 0}, "eval_max_prompts must be a positive integer"),
        ({"sample_every": 0}, "sample_every must be a positive integer"),
        ({"checkpoint_every": 0}, "checkpoint_every must be a positive integer"),
        ({"seed": -1}, "seed must be an integer"),
        ({"device": "gpu"}, "device must be auto"),
        ({"scalarization": "pareto"}, "scalarization must be one of static, schedule, constrained"),
        ({"weights": {"verbose": 1.0}}, "weights names unknown objective"),
        ({"weights": {"helpful": -1.0}}, "weights must be numbers >= 0"),
        ({"weights": {"helpful": 0, "harmless": 0}}, "at least one objective a positive weight"),
        ({"weights": [0.4, 0.6]}, "weights must be an object"),
        ({"scalarization": "schedule"}, "schedule scalarization needs weights_end"),
        ({"scalarization": "schedule", "weights_end": {"honest": 1}}, "weights_end names unknown objective"),
        ({"weights_end": {"helpful": 1}}, "weights_end is only used by schedule"),
        ({"scalarization": "constrained"}, "needs constraint_objective among the objectives"),
        ({"scalarization": "constrained", "constraint_objective": "honest"}, "constraint_objective among"),
        (
            {"scalarization": "constrained", "constraint_objective": "harmless", "lagrange_lr": 0},
            "lagrange_lr must be a positive number",
        ),
        (
            {"scalarization": "constrained", "constraint_objective": "harmless", "lagrange_init": -1},
            "lagrange_init must be a number >= 0",
        ),
        (
            {"scalarization": "constrained", "constraint_objective": "harmless", "constraint_threshold": "high"},
            "constraint_threshold must be a number",
        ),
        ({"constraint_objective": "harmless"}, "constraint_objective is only used by constrained"),
    ],
)
def test_validate_rejects_each_bad_value(overrides, message):
    with pytest.raises(ValueError, match=message):
        config(**overrides).validate()


def test_validate_lists_every_problem_at_once():
    with pytest.raises(ValueError) as error:
        config(steps=0, top_p=2.0, kl_estimator="k9").validate()
    assert all(name in str(error.value) for name in ("steps", "top_p", "kl_estimator"))


def test_valid_scalarization_settings_pass():
    config(scalarization="schedule", weights_end={"helpful": 0.0, "harmless": 1.0}).validate()
    config(scalarization="constrained", constraint_objective="harmless", constraint_threshold=-0.5).validate()


def test_config_and_scalarization_modules_do_not_load_torch():
    # The web process validates PPO settings with these modules and must stay free of torch.
    check = (
        "import sys\n"
        "import rm_worker.training.ppo_config, rm_worker.training.scalarization\n"
        "from rm_worker.training import PPOConfig, Scalarizer\n"
        "PPOConfig(objectives=['helpful'], reward_model_dir='/m').validate()\n"
        "Scalarizer(['helpful']).combine([[1.0]])\n"
        "print(sorted(name for name in ('torch', 'transformers', 'peft') if name in sys.modules))\n"
    )
    root = Path(__file__).resolve().parents[3]
    result = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, check=True, cwd=root)
    assert result.stdout.strip() == "[]"
