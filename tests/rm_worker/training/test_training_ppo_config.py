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
    with pytest.raises(ValueError, match="Invalid PPO config: lr: unknown field"):
        PPOConfig.from_dict({"objectives": ["helpful"], "reward_model_dir": "/m", "lr": 1})
    with pytest.raises(ValueError, match="reward_model_dir: is required"):
        PPOConfig.from_dict({"objectives": ["helpful"]})


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"objectives": []}, 'objectives: List should have at least 1 item after validation, not 0, got []'),
        ({"objectives": ["helpful", "helpful"]}, 'objectives: must not repeat'),
        ({"reward_model_dir": ""}, "reward_model_dir: String should have at least 1 character, got ''"),
        ({"policy": ""}, "policy: String should have at least 1 character, got ''"),
        ({"policy_gguf_file": ""}, "policy_gguf_file: String should have at least 1 character, got ''"),
        ({"lora_r": 0}, 'lora_r: Input should be greater than or equal to 1, got 0'),
        ({"lora_alpha": -1}, 'lora_alpha: Input should be greater than 0, got -1'),
        ({"lora_dropout": 1.0}, 'lora_dropout: Input should be less than 1, got 1.0'),
        (
            {"lora_target_modules": []},
            'lora_target_modules: List should have at least 1 item after validation, not 0, got []',
        ),
        ({"steps": 0}, 'steps: Input should be greater than or equal to 1, got 0'),
        ({"batch_size": 2.5}, 'batch_size: Input should be a valid integer, got 2.5'),
        ({"mini_batch_size": 8}, 'mini_batch_size: must not exceed batch_size (4), got 8'),
        ({"ppo_epochs": 0}, 'ppo_epochs: Input should be greater than or equal to 1, got 0'),
        ({"learning_rate": 0}, 'learning_rate: Input should be greater than 0, got 0'),
        ({"init_kl_coef": -0.1}, 'init_kl_coef: Input should be greater than or equal to 0, got -0.1'),
        ({"adaptive_kl": "yes"}, "adaptive_kl: Input should be a valid boolean, got 'yes'"),
        ({"target_kl": 0}, 'target_kl: Input should be greater than 0, got 0'),
        ({"kl_horizon": 0}, 'kl_horizon: Input should be greater than or equal to 1, got 0'),
        ({"kl_estimator": "k2"}, "kl_estimator: Input should be 'k1' or 'k3', got 'k2'"),
        ({"gamma": 1.5}, 'gamma: Input should be less than or equal to 1, got 1.5'),
        ({"lam": -0.1}, 'lam: Input should be greater than or equal to 0, got -0.1'),
        ({"cliprange": 0}, 'cliprange: Input should be greater than 0, got 0'),
        ({"cliprange_value": float("nan")}, 'cliprange_value: Input should be a finite number, got nan'),
        ({"vf_coef": -1}, 'vf_coef: Input should be greater than or equal to 0, got -1'),
        ({"whiten_advantages": 1}, 'whiten_advantages: Input should be a valid boolean, got 1'),
        ({"max_grad_norm": 0}, 'max_grad_norm: Input should be greater than 0, got 0'),
        ({"max_prompt_length": 0}, 'max_prompt_length: Input should be greater than or equal to 1, got 0'),
        ({"max_new_tokens": 0}, 'max_new_tokens: Input should be greater than or equal to 1, got 0'),
        ({"temperature": 0}, 'temperature: Input should be greater than 0, got 0'),
        ({"top_k": -1}, 'top_k: Input should be greater than or equal to 0, got -1'),
        ({"top_p": 0}, 'top_p: Input should be greater than 0, got 0'),
        ({"missing_eos_penalty": -1.0}, 'missing_eos_penalty: Input should be greater than or equal to 0, got -1.0'),
        ({"normalize_rewards": None}, 'normalize_rewards: Input should be a valid boolean, got None'),
        ({"eval_fraction": 0.95}, 'eval_fraction: Input should be less than or equal to 0.9, got 0.95'),
        ({"eval_max_prompts": 0}, 'eval_max_prompts: Input should be greater than or equal to 1, got 0'),
        ({"sample_every": 0}, 'sample_every: Input should be greater than or equal to 1, got 0'),
        ({"checkpoint_every": 0}, 'checkpoint_every: Input should be greater than or equal to 1, got 0'),
        ({"seed": -1}, 'seed: Input should be greater than or equal to 0, got -1'),
        ({"device": "gpu"}, "device: String should match pattern '^(auto|cpu|mps|cuda(:\\d+)?)$', got 'gpu'"),
        (
            {"scalarization": "pareto"},
            "scalarization: Input should be 'static', 'schedule' or 'constrained', got 'pareto'",
        ),
        ({"weights": {"verbose": 1.0}}, 'weights: names unknown objective(s): verbose'),
        ({"weights": {"helpful": -1.0}}, 'weights.helpful: Input should be greater than or equal to 0, got -1.0'),
        ({"weights": {"helpful": 0, "harmless": 0}}, 'weights: must give at least one objective a positive weight'),
        ({"weights": [0.4, 0.6]}, 'weights: Input should be a valid dictionary, got [0.4, 0.6]'),
        ({"scalarization": "schedule"}, 'weights_end: schedule scalarization needs weights_end'),
        (
            {"scalarization": "schedule", "weights_end": {"honest": 1}},
            'weights_end: names unknown objective(s): honest',
        ),
        ({"weights_end": {"helpful": 1}}, 'weights_end: is only used by schedule scalarization'),
        (
            {"scalarization": "constrained"},
            'constraint_objective: constrained scalarization needs constraint_objective among the objectives, got None',
        ),
        (
            {"scalarization": "constrained", "constraint_objective": "honest"},
            "constraint_objective: constrained scalarization needs constraint_objective among the objectives, got "
            "'honest'",
        ),
        (
            {"scalarization": "constrained", "constraint_objective": "harmless", "lagrange_lr": 0},
            'lagrange_lr: Input should be greater than 0, got 0',
        ),
        (
            {"scalarization": "constrained", "constraint_objective": "harmless", "lagrange_init": -1},
            'lagrange_init: Input should be greater than or equal to 0, got -1',
        ),
        (
            {"scalarization": "constrained", "constraint_objective": "harmless", "constraint_threshold": "high"},
            "constraint_threshold: Input should be a valid number, got 'high'",
        ),
        ({"constraint_objective": "harmless"}, 'constraint_objective: is only used by constrained scalarization'),
    ],
)
def test_making_a_config_rejects_each_bad_value(overrides, message):
    with pytest.raises(ValueError, match="Invalid PPO config") as error:
        config(**overrides)
    assert message in str(error.value)


