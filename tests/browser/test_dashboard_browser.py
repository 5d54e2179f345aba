"""A researcher trains a reward model from the dashboard and watches its curves grow, step by step."""

import re
import time

import pytest
from playwright.sync_api import expect

from annotate_app.models import RewardModelRun, Role, RunStatus
from annotate_app.services.reward_runs import reward_run_create
from rm_worker.runtime import MetricsWriter
from tests.browser.charts import labels_js, points_js
from tests.factories import annotate, make_project, member

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

LOSS_POINTS_JS = points_js("chart-loss")
# The trainer logs every 10 steps (log_every), one loss point per objective.
STEPS = 30


def _labelled_project():
    project = make_project(comparisons=12, overlap_k=1, gold_rate=0)
    annotator = member(project)
    for i in range(12):
        annotate(project, annotator, {"harmless": 2 if i % 2 else -2, "helpful": -1 if i % 3 else 1, "honest": 1})
    return project


def _steps_shown(page, step: int) -> None:
    """The page shows ``step`` of STEPS steps taken, in its text and its progress bar."""
    expect(page.locator("#step")).to_have_text(f"{step} / {STEPS}", timeout=30_000)
    expect(page.locator("#progress")).to_have_js_property("value", step)
    expect(page.locator("#progress")).to_have_js_property("max", STEPS)


@pytest.mark.slow
def test_researcher_starts_a_run_and_watches_per_objective_curves(page, live_server, login, step_gate,
                                                                  tiny_backbone):
    project = _labelled_project()
    login(page, member(project, Role.RESEARCHER), next=f"/projects/{project.slug}/dashboard/")
    page.select_option("select[name=backbone]", tiny_backbone)
    page.fill("input[name=max_steps]", str(STEPS))
    page.click("#train-form details.advanced > summary")
    page.fill("input[name=batch_size]", "2")
    page.fill("input[name=max_length]", "32")
    page.fill("input[name=learning_rate]", "0.001")
    page.click("#train-button")
    page.wait_for_url(f"{live_server.url}/projects/{project.slug}/reward-runs/*/")

    # The run is held before its first step; each allow() lets it take that many steps, and the
    # page follows: step, progress bar, one more loss point per objective every 10 steps.
    expect(page.locator("#status")).to_have_text("running", timeout=30_000)
    # The total from the start, what the worker is doing, and no "queued" message once it runs.
    _steps_shown(page, 0)
    expect(page.locator("#stage")).to_have_text("training…")
    expect(page.locator(".message.run-queued")).to_have_count(0)
    step_gate.allow(10)
    _steps_shown(page, 10)
    page.wait_for_function(f"({LOSS_POINTS_JS})() === 3")
    assert page.evaluate(labels_js("chart-loss")) == ["Helpfulness", "Harmlessness", "Honesty"]
    step_gate.allow(10)
    _steps_shown(page, 20)
    page.wait_for_function(f"({LOSS_POINTS_JS})() === 6")
    # Steps taken give a pace (the server's moving average): the page tells how long the rest should take
    # ("almost done" once that time has passed, as here while the gate holds the run).
    expect(page.locator("#eta")).to_have_text(re.compile(r"^· (about \d+ (s|min) left|almost done)$"))
    expect(page.locator("#status")).to_have_text("running")
    expect(page.locator("#cancel")).to_be_visible()

    step_gate.open()
    expect(page.locator("#status")).to_have_text("succeeded", timeout=60_000)
    _steps_shown(page, STEPS)
    page.wait_for_function(f"({LOSS_POINTS_JS})() === 9")
    expect(page.locator("#eta")).to_have_text("")
    run = RewardModelRun.objects.get()
    for objective in ("helpful", "harmless", "honest"):
        cell = page.locator(f"#final-accuracy td[data-objective={objective}]")
        expect(cell).to_have_text(f"{run.final_metrics[f'eval/accuracy/{objective}']:.3f}")
    assert page.evaluate(labels_js("chart-accuracy")) == ["Helpfulness", "Harmlessness", "Honesty"]
    expect(page.locator("#cancel")).to_have_count(0)
    expect(page.get_by_text(f"Snapshot {run.snapshot_id}")).to_be_visible()


@pytest.mark.slow
def test_researcher_cancels_a_run_and_it_stops_before_its_next_step(page, live_server, login, step_gate,
                                                                    tiny_backbone):
    project = _labelled_project()
    run = reward_run_create(project=project, overrides={"backbone": tiny_backbone, "max_steps": STEPS,
                                                        "batch_size": 2, "max_length": 32})
    login(page, member(project, Role.RESEARCHER), next=f"/projects/{project.slug}/reward-runs/{run.pk}/")
    step_gate.allow(10)
    _steps_shown(page, 10)

    page.click("#cancel")
    # At once on the page, before the server answers.
    expect(page.locator("#cancel")).to_have_text("Cancelling…")
    expect(page.locator("#status")).to_have_text("cancelling…")
    # The server's state says the same while the worker is held before step 11.
    expect(page.locator("#cancel")).to_be_disabled()
    _until(lambda: RewardModelRun.objects.get(pk=run.pk).cancel_requested)
    page.reload()
    expect(page.locator("#status")).to_have_text("cancelling…")
    expect(page.locator("#cancel")).to_have_text("Cancelling…")
    assert RewardModelRun.objects.get(pk=run.pk).status == RunStatus.RUNNING
    step_gate.allow(1)
    expect(page.locator("#status")).to_have_text("cancelled", timeout=30_000)
    _steps_shown(page, 10)
    expect(page.locator("#cancel")).to_have_count(0)
    page.wait_for_function(f"({LOSS_POINTS_JS})() === 3")
    run.refresh_from_db()
    assert run.step == 10 and run.finished_at is not None
    # A cancelled run keeps its curves when its page is opened again.
    page.reload()
    page.wait_for_function(f"({LOSS_POINTS_JS})() === 3")


