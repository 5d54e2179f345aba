"""How far to trust a reward model: the report on held-out pairs, per objective (plain Python, no torch).

Figures, from each head's rewards on both sides of every pair:

- accuracy: the share of pairs with a preference whose chosen side gets the higher reward, with its 95%
  Wilson score interval and the n it rests on;
- calibration: the reliability diagram of the model's P(A preferred) = σ(r_A − r_B) against how often the
  label preferred A, in equal-width bins, and the expected calibration error (ECE);
- agreement with the annotators: each annotator's judgment (ties left out) against the side the head
  prefers, next to annotator–annotator agreement on the pairs two or more annotators judged (the ceiling);
- verbosity: the correlation (Pearson, Spearman) of each head's reward with the response length in
  characters, and the correlation between heads.

The report is a JSON-ready dict; `format_report` writes it as text tables.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import combinations

from .data import PreferencePair

Z_95 = 1.959963984540054  # the standard normal quantile of 0.975
DEFAULT_BINS = 10


def wilson_interval(hits: int, n: int, z: float = Z_95) -> tuple[float, float] | None:
    """The Wilson score interval of the proportion ``hits / n`` (None when n is 0).

    Unlike the normal approximation it stays inside [0, 1] and is not empty at 0/n or n/n.
    """
    if n == 0:
        return None
    p = hits / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def proportion(hits: int, n: int) -> dict[str, float | int | None]:
    """``{"rate", "low", "high", "hits", "n"}``: a share with its 95% Wilson interval (rate None when n is 0)."""
    interval = wilson_interval(hits, n)
    return {
        "rate": hits / n if n else None,
        "low": interval[0] if interval else None,
        "high": interval[1] if interval else None,
        "hits": hits,
        "n": n,
    }


def sigmoid(x: float) -> float:
    """σ(x), without overflow for large |x|."""
    if x >= 0:
        return 1 / (1 + math.exp(-x))
    e = math.exp(x)
    return e / (1 + e)


def reliability_bins(
    predicted: Sequence[float], observed: Sequence[float], bins: int = DEFAULT_BINS
) -> list[dict[str, float | int | None]]:
    """Equal-width bins of ``predicted`` probabilities on [0, 1]: each bin's ``low``, ``high``, ``count``,
    ``mean_predicted`` and ``observed`` (the mean of ``observed`` outcomes, 1 or 0, there); an empty bin has
    None for both means. A probability of exactly 1 falls in the last bin."""
    members: list[list[int]] = [[] for _ in range(bins)]
    for index, p in enumerate(predicted):
        members[min(int(p * bins), bins - 1)].append(index)
    rows = []
    for number, indices in enumerate(members):
        count = len(indices)
        rows.append({
            "low": number / bins,
            "high": (number + 1) / bins,
            "count": count,
            "mean_predicted": sum(predicted[i] for i in indices) / count if count else None,
            "observed": sum(observed[i] for i in indices) / count if count else None,
        })
    return rows


def expected_calibration_error(bins: Sequence[dict]) -> float | None:
    """ECE: the count-weighted mean of |observed − mean predicted| over the bins (None with no pairs)."""
    total = sum(row["count"] for row in bins)
    if total == 0:
        return None
    return sum(row["count"] * abs(row["observed"] - row["mean_predicted"]) for row in bins if row["count"]) / total


def pearson(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Pearson's r of two equally long sequences; None when fewer than 2 values or either is constant."""
    n = len(x)
    if n != len(y):
        raise ValueError(f"pearson needs sequences of one length, got {n} and {len(y)}")
    if n < 2:
        return None
    mean_x, mean_y = sum(x) / n, sum(y) / n
    dx = [value - mean_x for value in x]
    dy = [value - mean_y for value in y]
    sxx, syy = sum(d * d for d in dx), sum(d * d for d in dy)
    if sxx == 0 or syy == 0:
        return None
    r = sum(a * b for a, b in zip(dx, dy, strict=True)) / math.sqrt(sxx * syy)
    return max(-1.0, min(1.0, r))


