"""The labeling page in a real browser: keyboard-only labeling, skip, safe rendering, access."""

import re

import pytest
from playwright.sync_api import expect

from annotate_app.models import Annotation, AnnotationRevision, Judgment, Task, TaskStatus
from tests.factories import import_lines, make_project, make_user, member, native_line

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

TASK_IN_ACTION = re.compile(r"/tasks/(\d+)/submit/$")
MIRRORED = {"A": "B", "B": "A", "tie": "tie"}


def label_path(project) -> str:
    return f"/projects/{project.slug}/label/"


def shown_task_id(page) -> int:
    """The task on screen, read from the judgment form's action URL."""
    action = page.locator("#judgment-form").get_attribute("action")
    match = TASK_IN_ACTION.search(action or "")
    assert match, f"unexpected form action {action!r}"
    return int(match.group(1))


def expected_from_key(key: str, *, swapped: bool) -> tuple[str, int | None]:
    """What pressing digit ``key`` stores, in canonical orientation."""
    score = int(key) - 4  # 1..7 -> -3..3: A strongly ... tie ... B strongly
    if score == 0:
        return "tie", None
    shown = "A" if score < 0 else "B"
    return (MIRRORED[shown] if swapped else shown), abs(score)


def objective_keys(project) -> list[str]:
    return list(project.objectives.values_list("key", flat=True))


def test_keyboard_only_labeling_stores_canonical_judgments(page, live_server, login):
    project = make_project(comparisons=3, shuffle_sides=True, overlap_k=1)
    annotator = member(project)
    keys = objective_keys(project)
    assert len(keys) == 3
    # (forced orientation, one digit per objective); together they use every key 1..7.
    plan = [(True, ["1", "4", "6"]), (False, ["2", "7", "3"]), (True, ["5", "2", "4"])]
    rationale = "B hedges; A is direct."

    login(page, annotator, next=label_path(project))
    expect(page.locator("#progress")).to_contain_text("0 done")
    expect(page.locator("#progress")).to_contain_text("3 remaining")

    pressed = {}  # task id -> (swapped, digits)
    for number, (swapped, digits) in enumerate(plan, start=1):
        task_id = shown_task_id(page)
        assert task_id not in pressed
        # Force the side order of the task on screen, then reload so the page shows it.
        Task.objects.filter(pk=task_id).update(shown_swapped=swapped)
        page.reload()
        assert shown_task_id(page) == task_id
        comparison = Task.objects.get(pk=task_id).comparison
        expect(page.locator("#response-A")).to_have_text(comparison.response_b if swapped else comparison.response_a)
        expect(page.locator("fieldset.objective").first).to_have_class(re.compile(r"\bactive\b"))

        if number == 1:
            # R focuses the active objective's rationale; Escape leaves it, then digits label again.
            page.keyboard.press("r")
            expect(page.locator(f"textarea[name=rationale_{keys[0]}]")).to_be_focused()
            page.keyboard.type(rationale)
            page.keyboard.press("Escape")
            expect(page.locator(f"textarea[name=rationale_{keys[0]}]")).not_to_be_focused()
            expect(page.locator(f"textarea[name=rationale_{keys[0]}]")).to_have_value(rationale)

        for digit in digits:
            page.keyboard.press(digit)
        for key, digit in zip(keys, digits):
            expect(page.locator(f"input[name=choice_{key}]").nth(int(digit) - 1)).to_be_checked()

        with page.expect_navigation():
            page.keyboard.press("Enter")
        pressed[task_id] = (swapped, digits)

        if number == 1:
            expect(page.locator("#progress")).to_contain_text("1 done")
            expect(page.locator("#progress")).to_contain_text("2 remaining")
        if number < len(plan):
            expect(page.locator("#judgment-form")).to_be_visible()
        else:
            expect(page.locator("#queue-empty")).to_be_visible()
            expect(page.locator("#queue-empty")).to_contain_text("Nothing left to label")
            expect(page.locator("#queue-empty")).to_contain_text("You labeled 3 comparisons")

    assert {swapped for swapped, _ in pressed.values()} == {True, False}
    for task_id, (swapped, digits) in pressed.items():
        task = Task.objects.get(pk=task_id)
        assert task.status == TaskStatus.SUBMITTED
        assert task.shown_swapped is swapped
        annotation = Annotation.objects.get(task=task)
        assert annotation.annotator == annotator
        assert annotation.time_spent_ms is not None
        stored = {j.objective.key: j for j in annotation.judgments.select_related("objective")}
        assert set(stored) == set(keys)
        for key, digit in zip(keys, digits):
            expected = expected_from_key(digit, swapped=task.annotation.task.shown_swapped)
            assert (stored[key].choice, stored[key].strength) == expected, (task_id, key, digit, swapped)

    rationales = {
        (j.annotation.task_id, j.objective.key): j.rationale
        for j in Judgment.objects.filter(annotation__task__in=pressed).select_related("objective", "annotation")
        if j.rationale
    }
    first_task = next(iter(pressed))
    assert rationales == {(first_task, keys[0]): rationale}


