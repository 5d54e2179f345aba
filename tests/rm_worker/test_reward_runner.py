"""The reward-model run end to end on a tiny model: task, metrics in batches, cancel, failure, commands."""

import json
import shutil

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command

from annotate_app.models import MetricPoint, RewardModelRun, RunStatus
from annotate_app.services.reward_runs import reward_run_create
from annotate_app.services.runs import run_cancel, run_dir
from rm_worker import reward_runner
from rm_worker.reward_runner import run_reward_training
from rm_worker.runtime import MetricsWriter
from rm_worker.tasks import train_reward_model
from rm_worker.training import RewardModel
from tests.factories import annotate, local_model, make_project, member, trainable_project
from tests.tiny_models import tiny_bert_factory

pytestmark = pytest.mark.django_db

TINY = {"max_steps": 6, "eval_every": 2, "batch_size": 2, "max_length": 32, "learning_rate": 1e-3,
        "eval_fraction": 0.25}


@pytest.fixture
def project(settings, tmp_path):
    settings.MORM_ARTIFACTS_DIR = tmp_path / "artifacts"
    return trainable_project()


def test_a_run_trains_writes_metrics_and_succeeds(project):
    run = reward_run_create(project=project, overrides=TINY, enqueue=False)
    assert run_reward_training(run.pk, backbone_factory=tiny_bert_factory) == RunStatus.SUCCEEDED
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED and run.step == 6 and run.total_steps == 6
    assert {"eval/accuracy/harmless", "eval/accuracy/helpful"} <= set(run.final_metrics)
    keys = set(MetricPoint.objects.filter(reward_run=run).values_list("key", flat=True))
    assert {"train/loss", "train/loss/harmless", "eval/accuracy/harmless", "eval/margin/helpful"} <= keys
    assert run.data_report["objectives"]["harmless"]["pairs"] == 8
    assert (run_dir(run) / "model").is_dir()
    assert run_reward_training(run.pk, backbone_factory=tiny_bert_factory) == "skipped"  # idempotent


def test_a_lora_run_exports_a_plain_model(project):
    run = reward_run_create(project=project, overrides={**TINY, "lora_r": 4, "lora_alpha": 8}, enqueue=False)
    assert run_reward_training(run.pk, backbone_factory=tiny_bert_factory) == RunStatus.SUCCEEDED
    model = RewardModel.from_pretrained(run_dir(run) / "model")
    assert model.training_config.lora_r == 4 and not any("lora" in name for name, _ in model.named_parameters())


def test_a_run_can_start_its_heads_from_a_finished_run(project):
    """LP-FT from the services: a frozen run, then a multi_head run whose heads start from its export."""
    probe = reward_run_create(project=project, overrides={**TINY, "mode": "frozen"}, enqueue=False)
    assert run_reward_training(probe.pk, backbone_factory=tiny_bert_factory) == RunStatus.SUCCEEDED
    probe.refresh_from_db()
    run = reward_run_create(project=project, overrides=TINY, init_heads_run=probe, enqueue=False)
    assert run.config["init_heads_from"] == str(run_dir(probe) / "model")
    assert run_reward_training(run.pk, backbone_factory=tiny_bert_factory) == RunStatus.SUCCEEDED


def test_heads_come_only_from_a_succeeded_run_of_the_same_project(project):
    queued = reward_run_create(project=project, overrides=TINY, enqueue=False)
    with pytest.raises(ValidationError, match="heads come from a succeeded one"):
        reward_run_create(project=project, overrides=TINY, init_heads_run=queued, enqueue=False)
    other = make_project(slug="other", comparisons=2, overlap_k=1, gold_rate=0)
    annotate(other, member(other), {"harmless": 1})
    with pytest.raises(ValidationError, match="belongs to another project"):
        reward_run_create(project=other, overrides=TINY, init_heads_run=queued, enqueue=False)


def test_cancel_requested_stops_between_steps(project, monkeypatch):
    run = reward_run_create(project=project, overrides={**TINY, "max_steps": 50}, enqueue=False)
    monkeypatch.setattr("rm_worker.runtime.CANCEL_POLL_SECONDS", 0.0)
    seen = []
    original = MetricsWriter.progress

    def progress(self, step, total):
        original(self, step, total)
        seen.append(step)
        if step == 3:  # a researcher presses Cancel while step 3 is reported
            run_cancel(run=RewardModelRun.objects.get(pk=run.pk))

    monkeypatch.setattr(MetricsWriter, "progress", progress)
    assert run_reward_training(run.pk, backbone_factory=tiny_bert_factory) == RunStatus.CANCELLED
    run.refresh_from_db()
    assert run.status == RunStatus.CANCELLED and max(seen) < 50


