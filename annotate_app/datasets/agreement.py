"""Inter-annotator agreement on the signed -3..3 scale (pure Python + numpy, no Django).

Krippendorff's α (ordinal) uses every scale point and tolerates missing judgments;
percent agreement only asks whether two judgments point the same way (A, B or tie),
which is easier to read but does not correct for chance.
"""

from collections import Counter
from collections.abc import Sequence

import krippendorff
import numpy as np

from .aggregation import direction

SCALE = list(range(-3, 4))


def krippendorff_alpha(matrix: Sequence[Sequence[float | None]]) -> float | None:
    """Ordinal α of an annotators × units matrix of scores; None or NaN marks a missing judgment.

    Returns None when α is undefined: no unit has two judgments to pair, or every
    pairable judgment has the same value (no disagreement is possible by chance
    either, and the package would divide 0 by 0). Values outside -3..3 are a
    programming error and raise the package's ValueError.
    """
    data = np.array([[np.nan if value is None else value for value in row] for row in matrix], dtype=float, ndmin=2)
    judged = ~np.isnan(data)
    pairable_units = judged.sum(axis=0) >= 2
    pairable_values = data[:, pairable_units][judged[:, pairable_units]]
    if np.unique(pairable_values).size < 2:
        return None
    return float(krippendorff.alpha(reliability_data=data, level_of_measurement="ordinal", value_domain=SCALE))


def percent_agreement(units: Sequence[Sequence[float]]) -> float | None:
    """Share of judgment pairs within a unit that point the same way, pooled over all units.

    Units with fewer than two judgments have no pairs and do not count; None when no
    unit has a pair.
    """
    pairs = agreeing = 0
    for scores in units:
        pairs += _pairs(len(scores))
        agreeing += sum(_pairs(count) for count in Counter(direction(score) for score in scores).values())
    return agreeing / pairs if pairs else None


def _pairs(count: int) -> int:
    return count * (count - 1) // 2
