"""aggregate(): mean signed score, n and agreement on hand-made cases."""

import pytest

from annotate_app.datasets.aggregation import aggregate


@pytest.mark.parametrize(
    "scores, expected",
    [
        ([-2, -2, -2], (-2.0, 3, 1.0, "A")),  # unanimous
        ([-3, 1], (-1.0, 2, 0.5, "A")),  # split: A strongly vs B slightly
        ([2, -2], (0.0, 2, 0.5, "tie")),  # split that cancels out
        ([0, 0, 0], (0.0, 3, 1.0, "tie")),  # all ties
        ([3], (3.0, 1, 1.0, "B")),  # one annotator
        ([-1, 0, 0, 2], (0.25, 4, 0.5, "B")),  # ties are their own direction
        ([-1.5, -1, -3], (-5.5 / 3, 3, 1.0, "A")),  # imported mean (-1.5) next to human scores
    ],
)
def test_aggregate(scores, expected):
    label = aggregate(scores)
    assert (pytest.approx(label.score), label.n, label.agreement, label.choice) == expected


def test_aggregate_needs_scores():
    with pytest.raises(ValueError):
        aggregate([])


def test_label_dict_is_rounded():
    assert aggregate([1, 2, 2]).as_dict() == {"score": 1.6667, "n": 3, "agreement": 1.0}