def test_every_bad_field_is_named_at_once():
    with pytest.raises(ValueError) as error:
        config(steps=0, top_p=2.0, kl_estimator="k9")
    assert all(f"{name}: " in str(error.value) for name in ("steps", "top_p", "kl_estimator"))


def test_valid_scalarization_settings_pass():
    schedule = config(scalarization="schedule", weights_end={"helpful": 0.0, "harmless": 1.0})
    assert schedule.weights_end == {"helpful": 0.0, "harmless": 1.0}
    constrained = config(scalarization="constrained", constraint_objective="harmless", constraint_threshold=-0.5)
    assert constrained.constraint_threshold == -0.5


@pytest.mark.parametrize(("batch_size", "mini_batch_size"), [(4, 2), (1, 1), (3, 1), (8, 2)])
def test_the_minibatch_left_out_fits_the_batch(batch_size, mini_batch_size):
    assert config(batch_size=batch_size).mini_batch_size == mini_batch_size
    assert config(batch_size=batch_size, mini_batch_size=None).mini_batch_size == mini_batch_size
    assert config(batch_size=8, mini_batch_size=8).mini_batch_size == 8


def test_config_and_scalarization_modules_do_not_load_torch():
    # The web process validates PPO settings with these modules and must stay free of torch.
    check = (
        "import sys\n"
        "import rm_worker.training.ppo_config, rm_worker.training.scalarization\n"
        "from rm_worker.training import PPOConfig, Scalarizer\n"
        "PPOConfig(objectives=['helpful'], reward_model_dir='/m')\n"
        "Scalarizer(['helpful']).combine([[1.0]])\n"
        "print(sorted(name for name in ('torch', 'transformers', 'peft') if name in sys.modules))\n"
    )
    root = Path(__file__).resolve().parents[3]
    result = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, check=True, cwd=root)
    assert result.stdout.strip() == "[]"
