"""Crash recovery with a real Celery worker (and its beat) killed by SIGKILL mid-run and mid-export.

Each test starts ``celery -A config worker -B`` in its own process group, with its own var,
media, artifacts and model folders and the test database, kills the whole group with SIGKILL
in the middle of the work, starts a fresh worker, and waits (with deadlines) for the work to
be found stale, resumed from its checkpoint (runs) or rebuilt (exports), and finished. On
Redis and Postgres (production), and for the reward model also on the filesystem broker and
SQLite (``make demo``), which has no redelivery at all.
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest
from celery import Celery
from django.db import connection

from annotate_app.models import Judgment, PolicyRun, RewardModelRun, RunStatus, Snapshot, SnapshotStatus
from annotate_app.services.policy_runs import policy_run_create
from annotate_app.services.reward_runs import reward_run_create
from annotate_app.services.runs import run_dir
from annotate_app.services.snapshots import snapshot_create, snapshot_path
from tests.conftest import require, require_redis
from tests.factories import annotate, make_project, member
from tests.tiny_models import save_tiny_model

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]
PRODUCTION = [pytest.mark.redis, pytest.mark.postgres]

REPO = Path(__file__).resolve().parents[2]
REDIS_URL = "redis://127.0.0.1:6379/13"  # a database of its own: the test empties it
# Small enough that a lost worker is noticed in a few seconds.
RECOVERY_ENV = {"MORM_HEARTBEAT_SECONDS": "0.2", "MORM_STALE_AFTER_SECONDS": "2", "MORM_RECOVER_EVERY_SECONDS": "0.5"}


def wait_for(condition, *, timeout: float, what: str):
    """Poll ``condition`` until it returns something true; fail naming ``what`` at the deadline."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := condition():
            return result
        time.sleep(0.05)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")


class Worker:
    """``celery worker -B`` as a deployment runs it, in its own process group (so SIGKILL takes
    the pool child and the beat with the main process)."""

    def __init__(self, env: dict, log: Path):
        self.env, self.log = env, log
        self.process = None

    def start(self) -> "Worker":
        command = [sys.executable, "-m", "celery", "-A", "config", "worker", "-B", "--queues", "default,training",
                   "--concurrency", "1", "--loglevel", "INFO", "--hostname", f"crash-{os.getpid()}-{time.time_ns()}@%h"]
        with self.log.open("a") as log:
            self.process = subprocess.Popen(command, cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                            start_new_session=True)
        return self

    def kill(self) -> None:
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


def _production_broker(tmp_path: Path) -> tuple[dict, dict]:
    require_redis()
    require(connection.vendor == "postgresql", "the production crash tests run on Postgres (set DATABASE_URL)")
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()
    db = connection.settings_dict
    database_url = f"postgres://{db['USER']}:{db['PASSWORD'] or ''}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}"
    env = {"DATABASE_URL": database_url, "CELERY_BROKER_URL": REDIS_URL, "CELERY_RESULT_BACKEND": REDIS_URL}
    return env, {"broker_url": REDIS_URL, "result_backend": REDIS_URL}


def _demo_broker(tmp_path: Path) -> tuple[dict, dict]:
    if connection.vendor != "sqlite":
        pytest.skip("make demo's setup (filesystem broker, SQLite) runs in the SQLite suite")
    folders = tmp_path / "var" / "celery"  # where the worker's settings put them under its MORM_VAR_DIR
    for name in ("queue", "processed", "control", "results"):
        (folders / name).mkdir(parents=True)
    env = {"DATABASE_URL": f"sqlite:///{connection.settings_dict['NAME']}"}
    conf = {"broker_url": "filesystem://", "result_backend": f"file://{folders / 'results'}",
            "broker_transport_options": {"data_folder_in": str(folders / "queue"),
                                         "data_folder_out": str(folders / "queue"),
                                         "processed_folder": str(folders / "processed"),
                                         "control_folder": str(folders / "control")}}
    return env, conf


BROKERS = {"redis-postgres": _production_broker, "demo-filesystem-sqlite": _demo_broker}


