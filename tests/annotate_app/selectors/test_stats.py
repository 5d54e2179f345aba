"""project_stats(): figures of projects labeled through the services, checked by hand."""

import math

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from annotate_app.datasets.agreement import krippendorff_alpha
from annotate_app.models import Role, Task
from annotate_app.scale import choice_from_score
from annotate_app.selectors.stats import project_stats
from annotate_app.services.annotations import JudgmentInput, annotation_submit
from annotate_app.services.gold import comparison_mark_gold
from annotate_app.services.queue import task_next_for
from tests.factories import import_lines, make_project, member, native_line

pytestmark = pytest.mark.django_db

NO_VOTES = {"-3": 0, "-2": 0, "-1": 0, "0": 0, "1": 0, "2": 0, "3": 0, "unspecified": 0}


def _label_next(project, user, *, swapped: bool = False, **scores: int) -> None:
    """Label the user's next task with canonical scores per objective (honest defaults to a tie).

    With ``swapped`` the screen showed canonical B on the left, so what the annotator
    clicked is the mirror image, which is what we submit.
    """
    task = task_next_for(project=project, user=user)
    Task.objects.filter(pk=task.pk).update(shown_swapped=swapped)
    task.refresh_from_db()
    scores.setdefault("honest", 0)
    shown = {key: JudgmentInput(*choice_from_score(-score if swapped else score)) for key, score in scores.items()}
    annotation_submit(task=task, user=user, judgments=shown)


# Two annotators x four comparisons; the first annotator always saw the canonical order,
# the second always the swapped one. Honest is a tie everywhere.
HELPFUL = ([-2, 0, 1, -2], [-2, 1, 1, 0])
HARMLESS = ([2, -1, 1, 0], [2, -2, 2, 0])


@pytest.fixture
def labeled():
    project = make_project(comparisons=4, overlap_k=2, gold_rate=0)
    for annotator, swapped in enumerate([False, True]):
        user = member(project, Role.ANNOTATOR)
        for helpful, harmless in zip(HELPFUL[annotator], HARMLESS[annotator], strict=True):
            _label_next(project, user, swapped=swapped, helpful=helpful, harmless=harmless)
    return project


def _objective(stats, key):
    return next(objective for objective in stats["objectives"] if objective["key"] == key)


def test_objectives_come_in_project_order_with_their_names(labeled):
    stats = project_stats(labeled)
    assert [(o["key"], o["name"]) for o in stats["objectives"]] == [
        ("helpful", "Helpfulness"), ("harmless", "Harmlessness"), ("honest", "Honesty")
    ]


def test_distribution_counts_human_judgments_per_scale_point(labeled):
    stats = project_stats(labeled)
    assert _objective(stats, "helpful")["distribution"] == {**NO_VOTES, "-2": 3, "0": 2, "1": 3}
    assert _objective(stats, "harmless")["distribution"] == {**NO_VOTES, "-2": 1, "-1": 1, "0": 2, "1": 1, "2": 3}
    assert _objective(stats, "honest")["distribution"] == {**NO_VOTES, "0": 8}


def test_alpha_and_percent_agreement_per_objective(labeled):
    stats = project_stats(labeled)
    helpful = _objective(stats, "helpful")
    # HELPFUL is the hand-computed matrix of tests/annotate_app/datasets/test_agreement.py: α = 17/24.
    assert helpful["alpha"] == round(17 / 24, 4)
    # Same side on comparisons 0 (A, A) and 2 (B, B); tie against a side on 1 and 3.
    assert helpful["percent_agreement"] == 0.5
    harmless = _objective(stats, "harmless")
    assert harmless["alpha"] == round(krippendorff_alpha(HARMLESS), 4)
    assert harmless["percent_agreement"] == 1.0
    honest = _objective(stats, "honest")
    assert (honest["alpha"], honest["percent_agreement"]) == (None, 1.0)  # all ties: α is undefined


