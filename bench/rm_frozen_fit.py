"""Benchmark: the frozen-mode head fit (5-fold cross-validated penalty, then the refit) on 10,000 pairs, on the CPU.

Real MiniLM-L6 embeddings (response pooling, 256 tokens: the defaults) of the HH harmless texts
(``<repo>/../shared/data/hh_harmless_dev.jsonl.gz``, 3,698 texts), embedded through a frozen run's cache
(``--cache-dir``; a fresh one embeds them first, minutes on a CPU, not timed). Their correlated dimensions
are what makes a plain L-BFGS slow. ``--pairs`` pairs of two random texts each, labeled by a random
linear direction through a logistic (a preference a linear head can learn, with label noise). Prints
the wall and CPU seconds of `fit_frozen_head` with 1 and 2 torch threads, and the machine's load.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/rm_frozen_fit.py --cache-dir /tmp/frozen_emb
"""

from __future__ import annotations

import argparse
import tempfile
import time

from rm_real_data import load_average, load_hh_pairs, require_data


def text_embeddings(cache_dir: str):
    """[3698, H] float64 embeddings of both sides of every HH pair, through the cache in ``cache_dir``."""
    from rm_worker.training import RewardModel, RewardModelConfig
    from rm_worker.training.embedding_cache import EmbeddingCache, embedding_namespace

    config = RewardModelConfig(objectives=["harmless"], mode="frozen", cache_dir=cache_dir, device="cpu")
    model = RewardModel.from_config(config)
    texts = [model.scored_text(pair.prompt, side) for pair in load_hh_pairs()
             for side in (pair.response_a, pair.response_b)]
    with EmbeddingCache(cache_dir, embedding_namespace(model), model.embed_texts) as cache:
        return cache.embed(texts).double()


def synthetic_preferences(embeddings, pairs: int, seed: int = 0):
    """`HeadData` of ``pairs`` random pairs of texts, A preferred with probability σ(w·(e_A - e_B))."""
    import torch

    from rm_worker.training.frozen_fit import HeadData

    generator = torch.Generator().manual_seed(seed)
    rows_a, rows_b = (torch.randint(len(embeddings), (pairs,), generator=generator) for _ in range(2))
    embeddings_a, embeddings_b = embeddings[rows_a], embeddings[rows_b]
    direction = torch.randn(embeddings.shape[1], generator=generator, dtype=torch.float64) / embeddings.std(0) / 20
    p_a = torch.sigmoid((embeddings_a - embeddings_b) @ direction)
    chosen_is_a = torch.rand(pairs, generator=generator, dtype=torch.float64) < p_a
    return HeadData(embeddings_a, embeddings_b, chosen_is_a, torch.ones(pairs, dtype=torch.bool),
                    torch.zeros(pairs, dtype=torch.float64))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=10_000)
    parser.add_argument("--cache-dir", help="a frozen run's embedding cache (default: a fresh one)")
    args = parser.parse_args()
    require_data()
    import torch

    from rm_worker.training.frozen_fit import fit_frozen_head

    with tempfile.TemporaryDirectory(prefix="morm-bench-") as work:
        data = synthetic_preferences(text_embeddings(args.cache_dir or work), args.pairs)
    print(f"{args.pairs} pairs of HH texts, {data.embeddings_a.shape[1]} dimensions; {load_average()}")
    print(f"{'threads':>8}{'wall s':>8}{'CPU s':>8}{'chosen l2':>11}{'cv acc':>8}")
    for threads in (1, 2):
        torch.set_num_threads(threads)
        started, cpu_started = time.monotonic(), time.process_time()
        fit = fit_frozen_head(data, l2=None, folds=5, seed=0)
        print(f"{threads:>8}{time.monotonic() - started:>8.2f}{time.process_time() - cpu_started:>8.2f}"
              f"{fit.l2:>11.4g}{fit.cv_accuracy:>8.3f}", flush=True)
    print(load_average())


if __name__ == "__main__":
    main()
