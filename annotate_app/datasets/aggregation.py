"""Per comparison and objective: one label from many judgments, and the mean Likert rating of each
response (pure Python).

Scores are positions on the -3..3 scale (negative: A better, positive: B better). Ratings are 1..7.
"""

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Label:
    """The aggregate of one comparison's judgments on one objective."""

    score: float  # mean signed score, -3..3
    n: int  # judgments aggregated
    agreement: float  # share of judgments pointing the majority way (A, B or tie)

    @property
    def choice(self) -> str:
        """The side the mean favours: "A", "B", or "tie" at exactly 0."""
        return "tie" if self.score == 0 else ("A" if self.score < 0 else "B")

    @classmethod
    def from_counts(cls, *, total: float, n: int, majority: int) -> "Label":
        """The label of n judgments whose scores sum to total, majority of them pointing one way."""
        return cls(score=total / n, n=n, agreement=majority / n)

    def as_dict(self) -> dict:
        return {"score": round(self.score, 4), "n": self.n, "agreement": round(self.agreement, 4)}


def direction(score: float) -> int:
    """-1 (A better), 0 (tie) or 1 (B better)."""
    return (score > 0) - (score < 0)


def aggregate(scores: Sequence[float]) -> Label:
    """Mean signed score, count, and agreement of a non-empty list of judgment scores."""
    if not scores:
        raise ValueError("aggregate() needs at least one score")
    votes = Counter(direction(score) for score in scores)
    return Label.from_counts(total=sum(scores), n=len(scores), majority=max(votes.values()))


@dataclass(frozen=True)
class Rating:
    """The Likert ratings one comparison's judgments gave its two responses on one objective: sums and counts
    per side (a judgment may rate one side, both or neither)."""

    sum_a: float = 0.0
    n_a: int = 0
    sum_b: float = 0.0
    n_b: int = 0

    def add(self, likert_a: float | None, likert_b: float | None) -> "Rating":
        """This rating with one more judgment's ratings (None: that side not rated)."""
        return Rating(
            self.sum_a + (likert_a or 0), self.n_a + (likert_a is not None),
            self.sum_b + (likert_b or 0), self.n_b + (likert_b is not None),
        )

    def as_dict(self) -> dict:
        """A jsonl line's rating of one objective: each side's mean (None where nobody rated it) and count."""
        return {
            "a": round(self.sum_a / self.n_a, 4) if self.n_a else None,
            "b": round(self.sum_b / self.n_b, 4) if self.n_b else None,
            "n_a": self.n_a,
            "n_b": self.n_b,
        }


def aggregate_ratings(judgments: Sequence[dict]) -> dict[str, Rating]:
    """``{objective: Rating}`` of judgment dicts (``objective``, ``likert_a``, ``likert_b``), in judgment order;
    objectives nobody rated are left out."""
    ratings: dict[str, Rating] = {}
    for judgment in judgments:
        if judgment["likert_a"] is not None or judgment["likert_b"] is not None:
            rating = ratings.get(judgment["objective"], Rating())
            ratings[judgment["objective"]] = rating.add(judgment["likert_a"], judgment["likert_b"])
    return ratings