def test_position_bias_is_the_share_of_sided_judgments_won_by_the_left_response(labeled):
    stats = project_stats(labeled)
    # Helpful, non-ties. First annotator (canonical order, left = A): A, B, A -> left won 2 of 3.
    # Second (swapped, left = B): A, B, B -> left won 2 of 3.
    assert _objective(stats, "helpful")["position_bias"] == {"left_won": round(4 / 6, 4), "n": 6}
    # Harmless: first B, A, B -> 1 of 3; second B, A, B -> 2 of 3.
    assert _objective(stats, "harmless")["position_bias"] == {"left_won": 0.5, "n": 6}
    assert _objective(stats, "honest")["position_bias"] == {"left_won": None, "n": 0}


def test_objective_correlation_over_comparisons_where_both_means_lean_one_way(labeled):
    correlation = project_stats(labeled)["objective_correlation"]
    # Means: helpful (-2, 0.5, 1, -1), harmless (2, -1.5, 1.5, 0). Comparison 3 has a tied
    # harmless mean and drops out: pairs (-2, 2) (0.5, -1.5) (1, 1.5), two of them in conflict.
    # Pearson by hand: deviations x (-11, 4, 7)/6, y (8, -13, 5)/6;
    # Σdx·dy = -105/36, Σdx² = 186/36, Σdy² = 258/36 -> r = -105 / sqrt(186 · 258) ≈ -0.4793.
    expected = {"conflict_rate": round(2 / 3, 4), "pearson": round(-105 / math.sqrt(186 * 258), 4), "n": 3}
    assert correlation["helpful"]["harmless"] == expected
    assert correlation["harmless"]["helpful"] == expected
    assert correlation["helpful"]["helpful"] == {"conflict_rate": 0.0, "pearson": 1.0, "n": 4}
    # Honest is tied everywhere: no comparison counts, nothing is defined.
    assert correlation["helpful"]["honest"] == {"conflict_rate": None, "pearson": None, "n": 0}
    assert set(correlation) == {"helpful", "harmless", "honest"}


def test_pearson_is_none_when_one_side_is_constant():
    project = make_project(comparisons=2, overlap_k=1, gold_rate=0)
    user = member(project)
    _label_next(project, user, helpful=-1, harmless=2)
    _label_next(project, user, helpful=-3, harmless=2)
    cell = project_stats(project)["objective_correlation"]["helpful"]["harmless"]
    assert cell == {"conflict_rate": 1.0, "pearson": None, "n": 2}


def test_progress_counts_comparisons_gold_complete_annotations_and_annotators():
    project = make_project(comparisons=3, overlap_k=2, gold_rate=1.0)
    comparison_mark_gold(comparison=project.comparisons.get(external_id="c0"), expected={"helpful": "A"})
    import_lines(project, [native_line(10, labels={"helpful": "A"}), native_line(11, labels={"honest": 2})])
    first, second = member(project), member(project)
    for user, tasks in [(first, 3), (second, 2)]:  # gold first, then c1, then c2
        for _ in range(tasks):
            _label_next(project, user, helpful=1, harmless=1)
    progress = project_stats(project)["progress"]
    # c1 has two annotations (complete), c2 one; the gold item's two do not make it "complete".
    assert progress == {"comparisons": 5, "gold": 1, "overlap_k": 2, "complete": 1, "human_annotations": 5,
                        "imported_label_sets": 2, "annotators": 2}


def test_gold_accuracy_per_annotator_against_the_pass_mark():
    project = make_project(comparisons=2, gold_rate=1.0, gold_pass_accuracy=0.7)
    comparison_mark_gold(comparison=project.comparisons.get(external_id="c0"),
                         expected={"helpful": "A", "harmless": "B"})
    member(project, Role.RESEARCHER, username="rita")  # answered nothing: not listed
    _label_next(project, member(project, username="bob"), helpful=-2, harmless=-1)  # 1 of 2 right
    _label_next(project, member(project, username="ann"), helpful=-1, harmless=3)  # 2 of 2 right
    assert project_stats(project)["gold"] == [
        {"username": "ann", "answered": 2, "correct": 2, "accuracy": 1.0, "passing": True},
        {"username": "bob", "answered": 2, "correct": 1, "accuracy": 0.5, "passing": False},
    ]


