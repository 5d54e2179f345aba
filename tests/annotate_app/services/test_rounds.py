"""The loop's trigger and chaining (services.rounds), without training: runs are moved to their end by hand
and reported as the worker reports them (``round_run_finished``)."""

import pytest
from django.core.exceptions import ValidationError

from annotate_app.models import Generation, PolicyRun, Project, RewardModelRun, Round, RoundTrigger, RunStatus
from annotate_app.services.rounds import retrain_labels_added, round_run_finished, round_start, round_start_if_due
from annotate_app.services.runs import run_cancel
from rm_worker.tasks import start_round_if_due
from tests.factories import annotate, labelled_project, make_project, member

pytestmark = pytest.mark.django_db

ROUND_TASK = "rm_worker.start_round_if_due"


@pytest.fixture
def project():
    project = labelled_project(comparisons=4)
    Project.objects.filter(pk=project.pk).update(retrain_every=2, retrain_config={"max_steps": 3})
    project.refresh_from_db()
    return project


def _labels(project, added, capture):
    with capture(execute=True):
        retrain_labels_added(project_id=project.pk, added=added)
    project.refresh_from_db()


@pytest.fixture
def finish(django_capture_on_commit_callbacks):
    """End a run as the worker records it, then report it; what is sent after commit is sent."""

    def end(run, status=RunStatus.SUCCEEDED):
        type(run).objects.filter(pk=run.pk).update(status=status)
        with django_capture_on_commit_callbacks(execute=True):
            round_run_finished(run=type(run).objects.get(pk=run.pk))

    return end


def test_the_counter_asks_for_a_round_each_time_it_crosses_a_multiple_of_retrain_every(
        project, sent, django_capture_on_commit_callbacks):
    _labels(project, 1, django_capture_on_commit_callbacks)
    assert project.labels_since_retrain == 1 and sent == []
    _labels(project, 1, django_capture_on_commit_callbacks)
    assert project.labels_since_retrain == 2 and sent == [(ROUND_TASK, project.pk)]
    _labels(project, 1, django_capture_on_commit_callbacks)
    assert len(sent) == 1
    _labels(project, 3, django_capture_on_commit_callbacks)  # 3 → 6 crosses 4 (and 6): one more ask
    assert project.labels_since_retrain == 6 and len(sent) == 2


