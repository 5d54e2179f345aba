"""The loop, run from the app: after every ``retrain_every`` new human labels a *round* starts — a new
snapshot and a reward-model run with the project's ``retrain_config`` — then, as each step succeeds,
a PPO run on that reward model (``repolicy_config``) and a generation from that policy
(``regenerate_config``).

At most one round's reward run is queued or running per project: triggers while one is training
coalesce (decided under the project row lock), and when it ends the project is checked again, so
labels that came in meanwhile start the next round. The worker reports each run's end through
``round_run_finished`` (``rm_worker/runtime.py``).
"""

import logging

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max

from rm_worker.training.schema import SEED_LIMIT

from .. import sql
from ..models import PolicyRun, Project, QueueOrder, RewardModelRun, Round, RoundTrigger, RunStatus, TrainingRun
from .dispatch import round_eval_enqueue, round_start_enqueue
from .generations import generation_create
from .policy_runs import policy_run_create
from .queue_order import queue_order_changed
from .reward_runs import reward_run_create

logger = logging.getLogger(__name__)

ACTIVE = (RunStatus.QUEUED, RunStatus.RUNNING)


def retrain_labels_added(*, project_id: int, added: int = 1) -> None:
    """Count ``added`` new human annotations toward the project's next automatic round.

    Call inside the transaction that stored them, after the queue counters (this statement takes the
    project row lock, last in the queue's lock order), and only when the project's ``retrain_every``
    is above 0. One UPDATE of the project row, whatever the project's size. When the count crosses a
    multiple of ``retrain_every``, a worker is asked after commit to start a round
    (``round_start_if_due``); a round still training absorbs the trigger.
    """
    count, every = sql.one(
        f"UPDATE {sql.PROJECT} SET labels_since_retrain = labels_since_retrain + %s WHERE id = %s"
        " RETURNING labels_since_retrain, retrain_every",
        [added, project_id],
    )
    # Every multiple, not only the first: a trigger that found nothing to do (a round training, the run
    # quota full) is tried again after the next retrain_every labels.
    if every and count // every > (count - added) // every:
        round_start_enqueue(project_id)


def round_start(*, project: Project, trigger: str = RoundTrigger.MANUAL,
                user: AbstractBaseUser | None = None) -> Round | None:
    """Start the project's next round: a snapshot of the latest labels (built by the run's worker) and a
    queued reward-model run with ``retrain_config``; the new-label count starts again from 0.

    An automatic trigger returns None, starting nothing, when a round's reward run is queued or running
    or fewer than ``retrain_every`` labels came in since the last round. A manual start raises
    ValidationError while a round's reward run is training; both raise it when ``retrain_config`` no
    longer validates, and RunQuotaExceeded when the project's run quota is full.
    """
    with transaction.atomic():
        project = Project.objects.select_for_update().get(pk=project.pk)
        training = project.rounds.filter(reward_run__status__in=ACTIVE).order_by("number").first()
        if trigger == RoundTrigger.AUTO and (
            training is not None or not project.retrain_every or project.labels_since_retrain < project.retrain_every
        ):
            return None
        if training is not None:
            raise ValidationError(f"Round {training.number}'s reward-model run is still {training.reward_run.status};"
                                  " a new round starts once it has finished.")
        run = reward_run_create(project=project, overrides=project.retrain_config, user=user)
        number = (project.rounds.aggregate(last=Max("number"))["last"] or 0) + 1
        started = Round.objects.create(project=project, number=number, trigger=trigger, snapshot=run.snapshot,
                                       reward_run=run)
        Project.objects.filter(pk=project.pk).update(labels_since_retrain=0)
    logger.info("project %s: round %s started (%s), reward run %s", project.pk, number, trigger, run.pk)
    return started


def round_start_if_due(*, project_id: int) -> Round | None:
    """The automatic trigger, on a worker: start a round when one is due (see ``round_start``).

    A retrain_config that no longer validates, or a full run quota, starts nothing and is logged; the
    next ``retrain_every`` labels try again.
    """
    project = Project.objects.filter(pk=project_id).first()
    if project is None:
        return None
    try:
        return round_start(project=project, trigger=RoundTrigger.AUTO)
    except ValidationError as error:
        logger.warning("project %s: automatic round not started: %s", project_id, _reasons(error))
        return None


