"""A PPO run end to end on tiny models: task, metrics, samples, before/after, cancel, failure, command."""

import json

import pytest
from django.core.management import CommandError, call_command

from annotate_app.models import MetricPoint, PolicyRun, RunStatus
from annotate_app.services.policy_runs import policy_run_create
from annotate_app.services.runs import run_cancel
from rm_worker import policy_runner
from rm_worker.runtime import MetricsWriter
from rm_worker.tasks import run_ppo
from tests.factories import local_model, trained_reward_run
from tests.tiny_models import tiny_policy_factory

pytestmark = pytest.mark.django_db

TINY_PPO = {"steps": 4, "batch_size": 2, "mini_batch_size": 2, "max_new_tokens": 4, "sample_every": 2,
            "eval_max_prompts": 2, "checkpoint_every": 2}


@pytest.fixture
def reward_run():
    return trained_reward_run()


def test_a_ppo_run_logs_every_step_and_records_before_and_after(reward_run):
    run = policy_run_create(project=reward_run.project, reward_run=reward_run, overrides=TINY_PPO, enqueue=False)
    assert policy_runner.run_policy_training(run.pk, policy_factory=tiny_policy_factory) == RunStatus.SUCCEEDED
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED and run.step == 4
    steps = set(MetricPoint.objects.filter(policy_run=run, key="ppo/reward/combined").values_list("step", flat=True))
    assert steps == {1, 2, 3, 4}  # batched writes, but a point for every step
    keys = set(MetricPoint.objects.filter(policy_run=run).values_list("key", flat=True))
    for objective in ("helpful", "harmless", "honest"):
        assert {f"ppo/reward/{objective}", f"ppo/reward_normalized/{objective}", f"ppo/weight/{objective}"} <= keys
    assert {"ppo/kl", "ppo/kl_coef", "ppo/policy_loss", "ppo/value_loss", "ppo/clip_fraction"} <= keys
    assert set(run.eval_before) >= {"helpful", "harmless", "honest"} and set(run.eval_after) >= {"harmless"}
    assert run.samples.exists() and set(run.samples.first().rewards) == {"helpful", "harmless", "honest"}
    assert run.final_metrics["seconds_per_step"] > 0
    assert policy_runner.run_policy_training(run.pk, policy_factory=tiny_policy_factory) == "skipped"


def test_cancelled_before_start_is_skipped_and_failure_is_recorded(reward_run, settings, tmp_path):
    queued = policy_run_create(project=reward_run.project, reward_run=reward_run, overrides=TINY_PPO, enqueue=False)
    run_cancel(run=queued)
    assert run_ppo.apply(args=[queued.pk]).get() == "skipped"
    local_model(settings, tmp_path / "models", "broken")  # its config.json is empty
    broken = policy_run_create(project=reward_run.project, reward_run=reward_run,
                               overrides={**TINY_PPO, "policy": "broken"}, enqueue=False)
    with pytest.raises(OSError):
        policy_runner.run_policy_training(broken.pk)
    broken.refresh_from_db()
    assert broken.status == RunStatus.FAILED and "broken/config.json' is not a valid JSON file" in broken.error


def test_cancel_during_training_stops_between_steps(reward_run, monkeypatch):
    run = policy_run_create(project=reward_run.project, reward_run=reward_run, overrides={**TINY_PPO, "steps": 40},
                            enqueue=False)
    monkeypatch.setattr("rm_worker.runtime.CANCEL_POLL_SECONDS", 0.0)
    original = MetricsWriter.progress

    def progress(self, step, total):
        original(self, step, total)
        if step == 2:
            run_cancel(run=PolicyRun.objects.get(pk=run.pk))

    monkeypatch.setattr(MetricsWriter, "progress", progress)
    assert policy_runner.run_policy_training(run.pk, policy_factory=tiny_policy_factory) == RunStatus.CANCELLED
    run.refresh_from_db()
    assert run.status == RunStatus.CANCELLED and run.step < 40


def test_run_ppo_command_with_weights_and_wait(reward_run, capsys, monkeypatch):
    real = policy_runner.run_policy_training
    monkeypatch.setattr(policy_runner, "run_policy_training",
                        lambda run_id: real(run_id, policy_factory=tiny_policy_factory))
    call_command("run_ppo", reward_run.project.slug, "--reward-run", str(reward_run.pk),
                 "--weights", "helpful=0,harmless=1.0,honest=0", *[f"--set={k}={v}" for k, v in TINY_PPO.items()],
                 "--wait")
    out = json.loads(capsys.readouterr().out)
    assert out["status"] == "succeeded" and set(out["eval_after"]) >= {"harmless"}
    assert PolicyRun.objects.get(pk=out["run"]).config["weights"] == {"helpful": 0.0, "harmless": 1.0, "honest": 0.0}


@pytest.mark.parametrize("argv, message", [
    (["--weights", "harmless=lots"], "objective=number"),
    (["--weights", "style=1"], "style"),
    (["--set", "steps=0"], "steps"),
])
def test_run_ppo_rejects_bad_input(reward_run, argv, message):
    with pytest.raises(CommandError, match=message):
        call_command("run_ppo", reward_run.project.slug, "--reward-run", str(reward_run.pk), *argv)


def test_run_ppo_needs_a_reward_run_of_the_project(reward_run):
    with pytest.raises(CommandError, match="No reward-model run"):
        call_command("run_ppo", reward_run.project.slug, "--reward-run", "999999")
