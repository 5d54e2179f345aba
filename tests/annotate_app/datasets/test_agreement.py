"""Krippendorff's α (ordinal) and percent agreement against published and hand-computed values."""

import math

import pytest

from annotate_app.datasets.agreement import krippendorff_alpha, percent_agreement

N = None

# Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", section C: 4 observers x
# 12 units on values 1..5 (None = not coded), whose ordinal α is 0.815. Shifted by -3 onto
# our scale: ordinal α depends only on the order of the values, not where they sit.
KRIPPENDORFF_2011 = [
    [1, 2, 3, 3, 2, 1, 4, 1, 2, N, N, N],
    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, N, 3],
    [N, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, N],
    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, N],
]

# 2 coders x 4 units, computed by hand with the coincidence matrix:
#   units: (-2,-2) (0,1) (1,1) (-2,0)  -> value counts n_-2 = 3, n_0 = 2, n_1 = 3, n = 8
#   coincidences off the diagonal: o(0,1) = o(1,0) = 1, o(-2,0) = o(0,-2) = 1
#   ordinal δ²(c,k) = (n_c + ... + n_k - (n_c + n_k)/2)²  (n_-1 = 0 sits between -2 and 0):
#     δ²(-2,0) = (3+0+2 - 2.5)² = 6.25, δ²(0,1) = (2+3 - 2.5)² = 6.25, δ²(-2,1) = (3+0+2+3 - 3)² = 25
#   Σ o·δ² = 2·6.25 + 2·6.25 = 25
#   Σ n_c·n_k·δ² (c≠k) = 2·(3·2·6.25 + 2·3·6.25 + 3·3·25) = 600
#   α = 1 - (n-1)·25/600 = 1 - 7/24 = 17/24 ≈ 0.7083   (nominal α would be 1/3: the order matters)
HAND_ORDINAL = [
    [-2, 0, 1, -2],
    [-2, 1, 1, 0],
]

# 2 coders x 3 units: (-1,-1) (1,1) (-1,1). n_-1 = n_1 = 3, n = 6, o(-1,1) = o(1,-1) = 1,
# δ²(-1,1) = (3+0+3 - 3)² = 9; Σ o·δ² = 18, Σ n_c·n_k·δ² = 2·3·3·9 = 162,
# α = 1 - 5·18/162 = 4/9 ≈ 0.4444
HAND_TWO_VALUES = [
    [-1, 1, -1],
    [-1, 1, 1],
]


def test_alpha_matches_krippendorff_2011_published_example():
    shifted = [[N if value is None else value - 3 for value in row] for row in KRIPPENDORFF_2011]
    assert round(krippendorff_alpha(shifted), 3) == 0.815


@pytest.mark.parametrize(
    "matrix, expected",
    [(HAND_ORDINAL, 17 / 24), (HAND_TWO_VALUES, 4 / 9)],
    ids=["three-values-ordinal", "two-values"],
)
def test_alpha_matches_hand_computation(matrix, expected):
    assert krippendorff_alpha(matrix) == pytest.approx(expected)


def test_a_lone_value_in_a_unit_has_no_pair_and_leaves_alpha_unchanged():
    third_coder_alone = [row + [N] for row in HAND_ORDINAL] + [[N, N, N, N, 3]]
    assert krippendorff_alpha(third_coder_alone) == pytest.approx(17 / 24)


def test_floats_and_nan_mark_the_same_as_ints_and_none():
    as_floats = [[-2.0, 0.0, 1.0, -2.0, math.nan], [-2.0, 1.0, 1.0, 0.0, math.nan]]
    assert krippendorff_alpha(as_floats) == pytest.approx(17 / 24)


def test_perfect_agreement_is_one():
    assert krippendorff_alpha([[-3, 0, 2, N], [-3, 0, 2, 1], [N, 0, 2, 1]]) == 1.0


@pytest.mark.parametrize(
    "matrix",
    [
        [],
        [[N, N], [N, N]],
        [[1, N], [N, -2]],  # every unit has a single judgment: nothing to pair
        [[1, 1], [1, 1]],  # one distinct value: no disagreement is possible, α is 0/0
        [[0, 3], [0, N]],  # the only pairable unit holds one value; the lone 3 does not pair
    ],
    ids=["empty", "all-missing", "no-pairs", "one-value", "one-pairable-value"],
)
def test_alpha_is_none_when_undefined(matrix):
    assert krippendorff_alpha(matrix) is None


def test_values_off_the_scale_are_a_programming_error():
    with pytest.raises(ValueError, match="out-of-domain"):
        krippendorff_alpha([[-1, 4], [-1, 2]])


def test_percent_agreement_pools_pairs_over_units_by_direction():
    # (-1,-2,1): 3 pairs, only (-1,-2) agree (same side, strength ignored); (0,0): 1 pair, agrees;
    # (3,): no pair. 2 agreeing of 4 pairs.
    assert percent_agreement([[-1, -2, 1], [0, 0], [3]]) == 0.5


def test_percent_agreement_counts_a_tie_against_a_side_as_disagreement():
    assert percent_agreement([[0, 1], [-3, -1]]) == 0.5


@pytest.mark.parametrize("units", [[], [[2]], [[], [-1]]], ids=["no-units", "one-judgment", "empty-unit"])
def test_percent_agreement_is_none_without_pairs(units):
    assert percent_agreement(units) is None