def round_run_finished(*, run: TrainingRun) -> None:
    """The worker recorded how ``run`` ended: take the next step of the round it belongs to, if any.

    A reward run that succeeded has its fixed-set accuracy measured and, with ``repolicy_config``
    set, a PPO run queued on it; whatever its end, a round is started if labels came in meanwhile.
    A PPO run that succeeded, with ``regenerate_config`` set, gets its generation queued.
    """
    if isinstance(run, RewardModelRun):
        _reward_run_finished(run.pk)
    elif isinstance(run, PolicyRun):
        _policy_run_finished(run.pk)


def _reward_run_finished(run_id: int) -> None:
    current = Round.objects.select_related("project", "reward_run").filter(reward_run_id=run_id).first()
    if current is None:
        return
    project = current.project
    if current.reward_run.status == RunStatus.SUCCEEDED:
        round_eval_enqueue(current.pk)
        if project.queue_order == QueueOrder.UNCERTAIN:
            # The newest reward model decides what annotators see first: the loop's active learning.
            project.queue_reward_run = current.reward_run
            project.save(update_fields=["queue_reward_run"])
            queue_order_changed(project=project)
        if project.repolicy_config is not None:
            _step(current, "policy_run", "PPO", lambda: policy_run_create(
                project=project, reward_run=current.reward_run, overrides=project.repolicy_config))
    round_start_if_due(project_id=project.pk)


def _policy_run_finished(run_id: int) -> None:
    current = (Round.objects.select_related("project", "policy_run", "reward_run")
               .filter(policy_run_id=run_id).first())
    if current is None or current.policy_run.status != RunStatus.SUCCEEDED:
        return
    project = current.project
    if project.regenerate_config is not None:
        _step(current, "generation", "Generation", lambda: generation_create(
            project=project, policy_run=current.policy_run, reward_run=current.reward_run,
            overrides=_round_seeded(project.regenerate_config, current.number)))


def _round_seeded(overrides: dict, number: int) -> dict:
    """A round's generation settings with the seed moved on by the round's number (still reproducible): with one
    seed every round draws the same prompts with the same sampling noise, a policy a few PPO steps on samples
    largely the same pairs again, the import skips them as already there, and the next round never gets its
    ``retrain_every`` new labels (seen in bench/loop_real.sh)."""
    return {**overrides, "seed": (overrides.get("seed", 0) + number) % SEED_LIMIT}


def _step(current: Round, field: str, name: str, create) -> None:
    """Create the round's next run with ``create()`` and store it in ``field``; a ValidationError (a config
    that no longer validates, the run quota) is stored in the round's note instead."""
    try:
        with transaction.atomic():
            setattr(current, field, create())
            current.save(update_fields=[field])
    except ValidationError as error:
        _note(current, f"{name} not started: {_reasons(error)}")


def _reasons(error: ValidationError) -> str:
    """The error's messages, each after the setting it names."""
    if not hasattr(error, "error_dict"):
        return " ".join(error.messages)
    return "; ".join(f"{field}: {' '.join(messages)}" for field, messages in error.message_dict.items())


def _note(current: Round, text: str) -> None:
    logger.warning("project %s round %s: %s", current.project_id, current.number, text)
    current.note = f"{current.note}\n{text}".strip()
    current.save(update_fields=["note"])


def round_eval_record(*, round_id: int, accuracy: dict[str, float | None], pairs: int) -> None:
    """Store the round's reward-model accuracy per objective on the fixed evaluation set (the worker measures it)."""
    Round.objects.filter(pk=round_id).update(eval_accuracy=accuracy, eval_pairs=pairs)


def round_first(project_id: int) -> Round | None:
    """The project's first round: its reward run's held-out pairs are the fixed evaluation set of every round."""
    rounds = Round.objects.select_related("reward_run", "snapshot").filter(project_id=project_id)
    return rounds.order_by("number").first()