def test_s_key_skips_the_task_and_shows_the_next(page, live_server, login):
    project = make_project(comparisons=2, overlap_k=1)
    annotator = member(project)
    login(page, annotator, next=label_path(project))

    first = shown_task_id(page)
    with page.expect_navigation():
        page.keyboard.press("Shift+S")  # the help shows S; either case skips
    expect(page.locator("#judgment-form")).to_be_visible()
    second = shown_task_id(page)

    assert second != first
    assert Task.objects.get(pk=first).status == TaskStatus.SKIPPED
    assert Task.objects.get(pk=second).status == TaskStatus.LEASED
    assert not Annotation.objects.filter(task_id=first).exists()
    expect(page.locator("#progress")).to_contain_text("0 done")


def test_prompt_and_responses_render_as_literal_text(page, live_server, login):
    project = make_project(overlap_k=1)
    script = "<script>window.__xss = 1</script>"
    img = '<img src=x onerror="window.__xss = 2">'
    import_lines(project, [native_line(0, prompt="<b>hi</b>", response_a=script, response_b=img)])
    annotator = member(project)
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))

    login(page, annotator, next=label_path(project))
    expect(page.locator("#judgment-form")).to_be_visible()
    page.wait_for_load_state("load")

    responses = page.locator("section.responses")
    assert script in responses.inner_text()
    assert img in responses.inner_text()
    assert "<b>hi</b>" in page.locator("section.prompt").inner_text()
    assert page.locator("section.responses img").count() == 0
    assert page.locator("section.responses script").count() == 0
    assert page.locator("section.prompt b").count() == 0
    assert page.evaluate("typeof window.__xss") == "undefined"
    assert dialogs == []


def test_enter_with_an_unanswered_objective_does_not_submit(page, live_server, login):
    project = make_project(comparisons=1, overlap_k=1, shuffle_sides=False)
    annotator = member(project)
    keys = objective_keys(project)
    login(page, annotator, next=label_path(project))
    task_id = shown_task_id(page)
    fieldsets = page.locator("fieldset.objective")

    page.keyboard.press("2")  # first objective; moves to the second
    page.keyboard.press("ArrowDown")  # leave the second unanswered
    page.keyboard.press("6")  # third objective
    page.keyboard.press("Enter")

    # submit() marks the unanswered objective and names it beside Submit instead of submitting the form.
    expect(page.locator("#missing-message")).to_have_text("Missing a judgment for: Harmlessness.")
    expect(fieldsets.nth(1)).to_have_class(re.compile(r"\bmissing\b"))
    expect(fieldsets.nth(1)).to_have_class(re.compile(r"\bactive\b"))
    expect(fieldsets.nth(0)).not_to_have_class(re.compile(r"\bmissing\b"))
    assert shown_task_id(page) == task_id
    assert page.url == f"{live_server.url}{label_path(project)}"
    assert not Annotation.objects.filter(task_id=task_id).exists()

    page.keyboard.press("4")  # answers the missing one
    expect(fieldsets.nth(1)).not_to_have_class(re.compile(r"\bmissing\b"))
    expect(page.locator("#missing-message")).to_be_empty()
    with page.expect_navigation():
        page.keyboard.press("Enter")
    expect(page.locator("#queue-empty")).to_be_visible()
    stored = {
        j.objective.key: (j.choice, j.strength)
        for j in Annotation.objects.get(task_id=task_id).judgments.select_related("objective")
    }
    assert stored == {keys[0]: ("A", 2), keys[1]: ("tie", None), keys[2]: ("B", 2)}


