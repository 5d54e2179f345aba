"""Weight sweeps: a grid becomes one PPO run per weight vector, queued whole (quota, validation) or not at all,
and sent to the workers as one Celery group after commit."""

import pytest
from django.core.exceptions import ValidationError

from annotate_app.models import PolicyRun, PolicySweep
from annotate_app.services.policy_sweeps import policy_sweep_create
from annotate_app.services.reward_runs import reward_run_create
from annotate_app.services.runs import RunQuotaExceeded
from tests.factories import labelled_project, succeeded_reward_run

pytestmark = pytest.mark.django_db


@pytest.fixture
def project(settings):
    settings.MORM_MAX_ACTIVE_RUNS_PER_PROJECT = 100  # the quota test sets its own
    return labelled_project()


def _weights(sweep) -> list[dict]:
    return [run.config["weights"] for run in sweep.runs.order_by("pk")]


def test_per_objective_values_make_every_combination_over_the_settings_weights(project):
    reward_run = succeeded_reward_run(project)
    sweep = policy_sweep_create(
        project=project, reward_run=reward_run, name="kl vs helpful",
        grid={"values": {"helpful": [0.2, 0.8], "harmless": [0.5, 1.0, 2.0]}},
        overrides={"steps": 3, "weights": {"honest": 0.0, "helpful": 9.0}},
    )
    assert sweep.name == "kl vs helpful" and sweep.reward_run == reward_run
    assert _weights(sweep) == [
        {"honest": 0.0, "helpful": helpful, "harmless": harmless}
        for helpful in (0.2, 0.8) for harmless in (0.5, 1.0, 2.0)
    ]
    assert {run.config["steps"] for run in sweep.runs.all()} == {3}
    assert {run.total_steps for run in sweep.runs.all()} == {3}


def test_a_simplex_step_spreads_weights_summing_to_one_and_zeroes_the_objectives_left_out(project):
    reward_run = succeeded_reward_run(project)
    sweep = policy_sweep_create(project=project, reward_run=reward_run, grid={"simplex_step": 0.5})
    # Three objectives, halves: (1,0,0), (.5,.5,0), (.5,0,.5), (0,1,0), (0,.5,.5), (0,0,1).
    vectors = [tuple(w[key] for key in ("helpful", "harmless", "honest")) for w in _weights(sweep)]
    assert vectors == [(1, 0, 0), (0.5, 0.5, 0), (0.5, 0, 0.5), (0, 1, 0), (0, 0.5, 0.5), (0, 0, 1)]
    pair = policy_sweep_create(project=project, reward_run=reward_run,
                               grid={"simplex_step": 0.25, "objectives": ["harmless", "helpful"]})
    assert [(w["harmless"], w["helpful"], w["honest"]) for w in _weights(pair)] == [
        (1, 0, 0), (0.75, 0.25, 0), (0.5, 0.5, 0), (0.25, 0.75, 0), (0, 1, 0)]


def test_listed_vectors_are_queued_once_each(project):
    reward_run = succeeded_reward_run(project)
    sweep = policy_sweep_create(project=project, reward_run=reward_run, grid={"weights": [
        {"helpful": 1.0}, {"helpful": 0.4},  # the second is the house default for every objective ...
        {"helpful": 0.4, "harmless": 0.45, "honest": 0.15},  # ... so this one is the same run and is left out
    ]})
    assert _weights(sweep) == [{"helpful": 1.0}, {"helpful": 0.4}]


def test_the_runs_go_out_after_commit_as_one_celery_group(project, sent, django_capture_on_commit_callbacks):
    reward_run = succeeded_reward_run(project)
    with django_capture_on_commit_callbacks(execute=True):
        sweep = policy_sweep_create(project=project, reward_run=reward_run, grid={"values": {"helpful": [0, 1, 2]}})
        assert sent == []
    ids = sorted(run.pk for run in sweep.runs.all())
    assert sent == [("rm_worker.run_ppo", pk) for pk in ids]
    assert len(set(sent.group_ids)) == 1 and sent.group_ids[0] is not None


