"""The task names the web side sends (annotate_app/services/dispatch.py) are the ones the worker
registers, and routing puts training on the ``training`` queue: a renamed task fails here, not in
a deployment whose runs stay queued forever."""

import pytest
from celery import current_app

import rm_worker.tasks  # noqa: F401  (registers the shared tasks on the app)
from annotate_app.services.dispatch import (
    ROUND_EVAL_TASK,
    ROUND_START_TASK,
    RUN_TASKS,
    SCORE_TASK,
    SNAPSHOT_TASK,
    WEBHOOK_TASK,
)


def _queue(name: str) -> str:
    return current_app.amqp.router.route({}, name)["queue"].name


@pytest.mark.parametrize("name", [*RUN_TASKS.values(), SNAPSHOT_TASK, SCORE_TASK, WEBHOOK_TASK])
def test_every_name_sent_is_a_registered_task(name):
    assert name in current_app.tasks


def test_training_and_scoring_go_to_the_training_queue_and_exports_to_the_default_one():
    assert {_queue(name) for name in [*RUN_TASKS.values(), SCORE_TASK]} == {"training"}
    assert _queue(SNAPSHOT_TASK) == "default"
    assert _queue(WEBHOOK_TASK) == "default"


def test_the_loop_tasks_are_registered_and_a_round_is_measured_on_the_training_queue():
    assert {ROUND_START_TASK, ROUND_EVAL_TASK} <= set(current_app.tasks)
    assert (_queue(ROUND_START_TASK), _queue(ROUND_EVAL_TASK)) == ("default", "training")


def test_ranking_the_queue_is_registered_and_runs_on_the_training_queue():
    from annotate_app.services.dispatch import RANK_TASK

    assert RANK_TASK in current_app.tasks
    assert _queue(RANK_TASK) == "training"