def test_non_member_gets_404_on_the_label_page(page, live_server, login):
    project = make_project(comparisons=1)
    member(project)
    outsider = make_user()
    login(page, outsider, next="/")

    response = page.goto(f"{live_server.url}{label_path(project)}")

    assert response is not None and response.status == 404
    expect(page.locator("#judgment-form")).to_have_count(0)
    assert not Task.objects.filter(annotator=outsider).exists()


def long_text(label: str, paragraphs: int = 60) -> str:
    return "\n\n".join(f"{label} paragraph {i}: " + "a reasonably long sentence " * 8 for i in range(paragraphs))


def inside_viewport(box, width: int, height: int) -> bool:
    return box is not None and box["x"] >= 0 and box["y"] >= 0 and box["x"] + box["width"] <= width \
        and box["y"] + box["height"] <= height


def test_the_page_fits_1400_by_900_and_long_responses_scroll_in_their_boxes(page, live_server, login):
    # The demo's setup: three objectives and flags.
    project = make_project(overlap_k=1, ask_flags=True, shuffle_sides=False)
    prompt = [{"role": "user", "content": "Plan a week of meals."}, {"role": "assistant", "content": "For whom?"},
              {"role": "user", "content": "Two adults, one vegetarian."}]
    import_lines(project, [native_line(0, prompt=prompt, response_a=long_text("A"), response_b=long_text("B"))])
    annotator = member(project)
    page.set_viewport_size({"width": 1400, "height": 900})
    login(page, annotator, next=label_path(project))
    task_id = shown_task_id(page)

    assert page.evaluate("document.documentElement.scrollHeight <= window.innerHeight")
    for selector in ["#submit", "#skip", "section.prompt", "#key-hints", "fieldset.flags"]:
        assert inside_viewport(page.locator(selector).bounding_box(), 1400, 900), selector
    scales = page.locator("fieldset.objective .scale")
    assert scales.count() == 3
    for i in range(3):
        assert inside_viewport(scales.nth(i).bounding_box(), 1400, 900), i
    for side in "AB":
        text = page.locator(f"#response-{side}")
        box = text.bounding_box()
        assert inside_viewport(box, 1400, 900), side
        assert box["height"] > 150, "a response box too small to read"
        assert text.evaluate("el => el.scrollHeight > el.clientHeight"), side
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        page.mouse.wheel(0, 800)
        page.wait_for_function("id => document.getElementById(id).scrollTop > 0", arg=f"response-{side}")
        assert page.evaluate("window.scrollY") == 0
    a_box, b_box = page.locator("#response-A").bounding_box(), page.locator("#response-B").bounding_box()
    assert a_box["x"] + a_box["width"] <= b_box["x"], "responses side by side"

    # Every scale takes a click; Submit is clicked where it is.
    for i, point in enumerate([1, 3, 6]):
        scales.nth(i).locator("label.point").nth(point).click()
    with page.expect_navigation():
        page.locator("#submit").click()
    stored = {j.objective.key: (j.choice, j.strength) for j in Annotation.objects.get(task_id=task_id).judgments.all()}
    assert stored == {"helpful": ("A", 2), "harmless": ("tie", None), "honest": ("B", 3)}

    # Back from the end of the queue: the submission reopens for editing, and Save fits too.
    with page.expect_navigation():
        page.locator("#queue-empty #back").click()
    expect(page.locator("#editing-note")).to_be_visible()
    expect(page.locator("input[name=choice_honest]").nth(6)).to_be_checked()
    assert page.evaluate("document.documentElement.scrollHeight <= window.innerHeight")
    for selector in ["#submit", "#back", "#forward", "#key-hints"]:
        assert inside_viewport(page.locator(selector).bounding_box(), 1400, 900), selector


