"""Bounded lists: every API list comes a cursor page at a time, newest first, scoped to its project."""

import pytest

from annotate_app.models import ImportBatch, RewardModelRun, Role, RunStatus
from annotate_app.services.policy_runs import policy_run_create, policy_samples_save
from annotate_app.services.reward_runs import reward_run_create
from annotate_app.services.snapshots import snapshot_create
from tests.factories import annotate, follow_next, import_lines, make_project, make_user, member, native_line

pytestmark = pytest.mark.django_db

ROWS = 7
PAGE = 3


def _labeled_project(admin):
    project = make_project(comparisons=2, overlap_k=1, gold_rate=0, members={admin: Role.ADMIN})
    annotate(project, member(project), {"harmless": 1})
    return project


def _succeeded_reward_run(project):
    run = reward_run_create(project=project, enqueue=False)
    RewardModelRun.objects.filter(pk=run.pk).update(status=RunStatus.SUCCEEDED)
    run.refresh_from_db()
    return run


# Each case makes ROWS rows of one list in a project the admin belongs to, and rows of the same kind
# elsewhere; it returns the list's URL, the field naming a row, the rows newest first, and the others.

def _projects(admin):
    mine = [make_project(members={admin: Role.ANNOTATOR}).slug for _ in range(ROWS)]
    others = [make_project().slug for _ in range(2)]
    return "/api/v1/projects/", "slug", mine[::-1], others


def _members(admin):
    project, other = make_project(members={admin: Role.ADMIN}), make_project(members={admin: Role.ADMIN})
    names = [admin.username] + [member(project, password=None).username for _ in range(ROWS - 1)]
    others = [member(other, password=None).username for _ in range(2)]
    return f"/api/v1/projects/{project.slug}/members/", "username", names[::-1], others


def _imports(admin):
    project, other = make_project(members={admin: Role.ADMIN}), make_project(members={admin: Role.ADMIN})
    ids = [import_lines(project, [native_line(i)]).pk for i in range(ROWS)]
    others = [import_lines(other, [native_line(i)]).pk for i in range(2)]
    return f"/api/v1/projects/{project.slug}/imports/", "id", ids[::-1], others


def _snapshots(admin):
    project, other = _labeled_project(admin), _labeled_project(admin)
    ids = [snapshot_create(project=project, format="jsonl").pk for _ in range(ROWS)]
    others = [snapshot_create(project=other, format="csv").pk for _ in range(2)]
    return f"/api/v1/projects/{project.slug}/snapshots/", "id", ids[::-1], others


def _reward_runs(admin):
    project, other = _labeled_project(admin), _labeled_project(admin)
    ids = [reward_run_create(project=project, enqueue=False).pk for _ in range(ROWS)]
    others = [reward_run_create(project=other, enqueue=False).pk for _ in range(2)]
    return f"/api/v1/projects/{project.slug}/reward-runs/", "id", ids[::-1], others


def _policy_runs(admin):
    project, other = _labeled_project(admin), _labeled_project(admin)
    reward_run, other_reward_run = _succeeded_reward_run(project), _succeeded_reward_run(other)
    ids = [policy_run_create(project=project, reward_run=reward_run, enqueue=False).pk for _ in range(ROWS)]
    others = [policy_run_create(project=other, reward_run=other_reward_run, enqueue=False).pk for _ in range(2)]
    return f"/api/v1/projects/{project.slug}/policy-runs/", "id", ids[::-1], others


def _samples(admin):
    project, other = _labeled_project(admin), _labeled_project(admin)
    run, sibling = (policy_run_create(project=project, reward_run=_succeeded_reward_run(project), enqueue=False)
                    for _ in range(2))
    foreign = policy_run_create(project=other, reward_run=_succeeded_reward_run(other), enqueue=False)
    prompts = []
    for step in (1, 2, 3):  # several samples per step: the order must not rest on the step alone
        rows = [{"prompt": f"run {run.pk} step {step} #{i}", "response": "r", "rewards": {"helpful": 0.1},
                 "combined": 0.1} for i in range(3)]
        policy_samples_save(run, step, rows)
        prompts += [row["prompt"] for row in rows]
    others = []
    for elsewhere in (sibling, foreign):
        rows = [{"prompt": f"run {elsewhere.pk}", "response": "r", "rewards": {}, "combined": 0.0}]
        policy_samples_save(elsewhere, 1, rows)
        others.append(rows[0]["prompt"])
    return f"/api/v1/projects/{project.slug}/policy-runs/{run.pk}/samples", "prompt", prompts[::-1], others


