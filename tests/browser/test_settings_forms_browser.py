"""The settings forms in the browser: New project fills the slug from the name; the dashboard's run forms
keep their advanced settings in a collapsed section that opens."""

import pytest
from django.contrib.auth.models import Group
from django.utils.text import slugify
from playwright.sync_api import expect

from annotate_app.models import Project, Role
from tests.factories import labelled_project, make_user, member, succeeded_reward_run

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_typing_a_name_fills_the_slug_until_the_slug_is_edited(strict_page, live_server, login):
    page = strict_page  # under the app's Content-Security-Policy: the script is a static file
    admin = make_user()
    admin.groups.add(Group.objects.get(name="admin"))
    login(page, admin, next="/projects/new/")
    name, slug = page.locator("input[name=name]"), page.locator("input[name=slug]")
    # The page's slug is the one the server makes of a name (django.utils.text.slugify).
    for text in ("Crème brûlée: Ölçüm #2", "  --Hello__World--  ", "日本 Team ½", "a" * 80):
        name.fill(text)
        expect(slug).to_have_value(slugify(text)[:64].strip("-_"))
    name.fill("")
    name.press_sequentially("Kitchen Pilot")
    expect(slug).to_have_value("kitchen-pilot")

    slug.fill("kitchen-2026")
    name.fill("Kitchen Pilot Two")
    expect(slug).to_have_value("kitchen-2026")  # edited by hand: the name no longer changes it
    page.click("#project-form button[type=submit]")
    page.wait_for_url(f"{live_server.url}/projects/kitchen-2026/members/")
    assert Project.objects.get(slug="kitchen-2026").name == "Kitchen Pilot Two"


def test_the_dashboards_advanced_settings_are_collapsed_and_open(page, live_server, login):
    project = labelled_project()
    succeeded_reward_run(project)
    login(page, member(project, Role.RESEARCHER), next=f"/projects/{project.slug}/dashboard/")
    train = page.locator("#train-form")
    advanced = train.locator("details.advanced")
    expect(advanced).not_to_have_attribute("open", "")
    expect(train.locator("input[name=learning_rate]")).to_be_visible()
    expect(train.locator("input[name=batch_size]")).to_be_hidden()
    advanced.locator("summary").click()
    expect(advanced).to_have_attribute("open", "")
    expect(train.locator("input[name=batch_size]")).to_be_visible()

    # PPO: the constraint's settings show under the constrained scalarization only, among the basic ones.
    ppo = page.locator("#ppo-form")
    expect(ppo.locator("details.advanced")).not_to_have_attribute("open", "")
    expect(ppo.locator("input[name=max_new_tokens]")).to_be_hidden()
    expect(ppo.locator("select[name=constraint_objective]")).to_be_hidden()
    ppo.locator("select[name=scalarization]").select_option("constrained")
    expect(ppo.locator("select[name=constraint_objective]")).to_be_visible()
    expect(ppo.locator("input[name=constraint_threshold]")).to_be_enabled()
    expect(ppo.locator("input[name=w_end_helpful]")).to_be_hidden()
    ppo.locator("select[name=scalarization]").select_option("schedule")
    expect(ppo.locator("input[name=w_end_helpful]")).to_be_visible()
    expect(ppo.locator("select[name=constraint_objective]")).to_be_disabled()
