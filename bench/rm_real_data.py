"""Benchmark: morm reward models on real preference data, frozen vs multi_head, on this machine's CPU.

Imports the Anthropic HH-RLHF harmless dev pairs (``<repo>/../shared/data/hh_harmless_dev.jsonl.gz``)
with morm's own importer as objective ``harmless``, holds out 20% by a hash of each pair's id
(``eval_fraction=0.2``), trains the MiniLM-L6 backbone in ``frozen`` and then ``multi_head`` mode,
and prints, per mode: optimizer steps, wall seconds (model load, tokenizing, embedding, training,
held-out evaluation, saving), and held-out harmless accuracy at the LAST step (the exported model
is the best evaluated step, which is chosen on the same held-out pairs, so it is not reported).

    HF_HUB_OFFLINE=1 .venv/bin/python bench/rm_real_data.py
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

DATA_DIR = ROOT.parent / "shared" / "data"
HH_FILE = DATA_DIR / "hh_harmless_dev.jsonl.gz"
EVAL_FRACTION = 0.2
SEED = 0
# The frozen-mode settings chosen on this data (all settings tried are listed in bench/RESULTS.md).
FROZEN = {
    "mode": "frozen",
    "epochs": 10,
    "head_learning_rate": 3e-3,
    "weight_decay": 0.1,
    "max_length": 256,
    "eval_every": 100,
}


def require_data() -> None:
    """Exit with a clear message when the shared data folder (or the HH file) is not there."""
    if not HH_FILE.is_file():
        sys.exit(f"bench: {HH_FILE} not found; this benchmark needs the shared data folder {DATA_DIR}")


def load_hh_pairs(objective: str = "harmless") -> list:
    """The HH pairs as `PreferencePair`s labeled for ``objective`` (negative score = A preferred).

    Ids are the importer's content hash, so the held-out split does not depend on line order.
    """
    from annotate_app.importers import parse_file
    from rm_worker.training import PreferencePair

    with HH_FILE.open("rb") as handle:
        comparisons = parse_file(handle, format="hh", objective=objective)
    return [
        PreferencePair(
            id=f"hh-{c.content_hash[:16]}",
            prompt=c.prompt,
            response_a=c.response_a,
            response_b=c.response_b,
            scores={objective: -1.0 if c.labels[0].choice == "A" else 1.0},
        )
        for c in comparisons
    ]


def train(pairs: list, output_dir: Path, **settings):
    """One morm training run on the default MiniLM backbone, 20% held out; returns the `TrainResult`."""
    from rm_worker.training import RewardModelConfig, train_reward_model

    config = RewardModelConfig(eval_fraction=EVAL_FRACTION, seed=SEED, device="cpu", **settings)
    return train_reward_model(config, pairs, output_dir)


def mode_settings(args: argparse.Namespace, cache_dir: str) -> dict[str, dict]:
    """The config of each mode from the command line (defaults: the best settings found, see RESULTS.md)."""
    common = {"objectives": ["harmless"], "batch_size": args.batch_size, "max_length": args.max_length}
    return {
        "frozen": {
            **common,
            "mode": "frozen",
            "epochs": args.frozen_epochs,
            "head_learning_rate": args.frozen_head_lr,
            "weight_decay": args.frozen_weight_decay,
            "eval_every": FROZEN["eval_every"],
            "cache_dir": cache_dir,
        },
        "multi_head": {
            **common,
            "mode": "multi_head",
            "epochs": args.epochs,
            "learning_rate": args.lr,
            "head_learning_rate": args.head_lr,
            "eval_every": 100,
        },
    }


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--modes", nargs="+", choices=["frozen", "multi_head"], default=["frozen", "multi_head"])
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-length", type=int, default=FROZEN["max_length"])
    parser.add_argument("--frozen-epochs", type=int, default=FROZEN["epochs"])
    parser.add_argument("--frozen-head-lr", type=float, default=FROZEN["head_learning_rate"])
    parser.add_argument("--frozen-weight-decay", type=float, default=FROZEN["weight_decay"])
    parser.add_argument("--epochs", type=int, default=2, help="multi_head epochs")
    parser.add_argument("--lr", type=float, default=3e-5, help="multi_head backbone learning rate")
    parser.add_argument("--head-lr", type=float, default=1e-3, help="multi_head head learning rate")
    parser.add_argument("--cache-dir", help="frozen embedding cache to reuse (default: a fresh one, so the "
                        "reported frozen time includes embedding every text)")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    require_data()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stderr)
    pairs = load_hh_pairs()
    print(f"{len(pairs)} HH harmless pairs from {HH_FILE.name}; {EVAL_FRACTION:.0%} held out by id hash")
    rows = []
    with tempfile.TemporaryDirectory(prefix="morm-bench-") as work:
        settings = mode_settings(args, args.cache_dir or str(Path(work) / "embeddings"))
        for mode in args.modes:
            print(f"{mode}: {settings[mode]}", flush=True)
            result = train(pairs, Path(work) / mode, **settings[mode])
            rows.append((mode, result))
    print(f"\n{'mode':<12}{'steps':>7}{'wall s':>9}{'held-out harmless acc':>23}{'eval pairs':>12}{'truncated':>11}")
    for mode, result in rows:
        report = result.data_report
        print(f"{mode:<12}{result.steps:>7}{result.seconds:>9.1f}{result.metrics['eval/accuracy/harmless']:>23.3f}"
              f"{report.eval_pairs:>12}{report.truncated:>11}")


if __name__ == "__main__":
    main()
