"""The comparison browser: filters, sorting, keyset pages, who sees what, and gold marked from the detail page."""

import re
from urllib.parse import urlencode

import pytest

from annotate_app.models import Comparison, Role
from annotate_app.services.gold import comparison_mark_gold
from tests.factories import (
    annotate,
    import_lines,
    logged_in_client,
    make_project,
    member,
    native_line,
    reported_reward_run,
)

pytestmark = pytest.mark.django_db


def _ids(project, names):
    return [Comparison.objects.get(project=project, external_id=name).pk for name in names]


@pytest.fixture
def browsed():
    """c0..c5 with k=2: c0 (annotators disagree on helpful) and c1 complete, c2 one annotation whose objectives
    conflict, c3..c5 unlabeled, c5 gold; c6 imported with labels that conflict."""
    project = make_project(comparisons=6, overlap_k=2, gold_rate=0)
    first, second = member(project, username="ann"), member(project, username="bo")
    scores = {"c0": ({"helpful": -2}, {"helpful": 2}), "c1": ({"helpful": 1}, {"helpful": 3}),
              "c2": ({"helpful": -1, "harmless": 2}, None)}
    names = dict(project.comparisons.values_list("pk", "external_id"))
    for user, column in ((first, 0), (second, 1)):
        for name, pair in scores.items():
            if pair[column] is not None:
                task = annotate(project, user, lambda c, column=column: scores[names[c.pk]][column])
                assert names[task.comparison_id] == name  # the queue hands comparisons out in id order
    comparison_mark_gold(comparison=project.comparisons.get(external_id="c5"), expected={"helpful": "A"})
    import_lines(project, [native_line(6, labels={"helpful": "A", "harmless": "B"})])
    admin, researcher = member(project, Role.ADMIN), member(project, Role.RESEARCHER)
    return project, admin, researcher


def _listed(client, project, query=""):
    response = client.get(f"/projects/{project.slug}/comparisons/?{query}")
    assert response.status_code == 200, response.content
    return [row.pk for row in response.context["page"].rows]


def _pages_back(client, project, response) -> list[list[int]]:
    """Follow Previous from the page ``response`` shows to the first page; the ids of each page, in order."""
    back, response = [], client.get(f"/projects/{project.slug}/comparisons/{response.context['previous_url']}")
    while True:
        back.insert(0, [row.pk for row in response.context["page"].rows])
        if not response.context["page"].previous:
            return back
        response = client.get(f"/projects/{project.slug}/comparisons/{response.context['previous_url']}")


@pytest.mark.parametrize(("query", "names"), [
    ("", ["c0", "c1", "c2", "c3", "c4", "c5", "c6"]),
    ("status=labeled", ["c0", "c1", "c2"]),
    ("status=unlabeled", ["c3", "c4", "c5", "c6"]),
    ("status=complete", ["c0", "c1"]),
    ("agreement_below=0.6", ["c0"]),
    ("agreement_below=0.4", []),
    ("conflict=on", ["c2", "c6"]),
    ("gold=on", ["c5"]),
    ("imported=on", ["c6"]),
    ("q=NUMBER 4", ["c4"]),
    ("q=second answer to 3", ["c3"]),
    ("status=labeled&conflict=on", ["c2"]),
    ("sort=-id", ["c6", "c5", "c4", "c3", "c2", "c1", "c0"]),
    ("sort=-submitted", ["c1", "c0", "c2", "c6", "c5", "c4", "c3"]),
    ("sort=submitted&status=labeled", ["c2", "c0", "c1"]),
])
def test_each_filter_and_sort_lists_exactly_its_comparisons(browsed, query, names):
    project, admin, _ = browsed
    assert _listed(logged_in_client(admin), project, query) == _ids(project, names)


def test_the_list_shows_counts_agreement_and_gold(browsed):
    project, admin, _ = browsed
    html = logged_in_client(admin).get(f"/projects/{project.slug}/comparisons/?status=complete").content.decode()
    assert "2 / 2" in html and "0.50" in html and "1.00" in html and "2 complete (2 annotations each)" in html
    assert "Question number 0?" in html and "canonical orientation" in html