@pytest.fixture
def deployment(request, settings, tmp_path):
    """Settings shared by this process and its workers (Redis and Postgres unless parametrized
    with another of BROKERS); yields ``(start_worker, send_task)``."""
    broker_env, broker_conf = BROKERS[getattr(request, "param", "redis-postgres")](tmp_path)
    settings.MORM_ARTIFACTS_DIR = tmp_path / "artifacts"
    settings.MORM_MODEL_DIRS = [tmp_path / "models"]
    _save_tiny_models(tmp_path / "models")
    env = {
        **{key: value for key, value in os.environ.items() if not key.startswith("CELERY_")},
        **RECOVERY_ENV, **broker_env,
        "MORM_VAR_DIR": str(tmp_path / "var"), "DJANGO_MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "MORM_ARTIFACTS_DIR": str(settings.MORM_ARTIFACTS_DIR), "MORM_MODEL_DIRS": str(tmp_path / "models"),
        "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1",
    }
    app = Celery("crash-test")
    app.config_from_object("django.conf:settings", namespace="CELERY")
    app.conf.update(**broker_conf)
    workers = []

    def start_worker() -> Worker:
        workers.append(Worker(env, tmp_path / "worker.log").start())
        return workers[-1]

    yield start_worker, app.send_task
    for worker in workers:
        worker.stop()
    app.close()


def _save_tiny_models(root: Path) -> None:
    save_tiny_model(root / "tiny-bert", "encoder")
    save_tiny_model(root / "tiny-llama", "decoder")


def _labelled_project():
    project = make_project(comparisons=24, overlap_k=1, gold_rate=0)
    user = member(project)
    for i in range(24):
        annotate(project, user, {"harmless": -2 if i % 2 else 2, "helpful": 1 if i % 3 else -1})
    return project


def _kill_mid_run(worker: Worker, run, checkpoint: Path) -> float:
    """SIGKILL the worker once ``run`` has written a checkpoint; returns the time of the kill."""
    wait_for(checkpoint.is_file, timeout=120, what=f"the first checkpoint of {run}")
    worker.kill()
    killed = time.monotonic()
    run.refresh_from_db()
    assert run.status == RunStatus.RUNNING, f"{run} ended before the kill; give it more steps"
    return killed


def _recovered(run, killed: float) -> tuple[float, float]:
    """Wait for the second attempt and its success; seconds from the kill to each."""
    model = type(run)
    wait_for(lambda: model.objects.filter(pk=run.pk, attempts=2).exists(), timeout=60, what=f"{run} to run again")
    running = time.monotonic() - killed
    wait_for(lambda: model.objects.get(pk=run.pk).is_finished, timeout=120, what=f"{run} to finish")
    return running, time.monotonic() - killed


@pytest.mark.parametrize("deployment", [pytest.param("redis-postgres", marks=PRODUCTION),
                                        pytest.param("demo-filesystem-sqlite", marks=pytest.mark.sqlite_only)],
                         indirect=True)
def test_a_reward_model_run_killed_mid_run_resumes_at_its_checkpoint(deployment, capsys):
    start_worker, send_task = deployment
    project = _labelled_project()
    run = reward_run_create(project=project, enqueue=False, overrides={
        "backbone": "tiny-bert", "max_steps": 600, "eval_every": 5, "log_every": 5, "batch_size": 2,
        "max_length": 32, "eval_fraction": 0.25, "device": "cpu"})
    worker = start_worker()
    send_task("rm_worker.train_reward_model", args=[run.pk])
    killed = _kill_mid_run(worker, run, run_dir(run) / "checkpoint" / "trainer_state.pt")

    start_worker()
    running, finished = _recovered(run, killed)
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert run.attempts == 2 and run.resumed_from_step > 0 and run.step == 600
    assert run.snapshot.status == SnapshotStatus.READY  # the latest labels' snapshot, built by the worker
    steps = list(run.metric_points.filter(key="train/loss").values_list("step", flat=True))
    # Each logged step once; those after the checkpoint all there (points still buffered at the kill are lost).
    assert steps == sorted(set(steps)) and set(range(run.resumed_from_step + 5, 601, 5)) <= set(steps)
    with capsys.disabled():
        print(f"\nreward-model run: resumed at step {run.resumed_from_step}; running again {running:.1f} s "
              f"and succeeded {finished:.1f} s after SIGKILL")