@pytest.mark.parametrize(
    "grid, fragment",
    [
        ({}, "exactly one of values, simplex_step, weights"),
        ({"values": {"helpful": [1]}, "simplex_step": 0.5}, "exactly one"),
        ({"values": {"helpful": [1]}, "objectives": ["helpful"]}, "Unknown key: objectives"),
        ({"values": {"style": [1, 2]}}, "Unknown objective: style"),
        ({"values": {"helpful": []}}, "helpful: expected a non-empty list of numbers"),
        ({"values": {"helpful": ["a lot"]}}, "helpful: expected a non-empty list of numbers"),
        ({"values": {"helpful": [True]}}, "helpful: expected a non-empty list of numbers"),
        ({"values": {"helpful": [-1]}}, "Weights {'helpful': -1}: "),
        ({"values": {"helpful": [0], "harmless": [0], "honest": [0]}}, "at least one objective a positive weight"),
        ({"values": {"helpful": list(range(6)), "harmless": list(range(5))}}, "30 weight vectors; a sweep has at most"),
        ({"simplex_step": 0.3}, "simplex_step: expected a step that divides 1"),
        ({"simplex_step": 0}, "simplex_step: expected a step"),
        ({"simplex_step": 5e-324}, "simplex_step: expected a step"),
        ({"simplex_step": 10**400}, "simplex_step: expected a step"),
        ({"values": {"helpful": [10**400]}}, "helpful: expected a non-empty list of numbers"),
        ({"values": {"helpful": [float("nan")]}}, "helpful: expected a non-empty list of numbers"),
        ({"simplex_step": 0.1}, "66 weight vectors"),
        ({"simplex_step": 0.5, "objectives": ["helpful", "helpful"]}, "objectives: expected a list of distinct"),
        ({"simplex_step": 0.5, "objectives": []}, "objectives: expected a list"),
        ({"weights": []}, "weights: expected a non-empty list"),
        ({"weights": [{"helpful": "x"}]}, "weights: expected a non-empty list"),
        ({"weights": [{"style": 1}]}, "Unknown objective: style"),
        (["values"], "exactly one"),
    ],
)
def test_a_bad_grid_names_the_grid_and_queues_nothing(project, grid, fragment):
    reward_run = succeeded_reward_run(project)
    with pytest.raises(ValidationError) as raised:
        policy_sweep_create(project=project, reward_run=reward_run, grid=grid)
    assert list(raised.value.message_dict) == ["grid"] and fragment in raised.value.message_dict["grid"][0]
    assert not PolicyRun.objects.exists() and not PolicySweep.objects.exists()


def test_a_bad_shared_setting_names_its_own_field(project):
    reward_run = succeeded_reward_run(project)
    with pytest.raises(ValidationError) as raised:
        policy_sweep_create(project=project, reward_run=reward_run, grid={"simplex_step": 1}, overrides={"steps": 0})
    assert list(raised.value.message_dict) == ["steps"]
    queued = reward_run_create(project=project, enqueue=False)
    with pytest.raises(ValidationError, match="succeeded"):
        policy_sweep_create(project=project, reward_run=queued, grid={"simplex_step": 1})
    assert not PolicyRun.objects.exists()


def test_a_sweep_needs_a_free_slot_per_run_or_queues_none(project, settings):
    settings.MORM_MAX_ACTIVE_RUNS_PER_PROJECT = 4
    reward_run = succeeded_reward_run(project)
    reward_run_create(project=project, enqueue=False)  # one slot taken: three are left
    with pytest.raises(RunQuotaExceeded, match=r"1 runs queued or running \(the limit is 4, so 4 more do not fit\)"):
        policy_sweep_create(project=project, reward_run=reward_run, grid={"values": {"helpful": [0, 1, 2, 3]}})
    assert not PolicyRun.objects.exists() and not PolicySweep.objects.exists()
    sweep = policy_sweep_create(project=project, reward_run=reward_run, grid={"values": {"helpful": [0, 1, 2]}})
    assert sweep.runs.count() == 3