def test_flag_keys_toggle_the_shown_responses_flags(page, live_server, login):
    project = make_project(comparisons=1, overlap_k=1, ask_flags=True, shuffle_sides=False)
    annotator = member(project)
    login(page, annotator, next=label_path(project))
    task_id = shown_task_id(page)
    Task.objects.filter(pk=task_id).update(shown_swapped=True)
    page.reload()
    expect(page.locator("#key-hints")).to_contain_text("then a digit toggles")

    for key in ["a", "1", "b", "3", "b", "2", "b", "2"]:  # B's second flag on, then off again
        page.keyboard.press(key)
    expect(page.locator("input[name=flags_a]").nth(0)).to_be_checked()
    expect(page.locator("input[name=flags_b]").nth(2)).to_be_checked()
    expect(page.locator("input[name=flags_b]").nth(1)).not_to_be_checked()
    for key in ["4", "4", "4"]:
        page.keyboard.press(key)
    with page.expect_navigation():
        page.keyboard.press("Enter")

    annotation = Annotation.objects.get(task_id=task_id)
    # Shown A was canonical B: the flags are stored in canonical orientation.
    assert (annotation.flags_a, annotation.flags_b) == (["refuses_needlessly"], ["unsafe"])


def test_backspace_reopens_earlier_submissions_to_fix_them(page, live_server, login):
    project = make_project(comparisons=3, overlap_k=1, shuffle_sides=False)
    annotator = member(project)
    keys = objective_keys(project)
    login(page, annotator, next=label_path(project))
    submitted = []
    for digits in (["1", "1", "1"], ["7", "7", "7"]):
        submitted.append(shown_task_id(page))
        if len(submitted) == 1:
            Task.objects.filter(pk=submitted[0]).update(shown_swapped=True)
            page.reload()
        for digit in digits:
            page.keyboard.press(digit)
        with page.expect_navigation():
            page.keyboard.press("Enter")
    current = shown_task_id(page)

    with page.expect_navigation():
        page.keyboard.press("Backspace")
    expect(page.locator("#editing-note")).to_be_visible()
    expect(page.locator(f"input[name=choice_{keys[0]}]").nth(6)).to_be_checked()
    with page.expect_navigation():
        page.locator("#back").click()  # the button walks back too
    # The first task as it was seen: sides swapped, the digits pressed checked.
    first = Task.objects.get(pk=submitted[0]).comparison
    expect(page.locator("#response-A")).to_have_text(first.response_b)
    for key in keys:
        expect(page.locator(f"input[name=choice_{key}]").nth(0)).to_be_checked()
    assert page.locator("#submit").inner_text().startswith("Save")

    page.keyboard.press("4")  # helpful becomes a tie; the others stay
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert shown_task_id(page) == current
    expect(page.locator(".message")).to_contain_text("Saved your changes")
    stored = {j.objective.key: (j.choice, j.strength)
              for j in Annotation.objects.get(task_id=submitted[0]).judgments.select_related("objective")}
    assert stored == {keys[0]: ("tie", None), keys[1]: ("B", 3), keys[2]: ("B", 3)}
    (revision,) = AnnotationRevision.objects.all()
    assert revision.previous["judgments"][keys[0]] == {"choice": "B", "strength": 3, "rationale": "",
                                                       "likert_a": None, "likert_b": None}
    assert Task.objects.get(pk=submitted[0]).status == TaskStatus.SUBMITTED

    # N goes from an earlier submission back to the current task without saving.
    with page.expect_navigation():
        page.keyboard.press("Backspace")
    with page.expect_navigation():
        page.keyboard.press("n")
    assert shown_task_id(page) == current
    assert AnnotationRevision.objects.count() == 1