@pytest.mark.redis
@pytest.mark.postgres
def test_a_ppo_run_killed_mid_run_resumes_at_its_checkpoint(deployment, capsys):
    start_worker, send_task = deployment
    project = _labelled_project()
    reward_run = reward_run_create(project=project, enqueue=False, overrides={
        "backbone": "tiny-bert", "max_steps": 4, "eval_every": 2, "batch_size": 2, "max_length": 32})
    worker = start_worker()
    send_task("rm_worker.train_reward_model", args=[reward_run.pk])
    wait_for(lambda: RewardModelRun.objects.get(pk=reward_run.pk).status == RunStatus.SUCCEEDED, timeout=120,
             what="the reward model PPO needs")
    run = policy_run_create(project=project, reward_run=RewardModelRun.objects.get(pk=reward_run.pk), enqueue=False,
                            overrides={"policy": "tiny-llama", "steps": 150, "batch_size": 2, "mini_batch_size": 2,
                                       "max_new_tokens": 4, "sample_every": 5, "checkpoint_every": 2,
                                       "eval_max_prompts": 2, "device": "cpu"})
    send_task("rm_worker.run_ppo", args=[run.pk])
    killed = _kill_mid_run(worker, run, run_dir(run) / "checkpoint" / "ppo_state.pt")

    start_worker()
    running, finished = _recovered(run, killed)
    run = PolicyRun.objects.get(pk=run.pk)
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert run.attempts == 2 and run.resumed_from_step > 0 and run.step == 150
    steps = list(run.metric_points.filter(key="ppo/kl").values_list("step", flat=True))
    # Each step once; those after the checkpoint all there (points still buffered at the kill are lost).
    assert steps == sorted(set(steps)) and set(range(run.resumed_from_step + 1, 151)) <= set(steps)
    with capsys.disabled():
        print(f"\nPPO run: resumed at step {run.resumed_from_step}; running again {running:.1f} s "
              f"and succeeded {finished:.1f} s after SIGKILL")


@pytest.mark.redis
@pytest.mark.postgres
def test_an_export_killed_mid_build_is_built_again(deployment, capsys):
    start_worker, send_task = deployment
    project = _labelled_project()
    snapshot = snapshot_create(project=project, format="jsonl", background=True, enqueue=False)
    worker = start_worker()
    with _connect() as blocker:
        # Holds the export still: the worker claims the snapshot, then waits for the judgments.
        blocker.execute(f"LOCK TABLE {Judgment._meta.db_table} IN ACCESS EXCLUSIVE MODE")
        send_task("rm_worker.build_snapshot", args=[snapshot.pk])
        wait_for(lambda: Snapshot.objects.get(pk=snapshot.pk).status == SnapshotStatus.RUNNING, timeout=60,
                 what="the worker to start the export")
        worker.kill()
        killed = time.monotonic()
    start_worker()
    wait_for(lambda: Snapshot.objects.get(pk=snapshot.pk).status != SnapshotStatus.RUNNING, timeout=60,
             what="the export to be found stale")
    wait_for(lambda: Snapshot.objects.get(pk=snapshot.pk).status in (SnapshotStatus.READY, SnapshotStatus.FAILED),
             timeout=60, what="the export to be built again")
    snapshot.refresh_from_db()
    assert snapshot.status == SnapshotStatus.READY and snapshot.attempts == 2, snapshot.error
    path = snapshot_path(snapshot)
    assert path.stat().st_size == snapshot.size_bytes and not path.with_suffix(path.suffix + ".partial").exists()
    with capsys.disabled():
        print(f"\nexport: built again {time.monotonic() - killed:.1f} s after SIGKILL")


def _connect() -> psycopg.Connection:
    """A second connection to the test database, outside Django."""
    db = connection.settings_dict
    return psycopg.connect(host=db["HOST"], port=db["PORT"] or 5432, user=db["USER"], password=db["PASSWORD"] or None,
                           dbname=db["NAME"])
