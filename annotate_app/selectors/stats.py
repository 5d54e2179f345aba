"""Project statistics: progress, per-objective agreement and position bias, trade-offs, gold accuracy."""

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from statistics import correlation

from django.conf import settings
from django.db.models import Count, Q, Sum

from ..datasets.aggregation import aggregate, direction
from ..datasets.agreement import krippendorff_alpha, percent_agreement
from ..models import Annotation, AnnotatorQueue, Choice, Comparison, Judgment, Project, Task, TaskStatus, signed_score
from .gold import annotators_failing_gold, gold_scores

UNSPECIFIED = "unspecified"
SCALE_POINTS = ("-3", "-2", "-1", "0", "1", "2", "3")
DISTRIBUTION_KEYS = (*SCALE_POINTS, UNSPECIFIED)


@dataclass
class _ObjectiveTally:
    """What one pass over the judgments collects for one objective."""

    distribution: Counter = field(default_factory=Counter)
    # comparison id -> annotator id -> signed score, human judgments only.
    scores: defaultdict = field(default_factory=lambda: defaultdict(dict))
    left_won: int = 0
    positioned: int = 0

    def add(self, *, comparison_id, annotator_id, choice, strength, score, shown_swapped) -> None:
        self.distribution[_scale_point(choice, strength)] += 1
        if annotator_id is None:
            return
        self.scores[comparison_id][annotator_id] = signed_score(choice, strength, score)
        # Judgments are stored canonically; only ones made through a task know which
        # side was on screen on the left, and ties favour neither side.
        if shown_swapped is not None and choice != Choice.TIE:
            self.positioned += 1
            self.left_won += (choice == Choice.A) != shown_swapped

    def alpha(self) -> float | None:
        annotators = sorted({annotator for by_annotator in self.scores.values() for annotator in by_annotator})
        return krippendorff_alpha(
            [[by_annotator.get(annotator) for by_annotator in self.scores.values()] for annotator in annotators]
        )

    def mean_scores(self) -> dict[int, float]:
        """comparison id -> mean human score."""
        return {comparison: aggregate(list(by_annotator.values())).score
                for comparison, by_annotator in self.scores.items()}


def project_stats(project: Project, *, include_imported: bool = False) -> dict:
    """Progress and label-quality figures for the project, ready for JSON.

    Agreement, position bias and objective trade-offs come from human judgments only:
    imported labels have no annotator to agree with and were never shown on a screen.
    ``include_imported`` adds imported labels to the per-objective distribution, where a
    label that only names a side counts as "unspecified". A fixed handful of queries,
    however large the project: the label figures are computed over the comparisons of
    the latest ``MORM_STATS_SAMPLE`` submits (and as many imported label sets), which is
    the whole project until it outgrows that; ``basis`` says which.
    """
    objectives = list(project.objectives.all())
    tallies = {objective.pk: _ObjectiveTally() for objective in objectives}
    sample, whole_project = _sample(project, include_imported=include_imported)
    judgments = Judgment.objects.filter(annotation__comparison_id__in=sample)
    if not include_imported:
        judgments = judgments.filter(annotation__annotator__isnull=False)
    rows = judgments.values_list(
        "objective_id", "annotation__comparison_id", "annotation__annotator_id", "choice", "strength", "score",
        "annotation__task__shown_swapped",
    )
    for objective_id, comparison_id, annotator_id, choice, strength, score, shown_swapped in rows.iterator(
        chunk_size=2000
    ):
        tallies[objective_id].add(comparison_id=comparison_id, annotator_id=annotator_id, choice=choice,
                                  strength=strength, score=score, shown_swapped=shown_swapped)
    means = {objective.key: tallies[objective.pk].mean_scores() for objective in objectives}
    return {
        "include_imported": include_imported,
        "basis": {"comparisons": len(sample), "whole_project": whole_project},
        "progress": _progress(project),
        "objectives": [_objective_stats(objective, tallies[objective.pk]) for objective in objectives],
        "objective_correlation": {
            first: {second: _trade_off(means[first], means[second]) for second in means} for first in means
        },
        "gold": _gold(project),
    }


