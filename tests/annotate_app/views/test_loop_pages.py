"""The project settings page (admins) and the Rounds page (researchers, admins), server side."""

import json
import re

import pytest

from annotate_app.models import Comparison, Generation, PolicyRun, Project, RewardModelRun, Role, Round, RunStatus
from annotate_app.services.policy_runs import policy_run_create
from annotate_app.services.rounds import round_eval_record, round_start
from tests.factories import import_lines, labelled_project, logged_in_client, make_project, member, native_line

pytestmark = pytest.mark.django_db


def _settings_form(project, **values):
    data = {"name": project.name, "description": "", "overlap_k": project.overlap_k, "lease_minutes": 30,
            "shuffle_sides": "on", "gold_rate": 0.1, "gold_pass_accuracy": 0.7, "queue_order": "import",
            "queue_reward_run": "", "retrain_every": 0, "retrain_config": "", "repolicy_config": "",
            "regenerate_config": ""}
    data.update(values)
    return data


def test_the_settings_page_saves_the_loop_settings(sent):
    project = make_project()
    client = logged_in_client(member(project, Role.ADMIN))
    page = client.get(f"/projects/{project.slug}/settings/").content.decode()
    assert "Retrain automatically" in page and page.index("Basics") < page.index("Retrain automatically")
    response = client.post(f"/projects/{project.slug}/settings/", _settings_form(
        project, name="Loop study", retrain_every="20", retrain_config='{"mode": "frozen"}',
        repolicy_config='{"steps": 3, "weights": {"harmless": 0.5}}'))
    assert response.status_code == 302 and response["Location"] == f"/projects/{project.slug}/settings/"
    project.refresh_from_db()
    assert (project.name, project.retrain_every, project.retrain_config) == ("Loop study", 20, {"mode": "frozen"})
    assert project.repolicy_config == {"steps": 3, "weights": {"harmless": 0.5}} and project.regenerate_config is None
    page = client.get(f"/projects/{project.slug}/settings/").content.decode()
    assert "Settings saved." in page and "&quot;frozen&quot;" in page


@pytest.mark.parametrize(("values", "shown"), [
    ({"retrain_config": '{"learning_rate": -1}'}, "learning_rate: Input should be greater than 0"),
    ({"retrain_config": "[1, 2]"}, "Write a JSON object"),
    ({"repolicy_config": "{not json"}, "Enter a valid JSON."),
    ({"queue_order": "uncertain"}, "The uncertain order needs a succeeded reward-model run"),
    ({"overlap_k": "5"}, "Cannot change once the project has comparisons"),
])
def test_the_settings_page_shows_what_is_wrong_and_saves_nothing(values, shown):
    project = labelled_project()
    client = logged_in_client(member(project, Role.ADMIN))
    response = client.post(f"/projects/{project.slug}/settings/", _settings_form(project, description="x", **values))
    assert response.status_code == 200 and shown in response.content.decode()
    assert Project.objects.get(pk=project.pk).description == ""


def test_only_admins_reach_the_settings_page():
    project = make_project()
    for role in (Role.RESEARCHER, Role.ANNOTATOR):
        assert logged_in_client(member(project, role)).get(f"/projects/{project.slug}/settings/").status_code == 403


def _two_rounds(project):
    first = round_start(project=project)
    RewardModelRun.objects.filter(pk=first.reward_run_id).update(status=RunStatus.SUCCEEDED)
    first.refresh_from_db()
    first.policy_run = policy_run_create(project=project, reward_run=first.reward_run, enqueue=False)
    first.save()
    PolicyRun.objects.filter(pk=first.policy_run_id).update(
        status=RunStatus.SUCCEEDED, eval_after={"harmless": {"raw": 0.3, "normalized": 0.25}})
    round_eval_record(round_id=first.pk, accuracy={"helpful": None, "harmless": 0.75, "honest": None}, pairs=4)
    batch = import_lines(project, [native_line(100), native_line(101)])
    Comparison.objects.filter(import_batch=batch, external_id="c100").update(submitted_count=2)
    first.generation = Generation.objects.create(
        project=project, policy_run=first.policy_run, reward_run=first.reward_run, config={},
        status=RunStatus.SUCCEEDED, import_batch=batch, created_count=2)
    first.save(update_fields=["generation"])
    second = round_start(project=project)
    return first, second


def test_the_rounds_page_shows_each_round_and_charts_them(sent):
    project = labelled_project()
    first, second = _two_rounds(project)
    client = logged_in_client(member(project, Role.RESEARCHER))
    response = client.get(f"/projects/{project.slug}/rounds/")
    page = response.content.decode()
    assert response.status_code == 200
    assert f'data-round="{first.number}"' in page and f'data-round="{second.number}"' in page
    assert f"PPO run {first.policy_run_id}" in page and "harmless 0.750" in page and "(4 pairs)" in page
    row = page.split(f'data-round="{first.number}"')[1].split("</tr>")[0]
    assert f"Generation {first.generation_id}" in row and "2 new comparisons" in row and "<td>2</td>" in row
    assert "round 1's reward run held out" in page and "js/rounds_charts.js" in page
    chart = json.loads(re.search(r'id="rounds-chart"[^>]*>(.*?)</script>', page).group(1))
    assert chart["rounds"] == [1, 2]
    assert chart["accuracy"]["harmless"] == [0.75, None] and chart["policy_reward"]["harmless"] == [0.25, None]


def test_a_round_started_by_hand_from_the_rounds_page(sent):
    project = labelled_project()
    client = logged_in_client(member(project, Role.RESEARCHER))
    response = client.post(f"/projects/{project.slug}/rounds/")
    assert response.status_code == 302 and Round.objects.get(project=project).trigger == "manual"
    page = client.post(f"/projects/{project.slug}/rounds/", follow=True).content.decode()
    assert "Round 1&#x27;s reward-model run is still queued" in page and Round.objects.count() == 1


def test_annotators_do_not_see_the_rounds_page():
    project = make_project()
    assert logged_in_client(member(project, Role.ANNOTATOR)).get(f"/projects/{project.slug}/rounds/").status_code == 403
