"""Generations end to end on tiny models: each pairing rule through the service and the worker, the import
(dedup, meta.generated_by, model names), held-out prompts, cancel, and the command."""

import io
import json
from datetime import timedelta
from itertools import combinations

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from annotate_app.models import Comparison, Generation, PolicyRun, RunStatus, WebhookDelivery
from annotate_app.services.generations import generation_create
from annotate_app.services.policy_runs import policy_prompts, policy_run_create
from annotate_app.services.recovery import work_recover
from annotate_app.services.reward_runs import reward_run_create
from annotate_app.services.runs import run_cancel
from annotate_app.services.webhooks import webhook_create
from rm_worker import generation_runner, policy_runner
from rm_worker.reward_runner import run_reward_training
from rm_worker.runtime import MetricsWriter
from rm_worker.tasks import generate_pairs as generate_pairs_task
from rm_worker.training.data import prompt_held_out
from tests.factories import labelled_project, succeeded_reward_run, trainable_project
from tests.tiny_models import tiny_bert_factory, tiny_policy_factory

pytestmark = pytest.mark.django_db

TINY = {"samples": 3, "max_new_tokens": 4, "device": "cpu", "batch_size": 4}
TINY_PPO = {"steps": 2, "batch_size": 2, "mini_batch_size": 2, "max_new_tokens": 4, "eval_max_prompts": 2,
            "device": "cpu"}


@pytest.fixture
def reward_run():
    project = trainable_project(comparisons=12)
    run = reward_run_create(project=project, enqueue=False,
                            overrides={"max_steps": 2, "eval_every": 2, "batch_size": 4, "max_length": 32})
    assert run_reward_training(run.pk, backbone_factory=tiny_bert_factory) == RunStatus.SUCCEEDED
    run.refresh_from_db()
    return run


@pytest.fixture
def policy_run(reward_run):
    run = policy_run_create(project=reward_run.project, reward_run=reward_run, enqueue=False,
                            overrides={**TINY_PPO, "weights": {"helpful": 0.0, "harmless": 2.0, "honest": 0.5}})
    assert policy_runner.run_policy_training(run.pk, policy_factory=tiny_policy_factory) == RunStatus.SUCCEEDED
    run.refresh_from_db()
    return run


def _generate(project, **kwargs) -> Generation:
    overrides = {**TINY, **kwargs.pop("overrides", {})}
    generation = generation_create(project=project, overrides=overrides, enqueue=False, **kwargs)
    assert generation_runner.run_generation(generation.pk, policy_factory=tiny_policy_factory) == RunStatus.SUCCEEDED
    generation.refresh_from_db()
    return generation


def _comparisons(generation):
    return list(Comparison.objects.filter(import_batch=generation.import_batch).order_by("id"))


def test_random_pairs_from_the_base_policy_are_imported_with_their_origin_and_deduplicated(reward_run):
    project = reward_run.project
    before = project.comparisons.count()
    generation = _generate(project, overrides={"pairing": "random"})
    comparisons = _comparisons(generation)
    assert generation.created_count == len(comparisons) > 0 and generation.skipped_count == 0
    assert project.comparisons.count() == before + len(comparisons)
    counted = type(project).objects.get(pk=project.pk)
    assert (counted.comparison_count, counted.open_count) == (before + len(comparisons), len(comparisons))
    for comparison in comparisons:
        assert comparison.response_a != comparison.response_b
        assert comparison.model_a == comparison.model_b == "base"
        generated_by = comparison.metadata["generated_by"]
        assert generated_by == {"generation": generation.pk, "policy_run": None, "reward_run": None,
                                "pairing": "random", "sampling": {"samples": 3, "temperature": 1.0, "top_p": 1.0,
                                                                  "top_k": 0, "max_new_tokens": 4, "seed": 0}}
    assert generation.step == generation.total_steps == generation.final_metrics["prompts"]

    again = _generate(project, overrides={"pairing": "random"})
    assert again.created_count == 0 and again.skipped_count == generation.created_count
    assert project.comparisons.count() == before + len(comparisons)


def test_a_finished_generation_is_a_webhook_event(reward_run):
    project = reward_run.project
    webhook_create(project=project, url="https://93.184.215.14/hook", events=["generation.finished"])
    generation = _generate(project, overrides={"pairing": "random", "samples": 2})
    delivery = WebhookDelivery.objects.get(event="generation.finished")
    data = delivery.payload["data"]
    assert (data["generation"], data["status"], data["created"], data["skipped"], data["pairing"]) == (
        generation.pk, "succeeded", generation.created_count, 0, "random")
    cancelled = generation_create(project=project, overrides=TINY, enqueue=False)
    run_cancel(run=cancelled)
    assert WebhookDelivery.objects.filter(event="generation.finished").count() == 2


