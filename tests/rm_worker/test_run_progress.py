"""What a run page shows while a run is under way: k / N steps from the start, the stage, the ETA."""

from datetime import timedelta

import pytest
from django.utils import timezone

from annotate_app.models import RewardModelRun, RunStatus
from annotate_app.selectors.runs import run_eta_seconds, run_progress
from annotate_app.services.policy_runs import policy_run_create
from annotate_app.services.reward_runs import reward_run_create
from rm_worker import runtime
from rm_worker.policy_runner import run_policy_training
from rm_worker.reward_runner import run_reward_training
from rm_worker.runtime import MetricsWriter
from tests.factories import trainable_project
from tests.tiny_models import tiny_bert_factory, tiny_policy_factory

pytestmark = pytest.mark.django_db

TINY = {"eval_every": 2, "batch_size": 2, "max_length": 32, "learning_rate": 1e-3, "eval_fraction": 0.25}


@pytest.fixture
def project(settings, tmp_path):
    settings.MORM_ARTIFACTS_DIR = tmp_path / "artifacts"
    return trainable_project()


@pytest.fixture
def stages(monkeypatch):
    """Each stage the worker reports, with the run's step and total as the database had them at that moment."""
    seen = []
    original = MetricsWriter.stage

    def stage(self, text):
        original(self, text)
        row = type(self.run).objects.get(pk=self.run.pk)
        seen.append((text, row.stage, row.step, row.total_steps))

    monkeypatch.setattr(MetricsWriter, "stage", stage)
    return seen


def test_the_total_is_known_at_queue_time_when_the_config_fixes_it(project):
    assert reward_run_create(project=project, overrides={**TINY, "max_steps": 7}, enqueue=False).total_steps == 7
    frozen = reward_run_create(project=project, overrides={**TINY, "mode": "frozen"}, enqueue=False)
    assert frozen.total_steps == len(frozen.config["objectives"])  # one fit per objective
    # Epochs over the training pairs: known once the worker has read them.
    assert reward_run_create(project=project, overrides=TINY, enqueue=False).total_steps == 0


def test_a_reward_run_reports_its_total_before_loading_the_backbone_and_each_stage(project, stages):
    run = reward_run_create(project=project, overrides={**TINY, "epochs": 2, "min_steps": 0}, enqueue=False)
    assert run_reward_training(run.pk, backbone_factory=tiny_bert_factory) == RunStatus.SUCCEEDED
    run.refresh_from_db()
    assert [text for text, *_ in stages] == [
        "reading the snapshot", "loading backbone", "tokenizing", "training", "exporting the model",
        "writing the report",
    ]
    assert all(text == stored for text, stored, *_ in stages)
    loading = next(row for row in stages if row[0] == "loading backbone")
    assert loading[2:] == (0, run.total_steps) and run.total_steps > 0  # "0 / N" while the backbone loads
    assert run.step == run.total_steps and run.stage == "" and run.seconds_per_step is not None
    assert run_progress(run)["eta_seconds"] is None  # finished


def test_a_frozen_run_reports_embedding_and_fitting(project, stages):
    run = reward_run_create(project=project, overrides={**TINY, "mode": "frozen"}, enqueue=False)
    assert run_reward_training(run.pk, backbone_factory=tiny_bert_factory) == RunStatus.SUCCEEDED
    assert ["embedding", "fitting heads"] == [text for text, *_ in stages if text in ("embedding", "fitting heads")]
    run.refresh_from_db()
    # One step per objective, so a frozen run has an ETA after its first fit.
    assert run.step == run.total_steps == len(run.config["objectives"]) and run.seconds_per_step is not None


def test_a_ppo_run_shows_its_steps_from_the_start_and_its_stages(project, stages):
    reward_run = reward_run_create(project=project, enqueue=False, overrides={**TINY, "max_steps": 2})
    assert run_reward_training(reward_run.pk, backbone_factory=tiny_bert_factory) == RunStatus.SUCCEEDED
    reward_run.refresh_from_db()
    stages.clear()
    run = policy_run_create(project=project, reward_run=reward_run, enqueue=False,
                            overrides={"steps": 3, "batch_size": 2, "mini_batch_size": 2, "max_new_tokens": 4,
                                       "eval_max_prompts": 2})
    assert run.total_steps == 3  # queued: "0 / 3", not "0 / 0"
    assert run_policy_training(run.pk, policy_factory=tiny_policy_factory) == RunStatus.SUCCEEDED
    texts = [text for text, *_ in stages]
    assert texts[0] == "loading policy" and "training" in texts and texts[-1] == "saving adapters"
    assert all(total == 3 for *_, total in stages)


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_seconds_per_step_is_the_mean_of_the_recent_steps_timed_from_the_first_report(project, monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(runtime.time, "monotonic", clock)
    run = reward_run_create(project=project, overrides={**TINY, "max_steps": 30}, enqueue=False)
    writer = MetricsWriter(run, interval=3600)
    writer.progress(0, 30)
    clock.now += 100  # loading after the first report: restarted by the report at the same step
    writer.progress(0, 30)
    assert writer.seconds_per_step() is None
    for seconds in (2, 4):
        clock.now += seconds
        writer.progress(writer.step + 1, 30)
    assert writer.seconds_per_step() == 3.0
    for _ in range(runtime.STEP_TIME_WINDOW):  # older steps leave the window
        clock.now += 1
        writer.progress(writer.step + 1, 30)
    assert writer.seconds_per_step() == 1.0
    writer.flush()
    run.refresh_from_db()
    assert (run.step, run.total_steps, run.seconds_per_step) == (12, 30, 1.0) and run.step_at is not None


def test_a_new_total_is_written_at_once_and_points_stay_buffered(project):
    run = reward_run_create(project=project, overrides=TINY, enqueue=False)
    writer = MetricsWriter(run, interval=3600)
    writer.log(1, {"train/loss": 0.5})
    writer.progress(1, 40)
    run.refresh_from_db()
    assert (run.step, run.total_steps) == (1, 40) and not run.metric_points.exists()


def _running(project, **fields) -> RewardModelRun:
    run = reward_run_create(project=project, overrides=TINY, enqueue=False)
    RewardModelRun.objects.filter(pk=run.pk).update(status=RunStatus.RUNNING, **fields)
    run.refresh_from_db()
    return run


def test_the_eta_counts_down_during_a_step_and_never_below_zero(project, monkeypatch):
    reached = timezone.now()
    run = _running(project, step=4, total_steps=10, seconds_per_step=2.0, step_at=reached)
    moments = [reached + timedelta(seconds=s) for s in (0, 3, 9, 30)]
    etas = []
    for moment in moments:
        monkeypatch.setattr("annotate_app.selectors.runs.timezone.now", lambda moment=moment: moment)
        etas.append(run_eta_seconds(run))
    assert etas == [12.0, 9.0, 3.0, 0.0]  # 6 steps at 2 s, less the time on the step under way


def test_no_eta_before_the_first_step_or_without_a_total(project):
    assert run_eta_seconds(_running(project, total_steps=10)) is None
    assert run_eta_seconds(_running(project, seconds_per_step=1.0, step_at=timezone.now())) is None
