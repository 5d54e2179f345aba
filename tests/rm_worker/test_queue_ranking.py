"""The queue's order (services.queue_order, rm_worker.queue_ranking): a change of order is ranked on the worker,
and the queue then hands out comparisons by rank: at random, or the reward model's least certain first."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from annotate_app.models import AnnotatorQueue, Comparison, Project, QueueOrder, RewardModelRun, Role, RunStatus
from annotate_app.services.annotations import annotation_submit
from annotate_app.services.queue import task_next_for
from annotate_app.services.queue_order import queue_order_changed
from annotate_app.services.rounds import round_run_finished, round_start
from annotate_app.services.runs import run_dir
from rm_worker.queue_ranking import run_queue_ranking
from rm_worker.training import RewardModel
from rm_worker.training.trainer import MODEL_DIR
from tests.factories import (
    import_lines,
    labelled_project,
    logged_in_client,
    make_project,
    member,
    native_line,
    succeeded_reward_run,
    trained_reward_run,
)
from tests.queue_checks import ALL_TIES

pytestmark = pytest.mark.django_db

RANK_TASK = "rm_worker.rank_queue"


@pytest.fixture
def commits(django_capture_on_commit_callbacks):
    """Runs what the code under test does after commit (the test's transaction never commits)."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


def _order(project: Project, order: str, run=None) -> str:
    """Set the project's order as the settings API does; returns the ranking id sent to the worker."""
    project.queue_order, project.queue_reward_run = order, run
    project.save(update_fields=["queue_order", "queue_reward_run"])
    queue_order_changed(project=project)
    return project.queue_ranking["id"]


def _handed_in_turn(project: Project, count: int) -> list[int]:
    """The comparisons that ``count`` new annotators get, one after the other (k=1: each takes its slot)."""
    return [task_next_for(project=project, user=member(project)).comparison_id for _ in range(count)]


def _ranks(project: Project) -> dict[int, float]:
    return dict(Comparison.objects.filter(project=project).values_list("id", "queue_rank"))


def test_random_order_ranks_every_comparison_on_the_worker_and_the_queue_follows_the_ranks(sent, commits):
    project = make_project(comparisons=12, overlap_k=1, gold_rate=0)
    someone = member(project)
    task_next_for(project=project, user=someone)
    with commits():
        ranking_id = _order(project, QueueOrder.RANDOM)
    assert sent == [(RANK_TASK, project.pk, ranking_id, 0)]

    assert run_queue_ranking(project.pk, ranking_id, 0) == 0  # nothing to score: ranks drawn in the database
    ranks = _ranks(project)
    assert all(0 <= rank < 1 for rank in ranks.values()) and len(set(ranks.values())) == len(ranks)
    assert AnnotatorQueue.objects.get(project=project, annotator=someone).cursor == 0  # back to the start
    handed = _handed_in_turn(project, 6)
    leased_before = Comparison.objects.filter(project=project, tasks__annotator=someone).get().pk
    expected = sorted((pk for pk in ranks if pk != leased_before), key=ranks.get)[:6]
    assert handed == expected
    project.refresh_from_db()
    assert project.queue_ranking["finished_at"] and project.queue_ranking["ranked"] == 12


def test_back_to_import_order_ranks_everything_zero_and_the_queue_goes_by_id(sent):
    project = make_project(comparisons=6, overlap_k=1, gold_rate=0)
    run_queue_ranking(project.pk, _order(project, QueueOrder.RANDOM), 0)
    run_queue_ranking(project.pk, _order(project, QueueOrder.IMPORT), 0)
    assert set(_ranks(project).values()) == {0.0}
    assert _handed_in_turn(project, 3) == sorted(_ranks(project))[:3]


def test_a_ranking_overtaken_by_a_newer_change_of_order_writes_nothing(sent):
    project = make_project(comparisons=4, overlap_k=1, gold_rate=0)
    stale = _order(project, QueueOrder.RANDOM)
    _order(project, QueueOrder.IMPORT)
    assert run_queue_ranking(project.pk, stale, 0) == 0
    assert set(_ranks(project).values()) == {0.0}


def test_new_comparisons_get_random_ranks_when_imported_into_a_random_ordered_project(sent):
    project = make_project(comparisons=1, overlap_k=1, gold_rate=0)
    project.queue_order = QueueOrder.RANDOM
    project.save(update_fields=["queue_order"])
    import_lines(project, [native_line(i) for i in range(10, 20)])
    ranks = _ranks(project)
    assert len({rank for rank in ranks.values() if rank > 0}) == 10


def test_handing_out_in_random_order_costs_the_same_queries_in_a_small_and_a_large_project(sent):
    def queries_for_next(size: int) -> int:
        project = make_project(comparisons=size, overlap_k=1, gold_rate=0)
        run_queue_ranking(project.pk, _order(project, QueueOrder.RANDOM), 0)
        _handed_in_turn(project, size // 2)
        user = member(project)
        task_next_for(project=project, user=user)  # makes the user's queue row
        task = task_next_for(project=project, user=user)
        annotation_submit(task=task, user=user, judgments=ALL_TIES)
        with CaptureQueriesContext(connection) as queries:
            task_next_for(project=project, user=user)
        return len(queries)

    assert queries_for_next(4) == queries_for_next(40)


@pytest.fixture
def reward_run():
    """A tiny run trained to success, whose project then gets open comparisons in words the tokenizer knows."""
    run = trained_reward_run()
    project = run.project
    words = ["good", "safe", "bad", "harm", "w1", "w2", "w3", "w9"]
    import_lines(project, [native_line(100 + i, prompt=f"w{i % 3 + 1} ?", response_a=f"{words[i % 8]} w{i % 9}",
                                       response_b=f"{words[(i * 3 + 1) % 8]} {words[i % 5]}") for i in range(10)])
    return run


def _smallest_normalized_margin(model: RewardModel, comparison: Comparison) -> float:
    a, b = model.score(comparison.prompt, comparison.response_a), model.score(comparison.prompt,
                                                                               comparison.response_b)
    # The std as RewardModel.normalize bounds it: a head that gave every held-out response one reward has std 0.
    return min(abs(a[o] - b[o]) / max(model.normalization[o]["std"], 1e-6) for o in model.objectives)


def test_uncertain_order_hands_out_the_comparisons_the_reward_model_tells_apart_least_first(reward_run, sent):
    project = reward_run.project
    ranking_id = _order(project, QueueOrder.UNCERTAIN, reward_run)
    open_ones = list(Comparison.objects.filter(project=project, is_full=False, is_gold=False).order_by("id"))
    assert run_queue_ranking(project.pk, ranking_id, 0) == len(open_ones) == 10

    model = RewardModel.from_pretrained(run_dir(reward_run) / MODEL_DIR, device="cpu")
    expected = {row.pk: _smallest_normalized_margin(model, row) for row in open_ones}
    ranks = _ranks(project)
    for pk, margin in expected.items():
        assert ranks[pk] == pytest.approx(margin, rel=1e-4, abs=1e-6)
    assert len(set(expected.values())) > 1
    assert _handed_in_turn(project, 4) == sorted(expected, key=expected.get)[:4]


def test_comparisons_imported_into_an_uncertain_project_are_scored_from_the_first_new_one(reward_run, sent, commits):
    project = reward_run.project
    ranking_id = _order(project, QueueOrder.UNCERTAIN, reward_run)
    run_queue_ranking(project.pk, ranking_id, 0)
    with commits():
        import_lines(project, [native_line(300, prompt="w1 ?", response_a="good w3", response_b="harm w2")])
    new = Comparison.objects.get(project=project, external_id="c300")
    assert sent == [(RANK_TASK, project.pk, ranking_id, new.pk)]
    assert new.queue_rank == 0  # first in the queue until scored
    assert run_queue_ranking(project.pk, ranking_id, new.pk) == 1
    new.refresh_from_db()
    model = RewardModel.from_pretrained(run_dir(reward_run) / MODEL_DIR, device="cpu")
    assert new.queue_rank == pytest.approx(_smallest_normalized_margin(model, new), rel=1e-4, abs=1e-6)


def test_a_rounds_new_reward_model_takes_over_an_uncertain_queue(sent, commits):
    project = labelled_project(comparisons=4)
    first = succeeded_reward_run(project)
    _order(project, QueueOrder.UNCERTAIN, first)
    Project.objects.filter(pk=project.pk).update(retrain_config={"max_steps": 3})
    project.refresh_from_db()
    current = round_start(project=project)
    RewardModelRun.objects.filter(pk=current.reward_run.pk).update(status=RunStatus.SUCCEEDED)
    sent.clear()
    with commits():
        round_run_finished(run=RewardModelRun.objects.get(pk=current.reward_run.pk))
    project.refresh_from_db()
    assert project.queue_reward_run == current.reward_run
    assert (RANK_TASK, project.pk, project.queue_ranking["id"], 0) in sent


def test_the_settings_page_says_how_far_the_ranking_got(sent):
    project = make_project(comparisons=3, overlap_k=1, gold_rate=0)
    admin = logged_in_client(member(project, Role.ADMIN))

    def page() -> str:
        return " ".join(admin.get(f"/projects/{project.slug}/settings/").content.decode().split())

    ranking_id = _order(project, QueueOrder.RANDOM)
    assert "a training worker is ranking the queue (0 so far)" in page()
    run_queue_ranking(project.pk, ranking_id, 0)
    page = page()
    assert "Queue order <strong>random</strong>" in page and "3 comparisons ranked, finished" in page
