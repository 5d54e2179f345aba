"""The comparison browser's detail page with a reward run picked: a button queues the scoring, stored scores show."""

import pytest

from annotate_app.models import Role
from annotate_app.services.comparison_scores import comparison_scores_record
from tests.factories import labelled_project, logged_in_client, member, reported_reward_run

pytestmark = pytest.mark.django_db



@pytest.fixture
def page():
    """(project, comparison, run, detail url)."""
    project = labelled_project()
    comparison, run = project.comparisons.order_by("id").first(), reported_reward_run(project)
    return project, comparison, run, f"/projects/{project.slug}/comparisons/{comparison.pk}/"


@pytest.mark.parametrize("role", [Role.ADMIN, Role.RESEARCHER])
def test_the_button_queues_scoring_by_name_and_comes_back_to_the_run(page, role, sent,
                                                                   django_capture_on_commit_callbacks):
    project, comparison, run, url = page
    client = logged_in_client(member(project, role))
    html = client.get(f"{url}?run={run.pk}").content.decode()
    assert f"Score with run {run.pk}" in html and 'id="comparison-scores"' not in html
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"{url}score/", {"run": run.pk}, follow=True)
    assert response.redirect_chain == [(f"{url}?run={run.pk}", 302)]
    assert sent == [("rm_worker.score_comparisons", run.pk, [comparison.pk])]
    assert "is queued for a training worker" in response.content.decode()


def test_stored_scores_show_per_head_with_the_models_probability(page, sent):
    project, comparison, run, url = page
    comparison_scores_record(run=run, rewards={comparison.pk: {"harmless": {"a": -2.0, "b": 1.0},
                                                               "helpful": {"a": 1.0, "b": 0.0},
                                                               "honest": {"a": 0.5, "b": 0.5}}})
    assert run.config["objectives"].index("helpful") < run.config["objectives"].index("harmless")
    html = logged_in_client(member(project, Role.RESEARCHER)).get(f"{url}?run={run.pk}").content.decode()
    table = html[html.index('id="comparison-scores"'):]
    # σ(1) = 0.731, σ(−3) = 0.047.
    assert "<td>helpful</td><td>1.000</td><td>0.000</td>" in table and "<td>0.731</td><td>A</td>" in table
    assert "<td>harmless</td><td>-2.000</td><td>1.000</td>" in table and "<td>0.047</td><td>B</td>" in table
    assert "<td>honest</td><td>0.500</td><td>0.500</td>" in table and "<td>0.500</td><td>neither</td>" in table
    assert table.index("<td>helpful</td>") < table.index("<td>harmless</td>")  # the run's objective order
    assert "Score with run" not in html
    response = logged_in_client(member(project, Role.ADMIN)).post(f"{url}score/", {"run": run.pk}, follow=True)
    assert "has scored" in response.content.decode() and sent == []


def test_annotators_are_refused_and_a_bad_run_is_rejected(page, sent):
    project, comparison, run, url = page
    annotator = logged_in_client(member(project))
    assert annotator.get(f"{url}?run={run.pk}").status_code == 403
    assert annotator.post(f"{url}score/", {"run": run.pk}).status_code == 403
    admin = logged_in_client(member(project, Role.ADMIN))
    assert admin.post(f"{url}score/", {"run": "abc"}).status_code == 404
    assert admin.post(f"{url}score/", {}).status_code == 404
    assert admin.get(f"{url}score/").status_code == 405
    other = reported_reward_run(labelled_project())
    assert admin.post(f"{url}score/", {"run": other.pk}).status_code == 404  # another project's run is not found
    type(run).objects.filter(pk=run.pk).update(status="failed")
    response = admin.post(f"{url}score/", {"run": run.pk})
    assert response.status_code == 400 and response.content.decode().startswith("run: ")
    assert sent == []
