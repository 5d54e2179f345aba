"""train_rm and run_ppo: each --set value is read as its config field takes it; a bad one is a CommandError."""

import json

import pytest
from django.core.management import CommandError, call_command

from annotate_app.models import PolicyRun, RewardModelRun
from tests.factories import labelled_project, succeeded_reward_run

pytestmark = pytest.mark.django_db


@pytest.fixture
def project():
    return labelled_project()


def test_train_rm_reads_each_value_as_its_field_takes_it(project):
    call_command("train_rm", project.slug, "--set", "mode=frozen", "--set", "epochs=2", "--set", "device=cpu",
                 "--set", "backbone_gguf_file=null", "--set", 'loss_weights={"harmless": 2}')
    config = RewardModelRun.objects.get().config
    assert (config["mode"], config["epochs"], config["device"], config["backbone_gguf_file"]) == (
        "frozen", 2, "cpu", None)
    assert config["loss_weights"] == {"harmless": 2}


@pytest.mark.parametrize(
    "setting, message",
    [
        ("epochs=two", "epochs: Input should be a valid integer, got 'two'"),
        ("epochs=1000", "epochs: Input should be less than or equal to 100, got 1000"),
        ("epochs=9223372036854775808", "epochs: Input should be less than or equal to 100"),
        # A text field takes the text as written: 0 stays the string '0'.
        ("device=0", "device: String should match pattern"),
        ("use_margin=yes", "use_margin: Input should be a valid boolean, got 'yes'"),
        ("lora_r=8", "lora_r: applies to multi_head and separate modes"),
        ("wings=2", "config: Unknown setting: wings."),
        ("epochs", "set: Expected key=value, got 'epochs'."),
    ],
)
def test_train_rm_refuses_a_bad_value_naming_the_field(project, setting, message):
    with pytest.raises(CommandError) as raised:
        call_command("train_rm", project.slug, "--set", "mode=frozen", "--set", setting)
    assert message in str(raised.value)
    assert not RewardModelRun.objects.exists()


def test_run_ppo_reads_values_and_fills_the_schemas_mode_aware_defaults(project, capsys):
    reward_run = succeeded_reward_run(project)
    call_command("run_ppo", project.slug, "--reward-run", str(reward_run.pk), "--set", "batch_size=3",
                 "--set", "kl_estimator=k3", "--set", "scalarization=constrained",
                 "--set", "constraint_objective=harmless", "--set", "constraint_threshold=0.5")
    run = PolicyRun.objects.get(pk=json.loads(capsys.readouterr().out)["run"])
    config = run.config
    assert (config["batch_size"], config["mini_batch_size"], config["kl_estimator"]) == (3, 1, "k3")
    assert (config["constraint_objective"], config["constraint_threshold"]) == ("harmless", 0.5)


def test_run_ppo_names_the_field_a_cross_field_rule_refuses(project):
    reward_run = succeeded_reward_run(project)
    with pytest.raises(CommandError, match=r"mini_batch_size: must not exceed batch_size \(2\), got 4"):
        call_command("run_ppo", project.slug, "--reward-run", str(reward_run.pk), "--set", "batch_size=2",
                     "--set", "mini_batch_size=4")
    assert not PolicyRun.objects.exists()
