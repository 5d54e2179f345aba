"""Benchmark: the reward-model report of one multi_head run with the default settings, on the HH harmless pairs.

Trains with every default of the config schema (``multi_head``, the MiniLM backbone, its default pooling,
epochs, learning rates, ...) on the training side of the split ``bench/rm_real_data.py`` reports on: the
Anthropic HH-RLHF harmless dev pairs (``<repo>/../shared/data/hh_harmless_dev.jsonl.gz``) held out 20% by a
hash of each pair's id (seed 0). Nothing is held out inside the training side (``eval_fraction=0``), so the
exported model is the last step and no setting or step is chosen on any split; the report
(``rm_worker/training/report.py``) is then computed on the held-out 20%, which training never saw. A
default run in the app trains on the same 80% and writes the same report on the same 20%, from its best
evaluated step instead of its last.

HH pairs carry no per-annotator judgments: the agreement figures are empty (n=0) on this data.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/rm_report.py [--json PATH] [--set key=value ...]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from rm_real_data import EVAL_FRACTION, SEED, load_average, load_hh_pairs, override, require_data


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the report as JSON to PATH")
    parser.add_argument("--set", dest="settings", type=override, action="append", default=[], metavar="KEY=VALUE",
                        help="a setting other than its default (e.g. device=cuda); none by default")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    require_data()
    from rm_worker.training import RewardModelConfig, format_report, split_pairs, train_reward_model
    from rm_worker.training.config import resolve_device
    from rm_worker.training.evaluate import report_reward_model

    pairs = load_hh_pairs("harmless")
    train_side, held_out = split_pairs(pairs, EVAL_FRACTION, SEED)
    config = RewardModelConfig(objectives=["harmless"], eval_fraction=0.0, seed=SEED, **dict(args.settings))
    print(f"{len(pairs)} HH harmless pairs: {len(train_side)} trained on, {len(held_out)} held out; "
          f"{load_average()}")
    print("config:", json.dumps(config.to_dict()))
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="morm-report-") as work:
        result = train_reward_model(config, train_side, Path(work))
        trained = time.monotonic() - started
        report = report_reward_model(result.model_dir, held_out, device=resolve_device(config.device),
                                     batch_size=config.batch_size)
    print(f"{result.steps} steps, {trained:.0f} s training, {time.monotonic() - started - trained:.0f} s report; "
          f"{load_average()}")
    print(format_report(report))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
