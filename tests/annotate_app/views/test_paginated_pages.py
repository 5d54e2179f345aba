"""Server-rendered lists come 50 rows a page: page 2 holds the older rows, and each list pages on its own."""

import re

import pytest

from annotate_app.models import ImportBatch, RewardModelRun, Role, RunStatus
from annotate_app.services.policy_runs import policy_run_create
from annotate_app.services.reward_runs import reward_run_create
from annotate_app.services.snapshots import snapshot_create
from tests.factories import annotate, logged_in_client, make_project, make_user, member

pytestmark = pytest.mark.django_db

PER_PAGE = 50


@pytest.fixture
def project():
    project = make_project(comparisons=2, overlap_k=1, gold_rate=0)
    annotate(project, member(project), {"harmless": 1})
    return project


def _ids(html, pattern):
    return [int(found) for found in re.findall(pattern, html)]


def test_dashboard_pages_reward_runs_and_ppo_runs_separately(project):
    snapshot = snapshot_create(project=project, format="jsonl")
    runs = [reward_run_create(project=project, snapshot=snapshot, enqueue=False) for _ in range(PER_PAGE + 2)]
    RewardModelRun.objects.filter(pk=runs[0].pk).update(status=RunStatus.SUCCEEDED)
    runs[0].refresh_from_db()
    policy_runs = [policy_run_create(project=project, reward_run=runs[0], enqueue=False) for _ in range(3)]
    client = logged_in_client(member(project, Role.RESEARCHER))
    url = f"/projects/{project.slug}/dashboard/"

    first = client.get(url).content.decode()
    newest = [run.pk for run in reversed(runs)]
    assert _ids(first, r'<tr data-run="(\d+)">') == newest[:PER_PAGE]
    assert 'href="?page=2"' in first and "Page 1 of 2" in first
    assert _ids(first, r">PPO run (\d+)<") == [run.pk for run in reversed(policy_runs)]

    second = client.get(f"{url}?page=2").content.decode()
    assert _ids(second, r'<tr data-run="(\d+)">') == newest[PER_PAGE:] == [runs[1].pk, runs[0].pk]
    assert 'href="?page=1"' in second and "Page 2 of 2" in second
    assert _ids(second, r">PPO run (\d+)<") == [run.pk for run in reversed(policy_runs)]

    past_the_end = client.get(f"{url}?page=9&ppo_page=nonsense").content.decode()
    assert _ids(past_the_end, r'<tr data-run="(\d+)">') == newest[PER_PAGE:]


def test_dashboard_ppo_page_keeps_the_reward_runs_page(project):
    snapshot = snapshot_create(project=project, format="jsonl")
    reward_run = reward_run_create(project=project, snapshot=snapshot, enqueue=False)
    RewardModelRun.objects.filter(pk=reward_run.pk).update(status=RunStatus.SUCCEEDED)
    reward_run.refresh_from_db()
    policy_runs = [policy_run_create(project=project, reward_run=reward_run, enqueue=False)
                   for _ in range(PER_PAGE + 1)]
    client = logged_in_client(member(project, Role.ADMIN))
    html = client.get(f"/projects/{project.slug}/dashboard/?page=1").content.decode()
    assert 'href="?page=1&amp;ppo_page=2"' in html
    second = client.get(f"/projects/{project.slug}/dashboard/?page=1&ppo_page=2").content.decode()
    assert _ids(second, r">PPO run (\d+)<") == [policy_runs[0].pk]


def test_exports_page_two_holds_the_older_snapshots(project):
    snapshots = [snapshot_create(project=project, format="csv") for _ in range(PER_PAGE + 1)]
    client = logged_in_client(member(project, Role.ADMIN))
    first = client.get(f"/projects/{project.slug}/exports/").content.decode()
    assert _ids(first, r'data-snapshot="(\d+)"') == [s.pk for s in reversed(snapshots)][:PER_PAGE]
    second = client.get(f"/projects/{project.slug}/exports/?page=2").content.decode()
    assert _ids(second, r'data-snapshot="(\d+)"') == [snapshots[0].pk]


def test_import_page_two_holds_the_older_imports():
    admin = make_user()
    project = make_project(members={admin: Role.ADMIN})
    ImportBatch.objects.bulk_create(ImportBatch(project=project, format="native", filename=f"file-{i}.jsonl")
                                    for i in range(PER_PAGE + 1))
    client = logged_in_client(admin)
    first = client.get(f"/projects/{project.slug}/import/").content.decode()
    assert "file-50.jsonl" in first and "file-1.jsonl" in first and "file-0.jsonl" not in first
    second = client.get(f"/projects/{project.slug}/import/?page=2").content.decode()
    assert re.findall(r"file-\d+\.jsonl", second) == ["file-0.jsonl"]


def test_members_and_home_pages_paginate():
    admin = make_user(username="aaa-admin")
    project = make_project(name="Members", members={admin: Role.ADMIN})
    for i in range(PER_PAGE):
        make_project(name=f"Project {i:03d}", members={admin: Role.ANNOTATOR})
        member(project, Role.RESEARCHER, username=f"researcher-{i:03d}", password=None)
    client = logged_in_client(admin)
    members = client.get(f"/projects/{project.slug}/members/").content.decode()
    assert "aaa-admin" in members and "researcher-048" in members and "researcher-049" not in members
    assert "researcher-049" in client.get(f"/projects/{project.slug}/members/?page=2").content.decode()
    home = client.get("/").content.decode()
    assert "Page 1 of 2" in home and "Project 000" in home and "Project 049" not in home
    assert "Project 049" in client.get("/?page=2").content.decode()