def test_the_before_step_hook_runs_before_each_step_after_the_last_one_was_logged(project, monkeypatch):
    """The hook the browser tests' step gate uses (tests/browser/conftest.py)."""
    run = reward_run_create(project=project, overrides=TINY, enqueue=False)
    seen = []
    monkeypatch.setattr("rm_worker.runtime.before_step", lambda writer: seen.append(writer.step))
    assert run_reward_training(run.pk, backbone_factory=tiny_bert_factory) == RunStatus.SUCCEEDED
    assert seen == [0, 1, 2, 3, 4, 5]


def test_a_failure_is_recorded_with_its_message(project, settings, tmp_path):
    local_model(settings, tmp_path / "models", "broken")  # its config.json is empty
    run = reward_run_create(project=project, overrides={**TINY, "backbone": "broken"}, enqueue=False)
    with pytest.raises(OSError):
        run_reward_training(run.pk)
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED and "broken/config.json' is not a valid JSON file" in run.error


def test_the_worker_loads_the_named_model_from_its_own_roots_and_caches_where_the_operator_says(
    project, settings, tmp_path
):
    folder = local_model(settings, tmp_path / "models", "encoder")
    settings.MORM_EMBEDDING_CACHE_DIR = str(tmp_path / "cache")
    loaded = []

    def factory(config):
        loaded.append(config.backbone)
        return tiny_bert_factory(config)

    run = reward_run_create(project=project, overrides={**TINY, "backbone": "encoder", "mode": "frozen"},
                            enqueue=False)
    assert run.config["backbone"] == "encoder" and run.config["cache_dir"] is None
    assert run_reward_training(run.pk, backbone_factory=factory) == RunStatus.SUCCEEDED
    assert loaded == [str(folder)]
    assert [path.name for path in (tmp_path / "cache").iterdir()] == [f"project-{project.pk}"]


def test_a_model_gone_from_the_workers_roots_fails_the_run_naming_it(project, settings, tmp_path):
    folder = local_model(settings, tmp_path / "models", "gone")
    run = reward_run_create(project=project, overrides={**TINY, "backbone": "gone"}, enqueue=False)
    shutil.rmtree(folder)
    with pytest.raises(FileNotFoundError):
        run_reward_training(run.pk, backbone_factory=tiny_bert_factory)
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED and "backbone: no model 'gone'" in run.error


def test_the_celery_task_is_declared_for_the_training_queue_and_idempotent(project):
    assert train_reward_model.acks_late and train_reward_model.time_limit and train_reward_model.max_retries == 3
    run = reward_run_create(project=project, overrides=TINY, enqueue=False)
    run_cancel(run=run)
    assert train_reward_model.apply(args=[run.pk]).get() == "skipped"  # a cancelled run is not started


def test_train_rm_wait_and_evaluate_rm_commands(project, tmp_path, capsys, monkeypatch):
    real = reward_runner.run_reward_training
    monkeypatch.setattr(reward_runner, "run_reward_training",
                        lambda run_id: real(run_id, backbone_factory=tiny_bert_factory))
    call_command("train_rm", project.slug, "--set", "max_steps=4", "--set", "eval_every=2", "--set", "batch_size=2",
                 "--set", "max_length=32", "--wait")
    out = json.loads(capsys.readouterr().out)
    assert out["status"] == "succeeded" and "eval/accuracy/harmless" in out["final_metrics"]
    hh = tmp_path / "eval.jsonl"
    record = {"chosen": "\n\nHuman: hi\n\nAssistant: good", "rejected": "\n\nHuman: hi\n\nAssistant: bad"}
    hh.write_text(json.dumps(record) + "\n")
    call_command("evaluate_rm", str(out["run"]), str(hh), "--objective", "harmless")
    result = json.loads(capsys.readouterr().out)
    assert result["objectives"]["harmless"]["pairs"] == 1
    assert result["objectives"]["harmless"]["accuracy"] in (0.0, 1.0)
    assert result["objectives"]["helpful"]["pairs"] == 0


@pytest.mark.parametrize("argv, message", [
    (["--set", "mode=giant"], "mode"),
    (["--set", "nonsense"], "key=value"),
    (["--snapshot", "999"], "No snapshot"),
    (["--set", "mode=frozen", "--set", "lora_r=4"], "frozen mode trains no backbone weights"),
])
def test_train_rm_rejects_bad_input(project, argv, message):
    with pytest.raises(CommandError, match=message):
        call_command("train_rm", project.slug, *argv)


def test_evaluate_rm_rejects_unfinished_runs_and_missing_files(project, tmp_path):
    run = reward_run_create(project=project, overrides=TINY, enqueue=False)
    with pytest.raises(CommandError, match="queued"):
        call_command("evaluate_rm", str(run.pk), str(tmp_path / "x.jsonl"))
    with pytest.raises(CommandError, match="No reward-model run"):
        call_command("evaluate_rm", "999999", str(tmp_path / "x.jsonl"))
