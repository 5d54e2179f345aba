"""A researcher trains a reward model from the dashboard and watches its curves grow."""

import pytest
from celery.contrib.testing.worker import start_worker
from playwright.sync_api import expect

from annotate_app.models import RewardModelRun, Role, RunStatus
from annotate_app.services.reward_runs import reward_run_create
from config.celery_app import app
from rm_worker.runtime import MetricsWriter
from tests.factories import annotate, make_project, member
from tests.tiny_models import make_tokenizer, tiny_bert

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

POINTS_JS = """() => { const chart = Chart.getChart('chart-loss');
    return chart ? chart.data.datasets.reduce((n, d) => n + d.data.length, 0) : 0; }"""


@pytest.fixture
def training_worker(settings, tmp_path):
    """A real Celery worker thread consuming both queues over kombu's in-memory transport."""
    settings.MORM_ARTIFACTS_DIR = tmp_path / "artifacts"
    saved = {key: app.conf[key] for key in ("broker_url", "result_backend")}
    app.conf.update(broker_url="memory://", result_backend="cache+memory://")
    # Drop connections made with the old broker settings.
    app._pool = None
    app.amqp._producer_pool = None
    with start_worker(app, pool="solo", perform_ping_check=False, queues=["default", "training"],
                      shutdown_timeout=30):
        yield
    app.conf.update(saved)
    app._pool = None
    app.amqp._producer_pool = None


@pytest.fixture
def tiny_backbone(settings, tmp_path):
    """A tiny BERT saved as the model "tiny-bert" under a model root of the operator's."""
    path = tmp_path / "models" / "tiny-bert"
    tiny_bert().save_pretrained(path)
    make_tokenizer("encoder").save_pretrained(path)
    settings.MORM_MODEL_DIRS = [path.parent, *settings.MORM_MODEL_DIRS]
    return path.name


def test_researcher_starts_a_run_and_watches_per_objective_curves(page, live_server, login, training_worker,
                                                                  tiny_backbone):
    project = make_project(comparisons=12, overlap_k=1, gold_rate=0)
    annotator = member(project)
    for i in range(12):
        annotate(project, annotator, {"harmless": 2 if i % 2 else -2, "helpful": -1 if i % 3 else 1, "honest": 1})
    researcher = member(project, Role.RESEARCHER)

    login(page, researcher, next=f"/projects/{project.slug}/dashboard/")
    page.select_option("select[name=backbone]", tiny_backbone)
    # Enough steps that the run outlasts a few of the page's 1 s polls even on a fast machine
    # (400 steps of this tiny model took 1.3 s, finishing between two polls).
    page.fill("input[name=max_steps]", "3000")
    page.fill("input[name=batch_size]", "2")
    page.fill("input[name=max_length]", "32")
    page.fill("input[name=learning_rate]", "0.001")
    page.click("#train-button")
    page.wait_for_url(f"{live_server.url}/projects/{project.slug}/reward-runs/*/")

    # While the run is running, the curves already have points, and they keep gaining points.
    expect(page.locator("#status")).to_have_text("running", timeout=30_000)
    page.wait_for_function(f"({POINTS_JS})() > 0", timeout=30_000)
    seen_while_running = page.evaluate(POINTS_JS)
    status_then = page.locator("#status").inner_text()
    page.wait_for_function(f"({POINTS_JS})() > {seen_while_running}", timeout=60_000)
    assert status_then == "running"

    expect(page.locator("#status")).to_have_text("succeeded", timeout=120_000)
    run = RewardModelRun.objects.get()
    for objective in ("helpful", "harmless", "honest"):
        cell = page.locator(f"#final-accuracy td[data-objective={objective}]")
        expect(cell).to_have_text(f"{run.final_metrics[f'eval/accuracy/{objective}']:.3f}")
    datasets = page.evaluate("() => Chart.getChart('chart-accuracy').data.datasets.map(d => d.label)")
    assert sorted(datasets) == ["harmless", "helpful", "honest"]
    expect(page.locator("#cancel")).to_have_count(0)
    expect(page.get_by_text(f"Snapshot {run.snapshot_id}")).to_be_visible()


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
    page.wait_for_function(f"({POINTS_JS})() === 120")
    expect(page.locator("#cancel")).to_have_count(0)
    page.goto(f"{live_server.url}/projects/{project.slug}/reward-runs/compare/?runs={runs[0].pk}&runs={runs[1].pk}")
    page.wait_for_function(f"({POINTS_JS})() === 240")
    page.wait_for_timeout(500)
    assert page.evaluate(POINTS_JS) == 240
