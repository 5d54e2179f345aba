"""Pareto fronts and hypervolume of points whose every coordinate is maximized (PPO runs' rewards).

Plain Python on tuples of floats, no Django: the trade-off page (``selectors.tradeoffs``) calls it with
one point per finished run.
"""

from collections.abc import Sequence

Point = Sequence[float]


def dominates(a: Point, b: Point) -> bool:
    """Whether ``a`` is at least as good as ``b`` everywhere and better somewhere (all coordinates maximized)."""
    return all(x >= y for x, y in zip(a, b, strict=True)) and any(x > y for x, y in zip(a, b, strict=True))


def pareto_front(points: Sequence[Point]) -> list[int]:
    """Indices of the points no other point dominates, in input order.

    Equal points do not dominate each other, so each of them is on the front when one is.
    O(n²) comparisons: a sweep has tens of runs.
    """
    return [i for i, p in enumerate(points) if not any(dominates(q, p) for q in points)]


def hypervolume(points: Sequence[Point], reference: Point) -> float:
    """The volume dominated by ``points`` and dominating ``reference``: the measure of the union of the boxes
    ``[reference, p]``. A point not above the reference on every coordinate adds nothing.

    Exact, by slicing along the last coordinate (Hypervolume by Slicing Objectives, While et al. 2006):
    between consecutive values of that coordinate the slice is the (d-1)-dimensional hypervolume of the
    points reaching it, down to a staircase in two dimensions. O(n^(d-1) log n) for n front points: meant for
    fronts of tens of points in up to four dimensions.
    """
    above = [tuple(p) for p in points if all(x > r for x, r in zip(p, reference, strict=True))]
    front = [above[i] for i in pareto_front(above)]
    if len(reference) == 1:
        return max((p[0] for p in front), default=reference[0]) - reference[0]
    return _slice_volume(front, tuple(reference))


def _slice_volume(points: list[tuple[float, ...]], reference: tuple[float, ...]) -> float:
    if len(reference) == 2:
        return _area(points, reference)
    ordered = sorted(points, key=lambda p: p[-1], reverse=True)
    volume = 0.0
    for i, point in enumerate(ordered):
        floor = ordered[i + 1][-1] if i + 1 < len(ordered) else reference[-1]
        if point[-1] > floor:
            # Between ``floor`` and this point's height, the slice holds this point and every one above it.
            volume += (point[-1] - floor) * _slice_volume([p[:-1] for p in ordered[: i + 1]], reference[:-1])
    return volume


def _area(points: list[tuple[float, ...]], reference: tuple[float, ...]) -> float:
    """Two dimensions: the staircase under the points, in horizontal strips from the rightmost point leftwards."""
    area, top = 0.0, reference[1]
    for x, y in sorted(points, reverse=True):
        if y > top:
            area += (x - reference[0]) * (y - top)
            top = y
    return area