def test_held_out_prompts_are_left_out_unless_asked_for(reward_run):
    project = reward_run.project
    held_out = [p for p in policy_prompts(project) if prompt_held_out(p, 0.2, 0)]
    assert held_out, "the fixture's prompts should include some that PPO holds out"
    kept = _generate(project, overrides={"pairing": "random", "samples": 2})
    assert not any(c.prompt in held_out for c in _comparisons(kept))
    everything = _generate(project, overrides={"pairing": "random", "samples": 2, "include_heldout_prompts": True,
                                               "seed": 1})
    assert everything.final_metrics["prompts"] == len(policy_prompts(project))


def test_policy_vs_reference_pairs_one_response_of_each(policy_run):
    generation = _generate(policy_run.project, policy_run=policy_run,
                           overrides={"pairing": "policy_vs_reference", "samples": 2})
    comparisons = _comparisons(generation)
    assert comparisons
    for comparison in comparisons:
        assert {comparison.model_a, comparison.model_b} == {f"policy-run-{policy_run.pk}", "base"}
        assert comparison.metadata["generated_by"]["policy_run"] == policy_run.pk


def _samples_of(monkeypatch):
    """The scored responses the generator reports (``Callbacks.on_samples``), by prompt index."""
    reported = {}
    real = generation_runner.generate_pairs

    def spying(*args, callbacks, **kwargs):
        callbacks.on_samples = lambda index, rows: reported.__setitem__(index, rows)
        return real(*args, callbacks=callbacks, **kwargs)

    monkeypatch.setattr(generation_runner, "generate_pairs", spying)
    return reported


def test_max_min_pairs_the_best_and_worst_by_the_policy_runs_weights(policy_run, monkeypatch):
    reported = _samples_of(monkeypatch)
    generation = _generate(policy_run.project, policy_run=policy_run, reward_run=policy_run.reward_run,
                           overrides={"pairing": "max_min", "samples": 4})
    assert generation.config["weights"] == {"helpful": 0.0, "harmless": 2.0, "honest": 0.5}
    assert generation.final_metrics["normalization"] == "reward model"
    rows_by_prompt = {json.dumps(rows[0]["prompt"]): rows for rows in reported.values()}
    comparisons = _comparisons(generation)
    assert comparisons
    for comparison in comparisons:
        rows = rows_by_prompt[json.dumps(comparison.prompt)]
        combined = {row["response"]: row["combined"] for row in rows}
        chosen = {combined[comparison.response_a], combined[comparison.response_b]}
        assert chosen == {max(combined.values()), min(combined.values())}
        assert set(comparison.metadata["generated_by"]["rewards"]) == {"helpful", "harmless", "honest"}
        assert comparison.model_a == comparison.model_b == f"policy-run-{policy_run.pk}"


def test_uncertain_pairs_the_smallest_normalized_margin(reward_run, monkeypatch):
    reported = _samples_of(monkeypatch)
    generation = _generate(reward_run.project, reward_run=reward_run, overrides={"pairing": "uncertain",
                                                                                 "samples": 4})
    rows_by_prompt = {json.dumps(rows[0]["prompt"]): rows for rows in reported.values()}

    def margin(a, b):
        return min(abs(a["normalized"][o] - b["normalized"][o]) for o in a["normalized"])

    comparisons = _comparisons(generation)
    assert comparisons
    for comparison in comparisons:
        rows = {row["response"]: row for row in rows_by_prompt[json.dumps(comparison.prompt)]}
        smallest = min(margin(rows[a], rows[b]) for a, b in combinations(rows, 2))
        assert margin(rows[comparison.response_a], rows[comparison.response_b]) == pytest.approx(smallest)


def test_an_uploaded_prompt_file_is_used_whole(reward_run):
    prompts = io.BytesIO(b'w1 w2 ?\n{"prompt": [{"role": "user", "content": "w3 w4 ?"}]}\n\nw5 good ?\n')
    generation = _generate(reward_run.project, prompts_file=prompts, overrides={"pairing": "random"})
    assert generation.total_steps == 3 and generation.final_metrics["prompts"] == 3
    assert {json.dumps(c.prompt) for c in _comparisons(generation)} <= {
        '"w1 w2 ?"', json.dumps([{"role": "user", "content": "w3 w4 ?"}]), '"w5 good ?"'}


