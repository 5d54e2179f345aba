"""Handing work to the Celery worker by task name: the web side never imports worker code.

``rm_worker/tasks.py`` registers these names (tests/rm_worker/test_task_names.py checks that
they match); ``CELERY_TASK_ROUTES`` in settings sends the training ones, and scoring (which loads
a run's model), to the ``training`` queue. Work is sent once the transaction that created it
commits, so a worker never looks for a row it cannot see yet.
"""

from functools import partial

from celery import current_app, group
from django.db import transaction

from ..models import Generation, PolicyRun, RewardModelRun, Snapshot, TrainingRun

RUN_TASKS = {RewardModelRun: "rm_worker.train_reward_model", PolicyRun: "rm_worker.run_ppo",
             Generation: "rm_worker.generate_pairs"}
ROUND_START_TASK = "rm_worker.start_round_if_due"
ROUND_EVAL_TASK = "rm_worker.evaluate_round"
SNAPSHOT_TASK = "rm_worker.build_snapshot"
SCORE_TASK = "rm_worker.score_comparisons"
RANK_TASK = "rm_worker.rank_queue"
WEBHOOK_TASK = "rm_worker.deliver_webhook"


def run_enqueue(run: TrainingRun) -> None:
    """Have a training worker run the queued ``run``, after the current transaction commits."""
    _send_on_commit(RUN_TASKS[type(run)], run.pk)


def round_start_enqueue(project_id: int) -> None:
    """Have a worker start the project's next automatic round if it is still due, after the current transaction
    commits (the submit that crossed ``retrain_every`` does not pay for a snapshot and a run)."""
    _send_on_commit(ROUND_START_TASK, project_id)


def round_check_enqueue(run: TrainingRun) -> None:
    """A reward-model run ended away from its worker (cancelled while queued, given up on by the crash reaper):
    have a worker start the project's next round if labels came in meanwhile, after commit. The worker's own
    end of a run does this in ``rounds.round_run_finished``; services that end runs cannot import the loop (it
    imports them), so they send its task by name."""
    if isinstance(run, RewardModelRun):
        _send_on_commit(ROUND_START_TASK, run.project_id)


def round_eval_enqueue(round_id: int) -> None:
    """Have a training worker measure the round's reward model on the fixed evaluation set, after commit."""
    _send_on_commit(ROUND_EVAL_TASK, round_id)


def policy_runs_enqueue(runs: list[PolicyRun]) -> None:
    """Have training workers run the queued PPO ``runs`` (a sweep's), sent as one Celery group after the current
    transaction commits: one message per run, sharing a group id."""
    transaction.on_commit(partial(_send_group_now, RUN_TASKS[PolicyRun], [run.pk for run in runs]))


def snapshot_enqueue(snapshot: Snapshot) -> None:
    """Have a worker build the queued ``snapshot``, after the current transaction commits."""
    _send_on_commit(SNAPSHOT_TASK, snapshot.pk)


def comparison_scores_enqueue(run: RewardModelRun, comparison_ids: list[int]) -> None:
    """Have a training worker score ``comparison_ids`` with ``run``'s model, after the current transaction commits."""
    _send_on_commit(SCORE_TASK, run.pk, comparison_ids)


def webhook_delivery_enqueue(delivery_id: int, *, delay_seconds: float = 0) -> None:
    """Have a worker send one attempt of a webhook message ``delay_seconds`` after the current transaction commits."""
    transaction.on_commit(
        partial(current_app.send_task, WEBHOOK_TASK, args=[delivery_id], countdown=delay_seconds or None)
    )


def queue_rank_enqueue(project, ranking_id: str, from_id: int) -> None:
    """Have a training worker rank the project's queue (ranking ``ranking_id``, comparisons from ``from_id``;
    services.queue_order), after the current transaction commits."""
    _send_on_commit(RANK_TASK, project.pk, ranking_id, from_id)


def _send_on_commit(task_name: str, *args) -> None:
    transaction.on_commit(partial(current_app.send_task, task_name, args=list(args)))


def _send_group_now(task_name: str, ids: list[int]) -> None:
    group(current_app.signature(task_name, args=[pk]) for pk in ids).apply_async()
