"""Benchmark: what the uncertainty-first queue buys, simulated on real preferences (issue 20, item 4).

HH-RLHF harmless (``<repo>/../shared/data/hh_harmless_dev.jsonl.gz``, 1,849 pairs) split once by id hash
into a pool that annotators label (about 2/3) and a fixed test set (about 1/3) that nothing is chosen on.
Labels are the known HH preferences, "given" when a pair is picked: a simulated annotator.

Two ways to spend the same labeling budget (``--budget`` pairs, default 200), for each of ``--seeds`` seeds:

  random      ``--budget`` pairs drawn at random from the pool (``queue_order=random``);
  uncertain   the loop the app runs with ``queue_order=uncertain`` and ``retrain_every``: a random first
              ``--step`` pairs, then, ``--step`` at a time, fit the reward model on what is labeled, rank the
              rest of the pool by the smallest normalized margin |r̂(A) - r̂(B)| (the queue's rank,
              rm_worker.training.evaluate.smallest_normalized_margins: with one objective, the normalization
              does not change the order) and label the ``--step`` smallest.

The reward model is what a retrain costs seconds with: frozen MiniLM-L6 embeddings (the defaults: response
pooling, 256 tokens) and a linear head fitted by `fit_frozen_head` (its L2 penalty chosen by 5-fold
cross-validation on the labeled pairs only). Prints test accuracy after each step for both arms (mean ± sd
over seeds) and the paired difference at the full budget.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/uncertainty_queue.py --cache-dir /tmp/frozen_emb
"""

from __future__ import annotations

import argparse
import statistics
import tempfile

from rm_frozen_fit import text_embeddings
from rm_real_data import id_hash, load_average, load_hh_pairs, require_data


def head_data(embeddings, chosen_is_a, rows):
    import torch

    from rm_worker.training.frozen_fit import HeadData

    rows = torch.as_tensor(rows)
    return HeadData(embeddings[0::2][rows], embeddings[1::2][rows], chosen_is_a[rows],
                    torch.ones(len(rows), dtype=torch.bool), torch.zeros(len(rows), dtype=torch.float64))


def fit(embeddings, chosen_is_a, rows, seed):
    from rm_worker.training.frozen_fit import fit_frozen_head

    return fit_frozen_head(head_data(embeddings, chosen_is_a, rows), l2=None, folds=5, seed=seed).head


def accuracy(head, embeddings, chosen_is_a, rows) -> float:
    data = head_data(embeddings, chosen_is_a, rows)
    prefers_a = head.rewards(data.embeddings_a) > head.rewards(data.embeddings_b)
    return (prefers_a == data.chosen_is_a).double().mean().item()


def most_uncertain(head, embeddings, rows, count):
    """The ``count`` rows the head tells apart least: smallest |r(A) - r(B)|, the queue's rank with one head."""
    import torch

    rows = torch.as_tensor(rows)
    margins = (head.rewards(embeddings[0::2][rows]) - head.rewards(embeddings[1::2][rows])).abs()
    return rows[margins.argsort()[:count]].tolist()


def run_arm(arm, embeddings, chosen_is_a, pool, test, seed, budget, step) -> list[float]:
    """Test accuracy after each ``step`` labels of ``arm`` (random or uncertain) up to ``budget``."""
    import random

    order = list(pool)
    random.Random(seed).shuffle(order)
    labeled, curve = order[:step], []
    while True:
        head = fit(embeddings, chosen_is_a, labeled, seed)
        curve.append(accuracy(head, embeddings, chosen_is_a, test))
        if len(labeled) >= budget:
            return curve
        taken = set(labeled)
        rest = [row for row in order if row not in taken]
        labeled += rest[:step] if arm == "random" else most_uncertain(head, embeddings, rest, step)


def mean_sd(values: list[float]) -> str:
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budget", type=int, default=200)
    parser.add_argument("--step", type=int, default=50, help="labels per retrain (retrain_every)")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--cache-dir", help="a frozen run's embedding cache (default: a fresh one)")
    args = parser.parse_args()
    require_data()
    import torch

    pairs = load_hh_pairs()
    embeddings = text_embeddings(args.cache_dir or tempfile.mkdtemp(prefix="morm-emb-"))
    chosen_is_a = torch.tensor([pair.scores["harmless"] < 0 for pair in pairs])
    test = [row for row, pair in enumerate(pairs) if id_hash(pair.id) % 3 == 0]
    pool = [row for row, pair in enumerate(pairs) if id_hash(pair.id) % 3 != 0]
    print(f"{len(pairs)} HH harmless pairs: pool {len(pool)}, test {len(test)}; budget {args.budget}, "
          f"{args.step} per retrain, {args.seeds} seeds; {load_average()}")
    curves = {arm: [run_arm(arm, embeddings, chosen_is_a, pool, test, seed, args.budget, args.step)
                    for seed in range(args.seeds)] for arm in ("random", "uncertain")}
    print(f"\n{'labels':>7} | {'random':>15} | {'uncertain':>15}")
    for step, labels in enumerate(range(args.step, args.budget + 1, args.step)):
        cells = [mean_sd([curve[step] for curve in curves[arm]]) for arm in ("random", "uncertain")]
        print(f"{labels:>7} | {cells[0]:>15} | {cells[1]:>15}")
    differences = [u[-1] - r[-1] for u, r in zip(curves["uncertain"], curves["random"], strict=True)]
    print(f"\nuncertain - random at {args.budget} labels, paired by seed: {statistics.mean(differences):+.3f} ± "
          f"{statistics.stdev(differences):.3f} (sd over {args.seeds} seeds; test set of {len(test)}: one standard "
          f"error of an accuracy near 0.6 is {(0.6 * 0.4 / len(test)) ** 0.5:.3f}); {load_average()}")


if __name__ == "__main__":
    main()