def _until(condition, attempts: int = 300) -> None:
    """Wait until ``condition()`` holds, asking the database again every 0.1 s (a bounded number of times)."""
    for _ in range(attempts):
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError("condition never held")


def test_annotator_cannot_open_the_dashboard(page, live_server, login):
    project = make_project()
    annotator = member(project, Role.ANNOTATOR)
    login(page, annotator, next="/")
    response = page.goto(f"{live_server.url}/projects/{project.slug}/dashboard/")
    assert response.status == 403
    response = page.goto(f"{live_server.url}/api/v1/projects/{project.slug}/reward-runs/")
    assert response.status == 403


def test_run_and_compare_pages_follow_metric_chunks_to_the_last_point(page, live_server, login, settings):
    settings.MORM_METRICS_CHUNK_POINTS = 7
    project = make_project(comparisons=2, overlap_k=1, gold_rate=0)
    annotate(project, member(project), {"harmless": 1})
    runs = [reward_run_create(project=project, enqueue=False) for _ in range(2)]
    for run in runs:
        writer = MetricsWriter(run, batch_size=10_000, interval=3600)
        for step in range(1, 41):
            writer.log(step, {f"train/loss/{key}": 1 / step for key in ("helpful", "harmless", "honest")})
        writer.progress(40, 40)
        writer.flush()
    RewardModelRun.objects.update(status=RunStatus.SUCCEEDED)
    login(page, member(project, Role.RESEARCHER), next=f"/projects/{project.slug}/reward-runs/{runs[0].pk}/")
    # 120 points in chunks of at most 7: the page asks until `next` is null.
    page.wait_for_function(f"({LOSS_POINTS_JS})() === 120")
    expect(page.locator("#cancel")).to_have_count(0)
    page.goto(f"{live_server.url}/projects/{project.slug}/reward-runs/compare/?runs={runs[0].pk}&runs={runs[1].pk}")
    # Once the page has asked for every chunk of both runs, it draws each point once.
    expect(page.locator("#compare-charts")).not_to_have_attribute("aria-busy", "true")
    assert page.evaluate(LOSS_POINTS_JS) == 240


def test_the_reward_form_shows_the_settings_and_defaults_of_the_selected_mode(page, live_server, login):
    project = _labelled_project()
    login(page, member(project, Role.RESEARCHER), next=f"/projects/{project.slug}/dashboard/")
    stepped = ["epochs", "max_steps", "min_steps", "learning_rate", "batch_size", "lora_r"]
    frozen = ["frozen_l2", "cv_folds"]

    def shown(names: list[str], visible: bool) -> None:
        for name in names:
            field = page.locator(f"input[name={name}]")
            (expect(field).to_be_visible if visible else expect(field).to_be_hidden)()
            (expect(field).to_be_enabled if visible else expect(field).to_be_disabled)()

    expect(page.locator("select[name=mode]")).to_have_value("multi_head")
    page.click("#train-form details.advanced > summary")
    shown(stepped, True)
    shown(frozen, False)
    expect(page.locator("input[name=min_steps]")).to_have_value("50")
    page.select_option("select[name=mode]", "frozen")
    shown(stepped, False)
    shown(frozen, True)
    expect(page.locator("input[name=cv_folds]")).to_have_value("5")
    expect(page.locator("input[name=frozen_l2]")).to_have_value("")  # blank: chosen by cross-validation
    page.select_option("select[name=mode]", "separate")
    shown(stepped, True)
    shown(frozen, False)


@pytest.mark.slow
def test_a_frozen_run_shows_one_step_per_objective_and_an_eta_after_its_first_fit(page, login, step_gate,
                                                                                   tiny_backbone):
    project = _labelled_project()
    run = reward_run_create(project=project, overrides={"backbone": tiny_backbone, "mode": "frozen",
                                                        "max_length": 32})
    login(page, member(project, Role.RESEARCHER), next=f"/projects/{project.slug}/reward-runs/{run.pk}/")
    expect(page.locator("#step")).to_have_text("0 / 3")  # known at queue time: one fit per objective
    expect(page.locator("#stage")).to_have_text("fitting heads…", timeout=30_000)
    expect(page.locator("#eta")).to_have_text("")  # no pace before the first fit
    step_gate.allow(1)
    expect(page.locator("#step")).to_have_text("1 / 3", timeout=30_000)
    expect(page.locator("#eta")).to_have_text(re.compile(r"^· (about \d+ (s|min) left|almost done)$"))
    step_gate.open()
    expect(page.locator("#status")).to_have_text("succeeded", timeout=60_000)
    expect(page.locator("#eta")).to_have_text("")
    expect(page.locator("#stage")).to_have_text("")