CASES = [_projects, _members, _imports, _snapshots, _reward_runs, _policy_runs, _samples]


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.__name__.strip("_"))
def test_walking_next_gets_every_row_once_newest_first_and_nothing_from_elsewhere(api, case):
    admin = make_user()
    url, key, expected, others = case(admin)
    api.force_authenticate(admin)
    pages = follow_next(api, f"{url}?page_size={PAGE}")
    walked = [row[key] for page in pages for row in page["results"]]
    assert len(expected) > PAGE and walked == expected
    assert not set(walked) & set(others)
    assert [len(page["results"]) for page in pages[:-1]] == [PAGE] * (len(pages) - 1)
    assert pages[0]["previous"] is None and pages[-1]["next"] is None
    back = api.get(pages[1]["previous"]).json()
    assert [row[key] for row in back["results"]] == expected[:PAGE]


def test_default_page_size_and_the_cap_on_page_size(api):
    admin = make_user()
    project = make_project(members={admin: Role.ADMIN})
    ImportBatch.objects.bulk_create(ImportBatch(project=project, format="native") for _ in range(230))
    api.force_authenticate(admin)
    url = f"/api/v1/projects/{project.slug}/imports/"
    first = api.get(url).json()
    assert len(first["results"]) == 50 and first["next"] and first["previous"] is None
    assert len(api.get(f"{url}?page_size=1000").json()["results"]) == 200
    assert len(api.get(f"{url}?page_size=nonsense").json()["results"]) == 50
    assert sum(len(page["results"]) for page in follow_next(api, f"{url}?page_size=200")) == 230


def test_a_bad_cursor_is_404_with_a_detail(api):
    admin = make_user()
    project = make_project(members={admin: Role.ADMIN})
    api.force_authenticate(admin)
    response = api.get(f"/api/v1/projects/{project.slug}/imports/?cursor=garbage")
    assert response.status_code == 404 and response.json() == {"detail": "Invalid cursor"}


@pytest.mark.parametrize("tail", ["members/", "imports/"])
def test_members_and_imports_are_listed_to_project_admins_only(api, tail):
    project = make_project(comparisons=1)
    url = f"/api/v1/projects/{project.slug}/{tail}"
    for role in (Role.ANNOTATOR, Role.RESEARCHER):
        api.force_authenticate(member(project, role))
        assert api.get(url).status_code == 403
    api.force_authenticate(make_user())
    assert api.get(url).status_code == 404
    api.force_authenticate(member(project, Role.ADMIN))
    assert api.get(url).status_code == 200


def test_member_and_import_rows_say_who_what_and_how_many(api):
    admin = make_user()
    project = make_project(members={admin: Role.ADMIN})
    import_lines(project, [native_line(1, labels={"honest": "B"}), native_line(2)], format="native",
                 filename="pairs.jsonl")
    api.force_authenticate(admin)
    member_row = api.get(f"/api/v1/projects/{project.slug}/members/").json()["results"][0]
    assert {k: member_row[k] for k in ("username", "role")} == {"username": admin.username, "role": "admin"}
    batch = api.get(f"/api/v1/projects/{project.slug}/imports/").json()["results"][0]
    assert {k: batch[k] for k in ("filename", "format", "created", "skipped", "labels")} == {
        "filename": "pairs.jsonl", "format": "native", "created": 2, "skipped": 0, "labels": 1}


def test_the_schema_shows_paginated_lists(api):
    api.force_authenticate(make_user())
    schema = api.get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    for path, shape in [("/api/v1/projects/", "PaginatedProjectList"),
                        ("/api/v1/projects/{slug}/members/", "PaginatedMembershipList"),
                        ("/api/v1/projects/{slug}/imports/", "PaginatedImportBatchList"),
                        ("/api/v1/projects/{slug}/snapshots/", "PaginatedSnapshotList"),
                        ("/api/v1/projects/{slug}/reward-runs/", "PaginatedRewardRunList"),
                        ("/api/v1/projects/{slug}/policy-runs/", "PaginatedPolicyRunList"),
                        ("/api/v1/projects/{slug}/policy-runs/{run_id}/samples", "PaginatedPolicySampleList")]:
        get = schema["paths"][path]["get"]
        assert get["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith(shape)
        assert {"cursor", "page_size"} <= {parameter["name"] for parameter in get["parameters"]}
    assert set(schema["components"]["schemas"]["PaginatedSnapshotList"]["properties"]) == {
        "next", "previous", "results"}
