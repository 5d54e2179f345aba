"""Gold items: each annotator's accuracy on comparisons with known answers."""

from dataclasses import dataclass

from django.db.models import QuerySet

from ..models import Judgment, Project


@dataclass(frozen=True)
class GoldScore:
    username: str
    correct: int
    answered: int

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.answered if self.answered else None


def gold_judgments(project: Project) -> QuerySet[Judgment]:
    """Human judgments on the project's gold comparisons."""
    return Judgment.objects.filter(
        annotation__comparison__project=project,
        annotation__comparison__is_gold=True,
        annotation__annotator__isnull=False,
    )


def gold_scores(project: Project) -> dict[int, GoldScore]:
    """Per annotator id: judgments on gold items whose choice matched the expected one.

    Only objectives the gold item has an expected answer for count.
    """
    rows = gold_judgments(project).values_list(
        "annotation__annotator_id",
        "annotation__annotator__username",
        "objective__key",
        "choice",
        "annotation__comparison__gold_expected",
    )
    tallies: dict[int, list] = {}
    for user_id, username, objective, choice, expected in rows.iterator(chunk_size=2000):
        if objective not in expected:
            continue
        tally = tallies.setdefault(user_id, [username, 0, 0])
        tally[1] += choice == expected[objective]
        tally[2] += 1
    return {user_id: GoldScore(username, correct, answered) for user_id, (username, correct, answered) in
            tallies.items()}


def annotators_failing_gold(project: Project, threshold: float | None = None) -> set[int]:
    """Ids of annotators whose gold accuracy is below the threshold (project default if None).

    Annotators who have not answered any gold item are not counted as failing.
    """
    threshold = project.gold_pass_accuracy if threshold is None else threshold
    return {
        user_id for user_id, score in gold_scores(project).items()
        if score.accuracy is not None and score.accuracy < threshold
    }