@pytest.mark.parametrize(("query", "field"), [
    ("agreement_below=abc", "Agreement below"), ("agreement_below=1.5", "Agreement below"),
    ("status=done", "status"), ("sort=name", "sort"), ("after=12", "after"), ("before=x.1", "before"),
    (f"after=1.{2**63}", "after"), (f"before={2**64}.1", "before"), ("after=1.2.3", "after"),
    ("after=1.2&before=1.2", "not both"),
])
def test_bad_query_parameters_are_refused_naming_the_field(browsed, query, field):
    project, admin, _ = browsed
    response = logged_in_client(admin).get(f"/projects/{project.slug}/comparisons/?{query}")
    assert response.status_code == 400
    assert field.lower() in response.content.decode().lower()


@pytest.mark.parametrize("sort", ["id", "-id", "submitted", "-submitted"])
def test_pages_follow_each_other_without_gaps_or_repeats(browsed, sort, monkeypatch):
    project, admin, _ = browsed
    client = logged_in_client(admin)
    everything = _listed(client, project, f"sort={sort}&q=question")
    monkeypatch.setattr("annotate_app.selectors.comparisons.PER_PAGE", 2)
    pages, url = [], f"/projects/{project.slug}/comparisons/?sort={sort}&q=question"
    while url:
        response = client.get(url)
        pages.append([row.pk for row in response.context["page"].rows])
        url = response.context["page"].next and response.context["next_url"]
        url = url and f"/projects/{project.slug}/comparisons/{url}"
    assert [pk for page in pages for pk in page] == everything
    assert len(everything) == 7 and [len(page) for page in pages] == [2, 2, 2, 1]
    # Back from the last page, page by page, to the first.
    back = _pages_back(client, project, response)
    assert back == pages[:-1]


def test_annotators_and_strangers_cannot_browse(browsed):
    project, _, _ = browsed
    comparison = project.comparisons.first()
    annotator = logged_in_client(project.memberships.get(user__username="ann").user)
    assert annotator.get(f"/projects/{project.slug}/comparisons/").status_code == 403
    assert annotator.get(f"/projects/{project.slug}/comparisons/{comparison.pk}/").status_code == 403
    stranger = logged_in_client(member(make_project()))
    assert stranger.get(f"/projects/{project.slug}/comparisons/").status_code == 404


def test_the_detail_page_names_annotators_to_admins_only(browsed):
    project, admin, researcher = browsed
    url = f"/projects/{project.slug}/comparisons/{_ids(project, ['c0'])[0]}/"
    admin_html = logged_in_client(admin).get(url).content.decode()
    assert "ann" in admin_html and "bo" in admin_html and "annotator 1" not in admin_html
    researcher_html = logged_in_client(researcher).get(url).content.decode()
    assert "annotator 1" in researcher_html and "annotator 2" in researcher_html
    assert not re.search(r"\b(ann|bo)\b", researcher_html)
    assert "A is better" in researcher_html and "B is better" in researcher_html  # c0: A strongly vs B strongly


def test_the_detail_page_shows_imported_labels(browsed):
    project, admin, _ = browsed
    html = logged_in_client(admin).get(f"/projects/{project.slug}/comparisons/{_ids(project, ['c6'])[0]}/")
    html = html.content.decode()
    assert "No annotator has judged this comparison yet." in html
    imported = html[html.index('id="imported-labels"'):]
    assert "-1.00" in imported and "1.00" in imported and "import " in imported


def test_a_picked_reward_run_shows_each_heads_held_out_accuracy(browsed):
    project, admin, _ = browsed
    url = f"/projects/{project.slug}/comparisons/{_ids(project, ['c0'])[0]}/"
    client = logged_in_client(admin)
    assert "No reward-model run of this project has succeeded yet." in client.get(url).content.decode()
    run = reported_reward_run(project)
    assert f'<option value="{run.pk}"' in client.get(url).content.decode()
    html = client.get(f"{url}?run={run.pk}").content.decode()
    accuracy = run.report["objectives"]["harmless"]["accuracy"]
    assert f"n={accuracy['n']}" in html and f"Score with run {run.pk}" in html
    assert client.get(f"{url}?run=999999").status_code == 404
    assert client.get(f"{url}?run=abc").status_code == 404


