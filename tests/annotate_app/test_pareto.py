"""Pareto fronts and hypervolume on cases small enough to check by hand (every coordinate maximized)."""

import itertools
import random

import pytest

from annotate_app.pareto import dominates, hypervolume, pareto_front


def test_dominated_points_leave_the_front_and_ties_stay_on_it():
    points = [(1, 3), (2, 2), (1, 1), (3, 1), (2, 2), (0, 3)]
    # (1, 1) is below (2, 2); (0, 3) is below (1, 3) on x only; the two (2, 2) do not dominate each other.
    assert pareto_front(points) == [0, 1, 3, 4]
    assert dominates((1, 3), (0, 3)) and not dominates((2, 2), (2, 2)) and not dominates((1, 3), (3, 1))
    assert pareto_front([]) == [] and pareto_front([(5, -5)]) == [0]


def test_the_hypervolume_of_one_point_is_its_box_and_of_a_staircase_its_union():
    assert hypervolume([(3, 2)], (0, 0)) == 6
    assert hypervolume([(3, 2)], (1, -1)) == 6  # (3 - 1) · (2 + 1)
    # Boxes 1×3, 2×2 and 3×1 from the origin: a staircase of columns 3, 2 and 1 high.
    assert hypervolume([(1, 3), (2, 2), (3, 1)], (0, 0)) == 6
    # A dominated point, a duplicate and a point below the reference change nothing.
    assert hypervolume([(1, 3), (2, 2), (3, 1), (1, 1), (2, 2), (5, -1)], (0, 0)) == 6
    assert hypervolume([], (0, 0)) == 0 and hypervolume([(0, 5)], (0, 0)) == 0


def test_three_dimensional_boxes_add_up_without_their_overlap():
    assert hypervolume([(2, 3, 4)], (0, 0, 0)) == 24
    # Two unit-wide boxes 2×1×1 and 1×2×1 share a 1×1×1 cube: 2 + 2 - 1.
    assert hypervolume([(2, 1, 1), (1, 2, 1)], (0, 0, 0)) == 3
    # Three slabs of volume 4, each pair sharing 2, all three sharing 1: 12 - 6 + 1.
    assert hypervolume([(2, 2, 1), (2, 1, 2), (1, 2, 2)], (0, 0, 0)) == 7


def test_one_dimension_is_the_best_value_above_the_reference():
    assert hypervolume([(0.5,), (2.0,), (-3.0,)], (-1.0,)) == 3.0


@pytest.mark.parametrize("dimensions", [2, 3, 4])
def test_slicing_matches_counting_unit_cells_on_an_integer_grid(dimensions):
    rng = random.Random(dimensions)
    points = [tuple(rng.randint(1, 4) for _ in range(dimensions)) for _ in range(7)]
    cells = sum(
        1 for cell in itertools.product(range(4), repeat=dimensions)
        if any(all(c < p for c, p in zip(cell, point)) for point in points)
    )
    assert hypervolume(points, (0,) * dimensions) == cells