def average_ranks(values: Sequence[float]) -> list[float]:
    """Ranks 1..n of ``values``, tied values sharing the mean of their ranks."""
    order = sorted(range(len(values)), key=values.__getitem__)
    ranks = [0.0] * len(values)
    start = 0
    while start < len(order):
        end = start
        while end + 1 < len(order) and values[order[end + 1]] == values[order[start]]:
            end += 1
        for position in range(start, end + 1):
            ranks[order[position]] = (start + end) / 2 + 1
        start = end + 1
    return ranks


def spearman(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Spearman's ρ: Pearson's r of the average ranks."""
    return pearson(average_ranks(x), average_ranks(y))


def objective_accuracy(scores: Sequence[float], margins: Sequence[float]) -> dict:
    """Accuracy (`proportion`) of one head on pairs labeled with a side: ``scores`` are the labels (negative:
    A preferred), ``margins`` the head's r_A − r_B; a pair is right when its preferred side has the higher
    reward."""
    hits = sum(1 for score, margin in zip(scores, margins, strict=True) if score * margin < 0)
    return proportion(hits, len(scores))


def objective_calibration(scores: Sequence[float], margins: Sequence[float], bins: int = DEFAULT_BINS) -> dict:
    """``{"ece", "bins"}``: the reliability diagram of σ(r_A − r_B) against whether the label preferred A."""
    rows = reliability_bins([sigmoid(m) for m in margins], [1.0 if s < 0 else 0.0 for s in scores], bins)
    return {"ece": expected_calibration_error(rows), "bins": rows}


def annotator_agreement(pairs: Sequence[PreferencePair], margins: Sequence[float], objective: str) -> dict:
    """The head against each annotator's judgment of ``objective`` (ties left out), and annotators against
    each other on the pairs that two or more of them judged.

    ``model_annotator``: every judgment, a hit when the head prefers the annotator's side.
    ``annotator_annotator``: every two judgments of one pair by different annotators, a hit when they chose
    the same side: the agreement the data itself allows. ``model_annotator_same_pairs``: the head's on those
    pairs only, the figure to read next to it. Each is a `proportion`; ``pairs`` counts judged pairs.
    """
    model_hits = model_n = same_hits = same_n = human_hits = human_n = judged = 0
    for pair, margin in zip(pairs, margins, strict=True):
        choices = [(j.annotator, j.choice) for j in pair.judgments if j.objective == objective and j.choice != "tie"]
        if not choices:
            continue
        judged += 1
        side = "A" if margin > 0 else "B" if margin < 0 else None  # equal rewards prefer no side: never a hit
        hits = sum(1 for _, choice in choices if choice == side)
        model_hits, model_n = model_hits + hits, model_n + len(choices)
        couples = [(a, b) for a, b in combinations(choices, 2) if a[0] != b[0]]
        if couples:
            same_hits, same_n = same_hits + hits, same_n + len(choices)
            human_hits += sum(1 for a, b in couples if a[1] == b[1])
            human_n += len(couples)
    return {
        "pairs": judged,
        "model_annotator": proportion(model_hits, model_n),
        "annotator_annotator": proportion(human_hits, human_n),
        "model_annotator_same_pairs": proportion(same_hits, same_n),
    }


def _responses(pairs: Sequence[PreferencePair], rewards_a, rewards_b) -> tuple[list[int], list[list[float]]]:
    """(length in characters, rewards per head) of every response, the A sides then the B sides."""
    lengths = [len(p.response_a) for p in pairs] + [len(p.response_b) for p in pairs]
    return lengths, [list(row) for row in rewards_a] + [list(row) for row in rewards_b]


def reward_model_report(
    pairs: Sequence[PreferencePair],
    rewards_a: Sequence[Sequence[float]],
    rewards_b: Sequence[Sequence[float]],
    objectives: Sequence[str],
    *,
    bins: int = DEFAULT_BINS,
) -> dict:
    """The report of a reward model whose heads (``objectives``, in column order) gave ``rewards_a`` and
    ``rewards_b`` (one row per pair) to the two sides of ``pairs``.

    ``{"pairs", "length_unit", "objectives": {o: {"accuracy", "ties", "calibration", "agreement",
    "length_correlation"}}, "head_correlation": {"objectives", "pearson", "spearman"}}``.
    """
    if not len(pairs) == len(rewards_a) == len(rewards_b):
        raise ValueError(f"{len(pairs)} pairs but {len(rewards_a)} and {len(rewards_b)} rows of rewards")
    lengths, response_rewards = _responses(pairs, rewards_a, rewards_b)
    per_head = [[row[column] for row in response_rewards] for column in range(len(objectives))]
    report = {}
    for column, objective in enumerate(objectives):
        margins = [a[column] - b[column] for a, b in zip(rewards_a, rewards_b, strict=True)]
        labeled = [(p.scores[objective], m) for p, m in zip(pairs, margins, strict=True)
                   if p.scores.get(objective, 0) != 0]
        scores, labeled_margins = [s for s, _ in labeled], [m for _, m in labeled]
        report[objective] = {
            "accuracy": objective_accuracy(scores, labeled_margins),
            "ties": sum(1 for p in pairs if p.scores.get(objective) == 0),
            "calibration": objective_calibration(scores, labeled_margins, bins),
            "agreement": annotator_agreement(pairs, margins, objective),
            "length_correlation": {"pearson": pearson(lengths, per_head[column]),
                                   "spearman": spearman(lengths, per_head[column]), "n": len(lengths)},
        }
    return {
        "pairs": len(pairs),
        "length_unit": "characters",
        "objectives": report,
        "head_correlation": {
            "objectives": list(objectives),
            "pearson": [[pearson(x, y) for y in per_head] for x in per_head],
            "spearman": [[spearman(x, y) for y in per_head] for x in per_head],
        },
    }


def _number(value: float | None, digits: int = 3) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _share(figure: dict) -> str:
    """``0.800 [0.490, 0.943] n=10`` (a `proportion`)."""
    if figure["rate"] is None:
        return "— n=0"
    return f"{figure['rate']:.3f} [{figure['low']:.3f}, {figure['high']:.3f}] n={figure['n']}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=True)]
    return ["  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
            for row in (header, *rows)]


def format_report(report: dict) -> str:
    """`reward_model_report` as text: a table per figure, for a terminal."""
    objectives = report["objectives"]
    lines = [f"Reward-model report on {report['pairs']} pairs (95% Wilson intervals in brackets)", ""]
    lines += _table(
        ["objective", "accuracy", "ECE", "model-annotator", "annotator-annotator", "model, same pairs",
         f"length r ({report['length_unit']})", "length rho"],
        [[name, _share(o["accuracy"]), _number(o["calibration"]["ece"]),
          _share(o["agreement"]["model_annotator"]), _share(o["agreement"]["annotator_annotator"]),
          _share(o["agreement"]["model_annotator_same_pairs"]), _number(o["length_correlation"]["pearson"]),
          _number(o["length_correlation"]["spearman"])] for name, o in objectives.items()],
    )
    for name, figures in objectives.items():
        lines += ["", f"Reliability of {name}: P(A preferred) = sigmoid(r_A - r_B) against the labels"]
        lines += _table(["bin", "count", "mean predicted", "observed A"],
                        [[f"{row['low']:.1f}-{row['high']:.1f}", str(row["count"]), _number(row["mean_predicted"]),
                          _number(row["observed"])] for row in figures["calibration"]["bins"]])
    heads = report["head_correlation"]
    lines += ["", "Correlation between heads (Pearson r of rewards over every response)"]
    lines += _table(["", *heads["objectives"]],
                    [[name, *map(_number, row)] for name, row in zip(heads["objectives"], heads["pearson"],
                                                                      strict=True)])
    return "\n".join(lines) + "\n"
