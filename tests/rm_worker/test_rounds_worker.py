"""Rounds on the worker with tiny models: a round's reward run trains, its end queues the PPO run, whose end
queues the generation, whose pairs reach the Rounds page; every round's reward model is measured on the same
fixed evaluation set (round 1's held-out pairs)."""

import pytest

from annotate_app.models import Project, Round, RunStatus
from annotate_app.selectors.rounds import round_rows, rounds_of
from annotate_app.services.rounds import round_start
from rm_worker.generation_runner import run_generation
from rm_worker.policy_runner import run_policy_training
from rm_worker.reward_runner import run_reward_training
from rm_worker.tasks import evaluate_round
from tests.factories import trainable_project
from tests.tiny_models import tiny_bert_factory, tiny_policy_factory

pytestmark = pytest.mark.django_db

TINY_RM = {"max_steps": 4, "eval_every": 2, "batch_size": 2, "max_length": 32, "eval_fraction": 0.5}
TINY_GENERATION = {"samples": 2, "n_prompts": 3, "max_new_tokens": 4, "device": "cpu", "batch_size": 4}
TINY_PPO = {"steps": 2, "batch_size": 2, "mini_batch_size": 2, "max_new_tokens": 4, "sample_every": 2,
            "eval_max_prompts": 2, "checkpoint_every": 2, "weights": {"harmless": 0.8}}


@pytest.fixture
def project():
    project = trainable_project(comparisons=12)
    Project.objects.filter(pk=project.pk).update(retrain_config=TINY_RM, repolicy_config=TINY_PPO,
                                                 regenerate_config=TINY_GENERATION)
    return project


def test_a_round_trains_then_queues_its_ppo_run_and_is_measured_on_the_fixed_set(
        project, sent, django_capture_on_commit_callbacks):
    first = round_start(project=project)
    with django_capture_on_commit_callbacks(execute=True):
        assert run_reward_training(first.reward_run_id, backbone_factory=tiny_bert_factory) == RunStatus.SUCCEEDED
    first.refresh_from_db()
    assert first.policy_run.status == RunStatus.QUEUED and first.policy_run.config["weights"] == {"harmless": 0.8}
    assert ("rm_worker.evaluate_round", first.pk) in sent
    with django_capture_on_commit_callbacks(execute=True):
        assert run_policy_training(first.policy_run_id, policy_factory=tiny_policy_factory) == RunStatus.SUCCEEDED
    first.refresh_from_db()
    assert first.generation.policy_run == first.policy_run and first.generation.reward_run == first.reward_run
    assert first.generation.config["n_prompts"] == 3 and ("rm_worker.generate_pairs", first.generation_id) in sent
    assert run_generation(first.generation_id, policy_factory=tiny_policy_factory) == RunStatus.SUCCEEDED
    first.generation.refresh_from_db()
    (row,) = round_rows(rounds_of(project))
    assert row.generated == first.generation.created_count > 0 and row.labels == 0 and row.comparisons == 12

    second = round_start(project=project)
    assert run_reward_training(second.reward_run_id, backbone_factory=tiny_bert_factory) == RunStatus.SUCCEEDED
    for current in (first, second):
        accuracy = evaluate_round.apply(args=[current.pk]).get()
        current.refresh_from_db()
        assert current.eval_accuracy == accuracy and set(accuracy) == {"helpful", "harmless", "honest"}
    assert first.eval_pairs == second.eval_pairs > 0  # the same pairs for both rounds
    assert 0 <= first.eval_accuracy["harmless"] <= 1


def test_a_round_whose_run_did_not_succeed_is_not_measured(project, sent):
    current = round_start(project=project)
    assert evaluate_round.apply(args=[current.pk]).get() == {}
    assert Round.objects.get(pk=current.pk).eval_accuracy == {}