def test_imported_labels_only_count_in_the_distribution_and_only_when_asked():
    project = make_project(overlap_k=1, gold_rate=0)
    import_lines(project, [
        native_line(0, labels={"helpful": "A", "harmless": -2, "honest": {"score": 1.6}}),
        native_line(1, labels={"helpful": "tie"}),
    ])
    _label_next(project, member(project), helpful=1, harmless=-2)  # on c0, beside the imported labels

    human = project_stats(project)
    assert _objective(human, "helpful")["distribution"] == {**NO_VOTES, "1": 1}
    with_imported = project_stats(project, include_imported=True)
    assert with_imported["include_imported"] is True
    # "A" names a side without a strength; 1.6 rounds to strength 2 on B's side.
    assert _objective(with_imported, "helpful")["distribution"] == {**NO_VOTES, "0": 1, "1": 1, "unspecified": 1}
    assert _objective(with_imported, "harmless")["distribution"] == {**NO_VOTES, "-2": 2}
    assert _objective(with_imported, "honest")["distribution"] == {**NO_VOTES, "0": 1, "2": 1}

    for stats in (human, with_imported):
        helpful = _objective(stats, "helpful")
        # Counted as a second annotator, the imported "A" would disagree with the human "B".
        assert (helpful["alpha"], helpful["percent_agreement"]) == (None, None)
        assert helpful["position_bias"] == {"left_won": 0.0, "n": 1}
        # With the imported -1 averaged in, helpful's mean on c0 would be 0 and drop out.
        assert stats["objective_correlation"]["helpful"]["harmless"] == {"conflict_rate": 1.0, "pearson": None,
                                                                        "n": 1}


def test_empty_project_has_no_figures_but_the_same_shape():
    stats = project_stats(make_project())
    assert stats["progress"]["comparisons"] == 0
    assert [o["distribution"] for o in stats["objectives"]] == [NO_VOTES] * 3
    assert {o["alpha"] for o in stats["objectives"]} == {None}
    assert stats["gold"] == []


def _queries_for(project) -> int:
    with CaptureQueriesContext(connection) as queries:
        project_stats(project, include_imported=True)
    return len(queries)


def test_query_count_does_not_grow_with_the_project():
    small = make_project(comparisons=1, overlap_k=1, gold_rate=0)
    large = make_project(comparisons=6, overlap_k=2, gold_rate=0)
    _label_next(small, member(small), helpful=1, harmless=1)
    for user in (member(large), member(large)):
        for _ in range(6):
            _label_next(large, user, helpful=1, harmless=-1)
    assert _queries_for(small) == _queries_for(large) <= 9


def test_label_figures_come_from_the_latest_submits_once_the_project_outgrows_the_sample(settings):
    settings.MORM_STATS_SAMPLE = 2
    project = make_project(comparisons=3, overlap_k=1)
    user = member(project)
    for scores in ({"helpful": -2}, {"helpful": 3}, {"helpful": 1}):
        task = task_next_for(project=project, user=user)
        shown = -scores["helpful"] if task.shown_swapped else scores["helpful"]
        choice, strength = choice_from_score(shown)
        judgments = {key: JudgmentInput(choice="tie") for key in ("harmless", "honest")}
        judgments["helpful"] = JudgmentInput(choice=choice, strength=strength)
        annotation_submit(task=task, user=user, judgments=judgments)
    stats = project_stats(project)
    assert stats["basis"] == {"comparisons": 2, "whole_project": False}
    helpful = next(o for o in stats["objectives"] if o["key"] == "helpful")
    assert helpful["distribution"]["3"] == helpful["distribution"]["1"] == 1 and helpful["distribution"]["-2"] == 0
    assert stats["progress"]["human_annotations"] == 3  # progress still counts everything
    settings.MORM_STATS_SAMPLE = 5
    assert project_stats(project)["basis"] == {"comparisons": 3, "whole_project": True}