def test_nothing_is_sent_before_the_submit_commits(project, sent, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        retrain_labels_added(project_id=project.pk, added=2)
    assert sent == [] and len(callbacks) == 1


def test_a_due_round_snapshots_queues_a_reward_run_with_retrain_config_and_resets_the_counter(project, sent):
    _labels_without_tasks(project, 2)
    assert start_round_if_due.apply(args=[project.pk]).get() == 1
    first = Round.objects.get(project=project)
    assert first.number == 1 and first.trigger == RoundTrigger.AUTO
    assert first.reward_run.config["max_steps"] == 3 and first.reward_run.status == RunStatus.QUEUED
    assert first.snapshot == first.reward_run.snapshot
    project.refresh_from_db()
    assert project.labels_since_retrain == 0


def test_triggers_while_a_round_trains_coalesce_and_the_next_round_starts_when_it_ends(project, sent, finish):
    _labels_without_tasks(project, 2)
    first = round_start_if_due(project_id=project.pk)
    _labels_without_tasks(project, 4)  # two thresholds crossed while round 1's run is queued
    assert round_start_if_due(project_id=project.pk) is None
    assert round_start_if_due(project_id=project.pk) is None
    assert Round.objects.filter(project=project).count() == 1 and RewardModelRun.objects.count() == 1
    RewardModelRun.objects.filter(pk=first.reward_run_id).update(status=RunStatus.RUNNING)
    assert round_start_if_due(project_id=project.pk) is None
    finish(first.reward_run, RunStatus.FAILED)  # however it ends, the labels that came meanwhile count
    second = Round.objects.get(project=project, number=2)
    assert second.reward_run.status == RunStatus.QUEUED and second.trigger == RoundTrigger.AUTO
    project.refresh_from_db()
    assert project.labels_since_retrain == 0


def test_a_round_ending_with_too_few_new_labels_starts_no_other(project, sent, finish):
    _labels_without_tasks(project, 2)
    first = round_start_if_due(project_id=project.pk)
    _labels_without_tasks(project, 1)
    finish(first.reward_run)
    assert Round.objects.filter(project=project).count() == 1


def test_no_round_when_retrain_is_off_or_too_few_labels(project, sent):
    _labels_without_tasks(project, 1)
    assert round_start_if_due(project_id=project.pk) is None
    Project.objects.filter(pk=project.pk).update(retrain_every=0, labels_since_retrain=50)
    assert round_start_if_due(project_id=project.pk) is None
    assert not Round.objects.exists()


def test_a_manual_round_starts_at_any_count_but_not_beside_a_training_one(project, sent):
    first = round_start(project=project)
    assert first.trigger == RoundTrigger.MANUAL and first.number == 1
    with pytest.raises(ValidationError, match="Round 1's reward-model run is still queued"):
        round_start(project=project)


def test_a_full_run_quota_starts_nothing_and_the_next_labels_try_again(project, sent, settings):
    settings.MORM_MAX_ACTIVE_RUNS_PER_PROJECT = 0
    _labels_without_tasks(project, 2)
    assert round_start_if_due(project_id=project.pk) is None
    project.refresh_from_db()
    assert project.labels_since_retrain == 2 and not Round.objects.exists()


def test_a_succeeded_reward_run_is_measured_and_followed_by_ppo_with_repolicy_config(project, sent, finish):
    Project.objects.filter(pk=project.pk).update(repolicy_config={"steps": 2, "weights": {"harmless": 0.7}})
    current = round_start(project=project)
    finish(current.reward_run)
    current.refresh_from_db()
    assert current.policy_run.status == RunStatus.QUEUED and current.policy_run.reward_run == current.reward_run
    assert current.policy_run.config["steps"] == 2 and current.policy_run.config["weights"] == {"harmless": 0.7}
    assert ("rm_worker.evaluate_round", current.pk) in sent and ("rm_worker.run_ppo", current.policy_run.pk) in sent


def test_without_repolicy_config_or_after_a_failure_there_is_no_ppo(project, sent, finish):
    current = round_start(project=project)
    finish(current.reward_run)
    assert not PolicyRun.objects.exists()
    Project.objects.filter(pk=project.pk).update(repolicy_config={})
    failed = round_start(project=project)
    finish(failed.reward_run, RunStatus.FAILED)
    assert not PolicyRun.objects.exists() and ("rm_worker.evaluate_round", failed.pk) not in sent


def test_a_ppo_config_that_no_longer_validates_is_noted_on_the_round(project, sent, finish):
    Project.objects.filter(pk=project.pk).update(repolicy_config={"steps": 0})
    current = round_start(project=project)
    finish(current.reward_run)
    current.refresh_from_db()
    assert current.policy_run is None and "PPO not started" in current.note and "steps" in current.note


def test_runs_outside_a_round_take_no_step(project, sent, finish):
    from annotate_app.services.reward_runs import reward_run_create

    run = reward_run_create(project=project, enqueue=False)
    finish(run)
    assert not Round.objects.exists() and not PolicyRun.objects.exists()


def _labels_without_tasks(project, added):
    """Count labels as a submit does, dropping the after-commit ask (the tests call the trigger themselves)."""
    retrain_labels_added(project_id=project.pk, added=added)


def test_a_succeeded_ppo_run_is_followed_by_a_generation_with_regenerate_config(project, sent, finish):
    Project.objects.filter(pk=project.pk).update(repolicy_config={"steps": 2},
                                                 regenerate_config={"n_prompts": 5, "pairing": "max_min"})
    current = round_start(project=project)
    finish(current.reward_run)
    current.refresh_from_db()
    finish(current.policy_run, RunStatus.FAILED)
    assert not Generation.objects.exists()
    PolicyRun.objects.filter(pk=current.policy_run_id).update(status=RunStatus.SUCCEEDED)
    finish(current.policy_run)
    current.refresh_from_db()
    generation = current.generation
    assert (generation.policy_run, generation.reward_run) == (current.policy_run, current.reward_run)
    assert generation.config["n_prompts"] == 5 and generation.config["pairing"] == "max_min"
    assert ("rm_worker.generate_pairs", generation.pk) in sent


def test_without_regenerate_config_a_round_ends_with_its_ppo_run(project, sent, finish):
    Project.objects.filter(pk=project.pk).update(repolicy_config={"steps": 2})
    current = round_start(project=project)
    finish(current.reward_run)
    current.refresh_from_db()
    finish(current.policy_run)
    assert not Generation.objects.exists() and Round.objects.get(pk=current.pk).note == ""


def test_submits_count_toward_the_next_round_and_the_one_that_reaches_retrain_every_asks_for_it(
        sent, django_capture_on_commit_callbacks):
    project = make_project(comparisons=3, overlap_k=1, gold_rate=0)
    Project.objects.filter(pk=project.pk).update(retrain_every=2)
    project.refresh_from_db()  # a submit reads retrain_every from the project its task was loaded with
    user = member(project)
    with django_capture_on_commit_callbacks(execute=True):
        annotate(project, user, {"harmless": 1})
    assert Project.objects.get(pk=project.pk).labels_since_retrain == 1 and (ROUND_TASK, project.pk) not in sent
    with django_capture_on_commit_callbacks(execute=True):
        annotate(project, user, {"harmless": -1})
    assert (ROUND_TASK, project.pk) in sent
    assert start_round_if_due.apply(args=[project.pk]).get() == 1
    assert Project.objects.get(pk=project.pk).labels_since_retrain == 0


def test_submits_leave_the_counter_alone_while_retrain_is_off(sent):
    project = make_project(comparisons=1, overlap_k=1, gold_rate=0)
    annotate(project, member(project), {"harmless": 1})
    assert Project.objects.get(pk=project.pk).labels_since_retrain == 0


def test_each_rounds_generation_draws_with_its_own_seed(project, sent, finish):
    """With one seed every round would draw the same prompts and sampling noise, and a policy a few PPO steps on
    would give pairs the import skips as already there (bench/loop_real.sh saw it): the seed moves on per round."""
    Project.objects.filter(pk=project.pk).update(repolicy_config={"steps": 2},
                                                 regenerate_config={"n_prompts": 5, "seed": 7})
    seeds = []
    for _ in range(2):
        current = round_start(project=project)
        finish(current.reward_run)
        current.refresh_from_db()
        finish(current.policy_run)
        current.refresh_from_db()
        seeds.append((current.number, current.generation.config["seed"]))
    assert seeds == [(1, 8), (2, 9)]
    assert Project.objects.get(pk=project.pk).regenerate_config["seed"] == 7  # the setting itself is unchanged


def test_a_rounds_run_cancelled_while_queued_lets_the_labels_that_came_meanwhile_start_the_next(
        project, sent, django_capture_on_commit_callbacks):
    """A cancel ends the run away from its worker, so the worker's end-of-run hook never sees it: the cancel sends
    the loop's check by name instead, and the labels counted meanwhile start round 2."""
    _labels_without_tasks(project, 2)
    first = round_start_if_due(project_id=project.pk)
    _labels_without_tasks(project, 2)
    with django_capture_on_commit_callbacks(execute=True):
        run_cancel(run=first.reward_run)
    assert sent.count(("rm_worker.start_round_if_due", project.pk)) == 1
    assert start_round_if_due.apply(args=[project.pk]).get() == 2
    assert Round.objects.get(project=project, number=2).reward_run.status == RunStatus.QUEUED
