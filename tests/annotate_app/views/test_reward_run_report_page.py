"""The run page's report section: the figures the worker stored, as tables and the data its charts read."""

import json
import re

import pytest

from annotate_app.models import Role
from tests.factories import logged_in_client, make_project, member, reported_reward_run, succeeded_reward_run

pytestmark = pytest.mark.django_db


@pytest.fixture
def project():
    return make_project(comparisons=2, overlap_k=1, gold_rate=0)


def _page(project, run) -> str:
    client = logged_in_client(member(project, Role.RESEARCHER))
    response = client.get(f"/projects/{project.slug}/reward-runs/{run.pk}/")
    assert response.status_code == 200
    return response.content.decode()


def test_the_report_shows_every_figure_per_objective_and_hands_its_charts_the_data(project):
    run = reported_reward_run(project)
    page = _page(project, run)
    row = re.search(r'<tr data-objective="harmless">(.*?)</tr>', page, re.S).group(1)
    # Accuracy 1 of 2 with its Wilson interval; the two annotators never agree: 0 of 2 couples.
    assert "0.500" in row and "[0.095, 0.905] n=2" in row
    assert "0.000 <span class=\"help\">[0.000, 0.658] n=2" in row
    assert 'id="head-correlation"' in page and 'src="/static/js/report_charts.js"' in page
    data = json.loads(re.search(r'<script id="report-data" type="application/json">(.*?)</script>', page, re.S)
                      .group(1))
    assert data == run.report
    assert "<script>" not in page  # the policy refuses inline scripts: data only, as JSON


def test_a_run_that_held_nothing_out_says_so_and_loads_no_report_script(project):
    run = succeeded_reward_run(project)
    page = _page(project, run)
    assert "No report: the run held no pairs out" in page and "report_charts.js" not in page