def test_an_admin_marks_gold_by_the_sides_shown(browsed):
    project, admin, _ = browsed
    comparison = project.comparisons.get(external_id="c3")
    url = f"/projects/{project.slug}/comparisons/{comparison.pk}/"
    client = logged_in_client(admin)
    assert "A (left) is better" in client.get(url).content.decode()
    response = client.post(url, {"expected_helpful": "B", "expected_harmless": "tie", "expected_honest": ""})
    assert response.status_code == 302
    comparison.refresh_from_db()
    assert comparison.is_gold and comparison.gold_expected == {"helpful": "B", "harmless": "tie"}
    assert _listed(client, project, "gold=on") == _ids(project, ["c3", "c5"])


@pytest.mark.parametrize(("data", "message"), [
    ({}, "at least one objective"), ({"expected_helpful": "left"}, "Expected: Helpfulness"),
])
def test_bad_gold_answers_are_refused(browsed, data, message):
    project, admin, _ = browsed
    comparison = project.comparisons.get(external_id="c3")
    response = logged_in_client(admin).post(f"/projects/{project.slug}/comparisons/{comparison.pk}/", data)
    assert response.status_code == 400
    assert message in response.content.decode()
    comparison.refresh_from_db()
    assert not comparison.is_gold


def test_researchers_see_no_gold_form_and_cannot_post_one(browsed):
    project, _, researcher = browsed
    comparison = project.comparisons.get(external_id="c3")
    client = logged_in_client(researcher)
    url = f"/projects/{project.slug}/comparisons/{comparison.pk}/"
    assert "gold-form" not in client.get(url).content.decode()
    assert client.post(url, {"expected_helpful": "A"}).status_code == 403
    comparison.refresh_from_db()
    assert not comparison.is_gold


def test_a_comparison_of_another_project_or_out_of_range_is_404(browsed):
    project, admin, _ = browsed
    other = make_project(comparisons=1).comparisons.get()
    client = logged_in_client(admin)
    assert client.get(f"/projects/{project.slug}/comparisons/{other.pk}/").status_code == 404
    assert client.get(f"/projects/{project.slug}/comparisons/{2**64}/").status_code == 404


@pytest.mark.parametrize("sort", ["id", "-submitted"])
def test_a_filtered_page_looks_at_a_bounded_window_and_the_next_goes_on(browsed, sort, monkeypatch):
    project, admin, _ = browsed
    client = logged_in_client(admin)
    query = f"sort={sort}&status=unlabeled"
    everything = _listed(client, project, query)
    monkeypatch.setattr("annotate_app.selectors.comparisons.SCAN_WINDOW", 2)
    pages, scanned, url = [], [], f"/projects/{project.slug}/comparisons/?{query}"
    while url:
        response = client.get(url)
        page = response.context["page"]
        pages.append([row.pk for row in page.rows])
        scanned.append(page.scanned_to)
        url = page.next and f"/projects/{project.slug}/comparisons/{response.context['next_url']}"
    assert [pk for page in pages for pk in page] == everything
    assert all(len(page) <= 2 for page in pages) and [] in pages  # a window of two labeled rows matched none
    assert scanned[pages.index([])] is not None
    first_page = client.get(f"/projects/{project.slug}/comparisons/?{query}").content.decode()
    assert "looked at 2 comparisons" in first_page  # the first two in either order are labeled
    back = _pages_back(client, project, response)
    assert [pk for page in back for pk in page] == [pk for page in pages[:-1] for pk in page]


@pytest.mark.parametrize("text", ["café", '"quoted"', "plaît", "back\\slash"])
def test_text_search_finds_quotes_accents_and_backslashes_in_a_prompt(text):
    project = make_project()
    import_lines(project, [native_line(1, prompt='Un café, "quoted", s\'il vous plaît, back\\slash'), native_line(2)])
    admin = member(project, Role.ADMIN)
    assert _listed(logged_in_client(admin), project, urlencode({"q": text})) == _ids(project, ["c1"])


def test_text_search_in_a_chat_prompt_matches_its_words_not_its_json():
    project = make_project()
    import_lines(project, [native_line(1, prompt=[{"role": "user", "content": 'Say "hi"'}]), native_line(2)])
    client = logged_in_client(member(project, Role.ADMIN))
    assert _listed(client, project, urlencode({"q": 'say "HI"'})) == _ids(project, ["c1"])
    assert _listed(client, project, urlencode({"q": '"content"'})) == []