def _sample(project: Project, *, include_imported: bool) -> tuple[set[int], bool]:
    """Ids of the comparisons the label figures are computed over, and whether that is all of them."""
    limit = settings.MORM_STATS_SAMPLE
    recent = Task.objects.filter(project=project, status=TaskStatus.SUBMITTED).order_by("-finished_at")
    submitted = list(recent.values_list("comparison_id", flat=True)[: limit + 1])
    sample, whole_project = set(submitted[:limit]), len(submitted) <= limit
    if include_imported:
        imported = Annotation.objects.filter(source__project=project).order_by()
        labelled = list(imported.values_list("comparison_id", flat=True)[: limit + 1])
        whole_project = whole_project and len(labelled) <= limit
        sample.update(labelled[:limit])
    return sample, whole_project


def _scale_point(choice: str, strength: int | None) -> str:
    if choice != Choice.TIE and strength is None:
        return UNSPECIFIED
    return str(int(signed_score(choice, strength)))


def _progress(project: Project) -> dict:
    """Progress from the maintained counts (services.queue): no count over the project.

    Gold items are few and sit in their own partial index; annotators are counted over
    the project's annotator rows, one per person who ever asked for a task.
    """
    project = Project.objects.get(pk=project.pk)
    annotators = AnnotatorQueue.objects.filter(project=project).aggregate(
        human=Sum("submitted", default=0), annotators=Count("pk", filter=Q(submitted__gt=0))
    )
    return {
        "comparisons": project.comparison_count,
        "gold": Comparison.objects.filter(project=project, is_gold=True).count(),
        "overlap_k": project.overlap_k,
        "complete": project.complete_count,
        "human_annotations": annotators["human"],
        "imported_label_sets": project.imported_label_sets,
        "annotators": annotators["annotators"],
    }


def _objective_stats(objective, tally: _ObjectiveTally) -> dict:
    return {
        "key": objective.key,
        "name": objective.name,
        "distribution": {key: tally.distribution[key] for key in DISTRIBUTION_KEYS},
        "alpha": _rounded(tally.alpha()),
        "percent_agreement": _rounded(percent_agreement([list(by.values()) for by in tally.scores.values()])),
        "position_bias": {"left_won": _rounded(_share(tally.left_won, tally.positioned)), "n": tally.positioned},
    }


def _trade_off(first: dict[int, float], second: dict[int, float]) -> dict:
    """How two objectives' mean labels relate, over comparisons where both lean one way.

    A high conflict rate is what the project exists to expose: the response that is
    better on one objective is worse on the other.
    """
    shared = [
        (first[comparison], second[comparison])
        for comparison in sorted(first.keys() & second.keys())
        if direction(first[comparison]) and direction(second[comparison])
    ]
    conflicts = sum(direction(x) != direction(y) for x, y in shared)
    return {"conflict_rate": _rounded(_share(conflicts, len(shared))), "pearson": _rounded(_pearson(shared)),
            "n": len(shared)}


def _pearson(pairs: list[tuple[float, float]]) -> float | None:
    """Pearson's r, or None where it is undefined (under two points, or a constant side)."""
    xs, ys = [x for x, _ in pairs], [y for _, y in pairs]
    if len(set(xs)) < 2 or len(set(ys)) < 2:
        return None
    return correlation(xs, ys)


def _gold(project: Project) -> list[dict]:
    failing = annotators_failing_gold(project)
    return [
        {"username": score.username, "answered": score.answered, "correct": score.correct,
         "accuracy": _rounded(score.accuracy), "passing": user_id not in failing}
        for user_id, score in sorted(gold_scores(project).items(), key=lambda item: item[1].username)
    ]


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)
