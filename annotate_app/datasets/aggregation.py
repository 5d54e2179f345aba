"""Per comparison and objective: one label from many judgments (pure Python).

Scores are positions on the -3..3 scale (negative: A better, positive: B better).
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