def test_cancelled_before_it_starts_or_while_sampling_imports_nothing(reward_run, monkeypatch):
    project = reward_run.project
    queued = generation_create(project=project, overrides=TINY, enqueue=False)
    run_cancel(run=queued)
    assert generate_pairs_task.apply(args=[queued.pk]).get() == "skipped"

    running = generation_create(project=project, overrides={**TINY, "batch_size": 1}, enqueue=False)
    monkeypatch.setattr("rm_worker.runtime.CANCEL_POLL_SECONDS", 0.0)
    original = MetricsWriter.progress

    def progress(self, step, total):
        original(self, step, total)
        if step == 1:
            run_cancel(run=Generation.objects.get(pk=running.pk))

    monkeypatch.setattr(MetricsWriter, "progress", progress)
    before = project.comparisons.count()
    assert generation_runner.run_generation(running.pk, policy_factory=tiny_policy_factory) == RunStatus.CANCELLED
    running.refresh_from_db()
    assert running.status == RunStatus.CANCELLED and running.import_batch is None
    assert project.comparisons.count() == before


def test_a_generation_whose_worker_died_is_queued_again_and_runs_from_the_start(
        reward_run, sent, django_capture_on_commit_callbacks):
    generation = generation_create(project=reward_run.project, overrides={**TINY, "samples": 2}, enqueue=False)
    Generation.objects.filter(pk=generation.pk).update(status=RunStatus.RUNNING, attempts=1, step=2,
                                                       heartbeat_at=timezone.now() - timedelta(hours=1))
    with django_capture_on_commit_callbacks(execute=True):
        assert work_recover()["generations"] == 1
    assert sent == [("rm_worker.generate_pairs", generation.pk)]
    assert generation_runner.run_generation(generation.pk, policy_factory=tiny_policy_factory) == RunStatus.SUCCEEDED
    generation.refresh_from_db()
    assert generation.attempts == 2 and generation.created_count > 0


def test_a_generation_that_fails_records_why_and_imports_nothing():
    project = labelled_project()
    never_trained = policy_run_create(project=project, reward_run=succeeded_reward_run(project), enqueue=False)
    PolicyRun.objects.filter(pk=never_trained.pk).update(status=RunStatus.SUCCEEDED)
    generation = generation_create(project=project, policy_run=PolicyRun.objects.get(pk=never_trained.pk),
                                   overrides=TINY, enqueue=False)
    with pytest.raises(FileNotFoundError):
        generation_runner.run_generation(generation.pk, policy_factory=tiny_policy_factory)
    generation.refresh_from_db()
    assert generation.status == RunStatus.FAILED and "morm_ppo.json" in generation.error
    assert generation.import_batch is None and project.comparisons.count() == 2


def test_generate_pairs_command_waits_and_prints_the_outcome(reward_run, capsys, monkeypatch):
    real = generation_runner.run_generation
    monkeypatch.setattr(generation_runner, "run_generation",
                        lambda generation_id: real(generation_id, policy_factory=tiny_policy_factory))
    call_command("generate_pairs", reward_run.project.slug, "--reward-run", str(reward_run.pk), "--samples", "3",
                 "--n-prompts", "4", "--pairing", "max_min", "--set", "max_new_tokens=4", "--set", "device=cpu",
                 "--wait")
    out = json.loads(capsys.readouterr().out)
    assert out["status"] == "succeeded" and out["created"] + out["skipped"] == out["final_metrics"]["pairs"]
    generation = Generation.objects.get(pk=out["generation"])
    assert generation.config["n_prompts"] == 4 and generation.reward_run == reward_run


@pytest.mark.parametrize("argv, message", [
    (["--pairing", "best"], "pairing"),
    (["--pairing", "max_min"], "reward_run"),
    (["--pairing", "policy_vs_reference"], "policy_run"),
    (["--samples", "1"], "samples"),
    (["--set", "temperature=hot"], "temperature"),
    (["--set", "noise"], "key=value"),
    (["--policy-run", "999999"], "policy-run"),
    (["--reward-run", "999999"], "reward-run"),
])
def test_generate_pairs_command_names_the_bad_option(reward_run, argv, message):
    with pytest.raises(CommandError, match=message):
        call_command("generate_pairs", reward_run.project.slug, *argv)
    assert not Generation.objects.exists()
