"""A reward-model run on two processes (``--set devices=2``: gloo on CPU) through train_rm and the worker's code;
bad ``devices`` values refused by the command and over REST, before anything is queued."""

import json

import pytest
from django.core.management import CommandError, call_command

from annotate_app.models import MetricPoint, RewardModelRun, Role, RunStatus
from annotate_app.services.runs import run_dir
from rm_worker import reward_runner
from tests.factories import member, trainable_project
from tests.tiny_models import tiny_bert_factory

pytestmark = pytest.mark.django_db


@pytest.fixture
def project(settings, tmp_path):
    settings.MORM_ARTIFACTS_DIR = tmp_path / "artifacts"
    return trainable_project()


def test_train_rm_wait_trains_on_two_processes(project, capsys, monkeypatch):
    real = reward_runner.run_reward_training
    monkeypatch.setattr(reward_runner, "run_reward_training",
                        lambda run_id: real(run_id, backbone_factory=tiny_bert_factory))
    call_command("train_rm", project.slug, "--set", "devices=2", "--set", "max_steps=4", "--set", "eval_every=2",
                 "--set", "batch_size=2", "--set", "max_length=32", "--wait")
    out = json.loads(capsys.readouterr().out)
    assert out["status"] == "succeeded" and "eval/accuracy/harmless" in out["final_metrics"]
    run = RewardModelRun.objects.get(pk=out["run"])
    assert run.status == RunStatus.SUCCEEDED and run.config["devices"] == 2 and run.step == 4
    points = list(MetricPoint.objects.filter(reward_run=run).values_list("step", "key"))
    assert (4, "train/loss") in points
    assert len(points) == len(set(points))  # rank 0 alone writes metrics
    assert (run_dir(run) / "model").is_dir() and run.report


@pytest.mark.parametrize("argv, message", [
    (["--set", "devices=0"], "devices: Input should be greater than or equal to 1"),
    (["--set", "mode=frozen", "--set", "devices=2"], "devices: applies to multi_head and separate modes"),
    (["--set", "devices=2", "--set", "batch_size=1"], "batch_size (1) must be at least devices (2)"),
])
def test_train_rm_refuses_bad_devices(project, argv, message):
    with pytest.raises(CommandError, match=message.replace("(", r"\(").replace(")", r"\)")):
        call_command("train_rm", project.slug, *argv)
    assert not RewardModelRun.objects.exists()


@pytest.mark.parametrize("config", [{"devices": 0}, {"devices": 65}, {"devices": 2, "mode": "frozen"},
                                    {"devices": 2, "device": "cuda:1"}])
def test_the_api_refuses_bad_devices(api, project, config):
    api.force_authenticate(member(project, Role.RESEARCHER))
    response = api.post(f"/api/v1/projects/{project.slug}/reward-runs/", {"config": config}, format="json")
    assert response.status_code == 400 and "devices" in response.json()["detail"]
    assert not RewardModelRun.objects.exists()
