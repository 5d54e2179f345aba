"""Weight sweeps over REST: one call queues a PPO run per weight vector; bad input is a 4xx naming the field,
and queues nothing."""

import pytest

from annotate_app.models import PolicyRun, PolicySweep, Role, RunStatus
from tests.factories import labelled_project, make_project, member, succeeded_reward_run

pytestmark = pytest.mark.django_db


@pytest.fixture
def project(settings):
    settings.MORM_MAX_ACTIVE_RUNS_PER_PROJECT = 10
    return labelled_project()


def _url(project):
    return f"/api/v1/projects/{project.slug}/policy-sweeps/"


def test_a_sweep_returns_its_run_ids_and_sends_them_as_one_group(api, project, sent,
                                                                 django_capture_on_commit_callbacks):
    reward_run = succeeded_reward_run(project)
    api.force_authenticate(member(project, Role.RESEARCHER))
    body = {"reward_run": reward_run.pk, "name": "halves", "grid": {"simplex_step": 0.5, "objectives":
            ["helpful", "harmless"]}, "config": {"steps": 2}}
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(_url(project), body, format="json")
    assert response.status_code == 202, response.json()
    sweep = response.json()
    runs = PolicyRun.objects.filter(sweep_id=sweep["id"]).order_by("pk")
    assert sweep["runs"] == [run.pk for run in runs] and len(runs) == 3
    assert sweep["name"] == "halves" and sweep["reward_run"] == reward_run.pk and sweep["grid"] == body["grid"]
    assert [run.config["weights"]["helpful"] for run in runs] == [1.0, 0.5, 0.0]
    assert {run.config["steps"] for run in runs} == {2}
    assert sent == [("rm_worker.run_ppo", run.pk) for run in runs] and len(set(sent.group_ids)) == 1
    listed = api.get(f"/api/v1/projects/{project.slug}/policy-runs/").json()["results"]
    assert sorted(run["id"] for run in listed) == sweep["runs"]


@pytest.mark.parametrize(
    "body, fragment",
    [
        ({"grid": {"simplex_step": 0.5}}, "reward_run: This field is required."),
        ({"reward_run": 999999, "grid": {"simplex_step": 0.5}}, 'reward_run: Invalid pk "999999"'),
        ({"reward_run": "R"}, "grid: This field is required."),
        ({"reward_run": "R", "grid": "0.5"}, "grid: Expected a dictionary"),
        ({"reward_run": "R", "grid": {"simplex_step": 0.3}}, "grid: simplex_step: expected a step that divides 1"),
        ({"reward_run": "R", "grid": {"values": {"style": [1]}}}, "grid: Unknown objective: style"),
        ({"reward_run": "R", "grid": {"values": {"helpful": [-1]}}}, "grid: Weights {'helpful': -1}: weights.helpful"),
        ({"reward_run": "R", "grid": {"weights": [{"helpful": 1}] * 26}}, "grid: 26 weight vectors; a sweep has at "
                                                                            "most 25 runs (MORM_MAX_SWEEP_RUNS)."),
        ({"reward_run": "R", "grid": {"simplex_step": 1}, "config": {"steps": 0}}, "steps:"),
        ({"reward_run": "R", "grid": {"simplex_step": 1}, "config": {"spin": 1}}, "Unknown setting: spin"),
        ({"reward_run": "R", "grid": {"simplex_step": 1}, "config": {"weights": [1]}}, "weights: Expected {objective"),
        ({"reward_run": "R", "grid": {"simplex_step": 1}, "config": []}, "config: Expected a dictionary"),
        ({"reward_run": "R", "grid": {"simplex_step": 1}, "name": "n" * 201}, "name: Ensure this field has no more"),
    ],
)
def test_bad_input_is_400_naming_the_field_and_queues_nothing(api, project, body, fragment):
    reward_run = succeeded_reward_run(project)
    api.force_authenticate(member(project, Role.RESEARCHER))
    body = {key: reward_run.pk if value == "R" else value for key, value in body.items()}
    response = api.post(_url(project), body, format="json")
    assert response.status_code == 400 and fragment in response.json()["detail"], response.json()
    assert not PolicyRun.objects.exists() and not PolicySweep.objects.exists()


def test_a_sweep_over_the_quota_is_429_and_queues_none(api, project, settings):
    settings.MORM_MAX_ACTIVE_RUNS_PER_PROJECT = 2
    reward_run = succeeded_reward_run(project)
    api.force_authenticate(member(project, Role.RESEARCHER))
    response = api.post(_url(project), {"reward_run": reward_run.pk, "grid": {"values": {"helpful": [0, 1, 2]}}},
                        format="json")
    assert response.status_code == 429 and "so 3 more do not fit" in response.json()["detail"]
    assert not PolicyRun.objects.exists() and not PolicySweep.objects.exists()


def test_only_the_projects_admins_and_researchers_may_sweep(api, project):
    reward_run = succeeded_reward_run(project)
    body = {"reward_run": reward_run.pk, "grid": {"simplex_step": 1}}
    api.force_authenticate(member(project, Role.ANNOTATOR))
    assert api.post(_url(project), body, format="json").status_code == 403
    api.force_authenticate(member(make_project(), Role.RESEARCHER))
    assert api.post(_url(project), body, format="json").status_code == 404
    other = labelled_project()
    api.force_authenticate(member(other, Role.RESEARCHER))
    # Another project's reward run is as unknown as a missing one.
    response = api.post(_url(other), body, format="json")
    assert response.status_code == 400 and "reward_run: Invalid pk" in response.json()["detail"]
    assert not PolicyRun.objects.exists()


def _finish(run_id: int, after: dict[str, float]) -> None:
    """What the worker records: the run succeeded with these held-out rewards; the reference policy's are 0."""
    PolicyRun.objects.filter(pk=run_id).update(
        status=RunStatus.SUCCEEDED,
        eval_after={key: {"raw": value, "normalized": value} for key, value in after.items()},
        eval_before={key: {"raw": 0.0, "normalized": 0.0} for key in after},
    )


def test_a_sweep_reads_back_with_its_pareto_front_and_hypervolume(api, project):
    reward_run = succeeded_reward_run(project)
    api.force_authenticate(member(project, Role.RESEARCHER))
    created = api.post(_url(project), {"reward_run": reward_run.pk, "grid": {"values": {"helpful": [1, 2, 3]}}},
                       format="json").json()
    first, second, third = created["runs"]
    detail = api.get(_url(project) + f"{created['id']}/").json()
    assert detail["runs"] == created["runs"] and detail["pareto"] is None  # nothing has finished yet

    _finish(first, {"helpful": 1, "harmless": 3, "honest": 2})
    _finish(second, {"helpful": 2, "harmless": 2, "honest": 1})
    _finish(third, {"helpful": 1, "harmless": 1, "honest": 1})  # below the first everywhere
    pareto = api.get(_url(project) + f"{created['id']}/").json()["pareto"]
    # Slabs: honest 0..1 holds the staircase 2·2 + 1·1, honest 1..2 the first run's 1×3.
    assert pareto == {"objectives": ["helpful", "harmless", "honest"], "reference": [0.0, 0.0, 0.0],
                      "front": [first, second], "hypervolume": 8.0}
    listed = api.get(_url(project)).json()
    assert [sweep["id"] for sweep in listed["results"]] == [created["id"]]
    assert listed["results"][0]["runs"] == created["runs"]
    assert api.get(_url(project) + "999999/").status_code == 404
