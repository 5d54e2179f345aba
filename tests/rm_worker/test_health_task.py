"""A real worker consumes the health task over the embedded broker and over Redis."""


import pytest
from celery import Celery
from celery.contrib.testing.worker import start_worker
from django.conf import settings

import rm_worker.tasks  # noqa: F401  (registers the shared tasks on every app)
from tests.conftest import require_redis


def _app(**conf) -> Celery:
    app = Celery("morm-test")
    app.config_from_object("django.conf:settings", namespace="CELERY")
    app.conf.update(**conf)
    return app


def _round_trip(app: Celery) -> dict:
    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
        return app.send_task("rm_worker.health_check").get(timeout=30)


def test_default_broker_is_the_embedded_filesystem_transport():
    assert settings.CELERY_BROKER_URL == "filesystem://"
    assert settings.CELERY_RESULT_BACKEND.startswith("file://")


def test_health_task_round_trip_over_the_filesystem_broker(tmp_path):
    folders = {name: tmp_path / name for name in ("queue", "processed", "control", "results")}
    for folder in folders.values():
        folder.mkdir()
    app = _app(
        broker_url="filesystem://",
        broker_transport_options={
            "data_folder_in": str(folders["queue"]),
            "data_folder_out": str(folders["queue"]),
            "processed_folder": str(folders["processed"]),
            "control_folder": str(folders["control"]),
        },
        result_backend=f"file://{folders['results']}",
    )
    assert _round_trip(app)["status"] == "ok"


@pytest.mark.redis
def test_health_task_round_trip_over_redis():
    require_redis()
    app = _app(broker_url="redis://127.0.0.1:6379/15", result_backend="redis://127.0.0.1:6379/15")
    assert _round_trip(app)["status"] == "ok"


def test_training_tasks_go_to_the_training_queue_and_others_to_default():
    router = _app().amqp.router
    assert router.route({}, "rm_worker.train_reward_model")["queue"].name == "training"
    assert router.route({}, "rm_worker.run_ppo")["queue"].name == "training"
    assert router.route({}, "rm_worker.health_check")["queue"].name == "default"
