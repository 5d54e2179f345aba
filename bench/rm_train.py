"""Benchmark: one 3-objective morm multi_head run vs three single-objective TRL RewardTrainer runs, then
frozen-mode retraining after 100 new labels vs training from scratch, all in one process on this machine's CPU.

Data: the Anthropic HH-RLHF harmless dev pairs (``<repo>/../shared/data/hh_harmless_dev.jsonl.gz``),
split into three DISJOINT thirds by a hash of each pair's id and labeled ``helpful``, ``harmless`` and
``honest``, each pair keeping its real HH harmlessness preference. The three "objectives" are three
subsets of the same harmless data, not three human criteria: this measures training cost and per-head
learning, nothing about helpfulness or honesty. 20% of each objective is held out by id hash (the
split morm's ``eval_fraction=0.2`` makes); every model is scored on the same held-out pairs.

- morm: one ``multi_head`` run over all pairs (each pair labeled for one objective, the others masked),
  S steps of B pairs. TRL: for each objective, ``trl.RewardTrainer`` on the same MiniLM weights
  (``AutoModelForSequenceClassification``, num_labels=1), the same pair texts (`pair_text`), S steps
  of B pairs, the same learning rate, warmup and weight decay. Wall time of each counts model
  loading, tokenizing, training and scoring its held-out pairs. TRL drops pairs longer than
  max_length (counted and printed); morm cuts their beginning and keeps them. The process's CPU
  seconds and the load average are printed too: the machine is shared, and other jobs slow wall
  time more than CPU time.
- frozen: train on all pairs but 100 with a fresh embedding cache, then on all pairs with the same
  cache; the retrain embeds only the new pairs' texts.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/rm_train.py
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
import tempfile
import time
from pathlib import Path

from rm_real_data import (
    EVAL_FRACTION,
    FROZEN,
    SEED,
    frozen_retrain,
    id_hash,
    load_average,
    load_hh_pairs,
    print_frozen,
    require_data,
    train,
)

OBJECTIVES = ["helpful", "harmless", "honest"]


def three_objective_pairs(pairs: list) -> list:
    """Each pair labeled for exactly one objective, chosen by a hash of its id (its HH preference kept)."""
    return [
        dataclasses.replace(pair, scores={OBJECTIVES[id_hash(f"objective:{pair.id}") % 3]: pair.scores["harmless"]})
        for pair in pairs
    ]


def split_by_objective(pairs: list) -> dict[str, tuple[list, list]]:
    """``{objective: (train, held_out)}`` by morm's own id-hash split."""
    from rm_worker.training import split_pairs

    return {
        objective: split_pairs([p for p in pairs if objective in p.scores], EVAL_FRACTION, SEED)
        for objective in OBJECTIVES
    }


def chosen_and_rejected(pair) -> tuple[str, str]:
    """The two scored texts of a pair (conversation + response, as morm renders them), chosen first."""
    from rm_worker.training import pair_text

    (score,) = pair.scores.values()
    texts = pair_text(pair.prompt, pair.response_a), pair_text(pair.prompt, pair.response_b)
    return texts if score < 0 else texts[::-1]


def run_morm(pairs: list, work: Path, args: argparse.Namespace) -> dict:
    """One multi_head run over all objectives: wall and CPU seconds, {objective: held-out accuracy}."""
    cpu_started = time.process_time()
    result = train(
        pairs,
        work / "morm-multi-head",
        objectives=OBJECTIVES,
        mode="multi_head",
        pooling="auto",  # what the recorded comparison used (mean for MiniLM); pooling does not change the cost
        max_steps=args.steps,
        batch_size=args.batch_size,
        learning_rate=args.lr,
        max_length=args.max_length,
        eval_every=args.steps,
    )
    return {
        "seconds": result.seconds,
        "cpu": time.process_time() - cpu_started,
        "accuracy": {o: result.metrics[f"eval/accuracy/{o}"] for o in OBJECTIVES},
    }


def trl_config(output_dir: Path, args: argparse.Namespace, eos_token: str):
    from trl import RewardConfig

    return RewardConfig(
        output_dir=str(output_dir),
        bf16=False,  # TRL's CPU default, bf16 autocast, made RewardTrainer ~19x slower here
        use_cpu=True,
        max_steps=args.steps,
        per_device_train_batch_size=args.batch_size,
        learning_rate=args.lr,
        max_length=args.max_length,
        report_to=[],
        save_strategy="no",
        # Matched to morm: no gradient checkpointing (TRL's default trades ~20% compute for memory),
        # the same linear warmup over 10% of the steps, the same weight decay and seed.
        gradient_checkpointing=False,
        warmup_steps=round(0.1 * args.steps),
        weight_decay=0.01,
        seed=SEED,
        # BERT tokenizers have no EOS; TRL appends one to every text, so use [SEP].
        eos_token=eos_token,
        disable_tqdm=True,
    )


def held_out_accuracy(model, tokenizer, held_out: list, max_length: int, suffix: str) -> float:
    """Share of held-out pairs whose chosen text scores higher; long texts left-truncated as morm does."""
    import torch

    chosen, rejected = zip(*(chosen_and_rejected(pair) for pair in held_out))
    tokenizer.truncation_side = "left"
    model.eval()

    @torch.no_grad()
    def scores(texts: tuple[str, ...]) -> torch.Tensor:
        rows = []
        for start in range(0, len(texts), 32):
            batch = [text + suffix for text in texts[start : start + 32]]
            encoded = tokenizer(batch, truncation=True, max_length=max_length, padding=True, return_tensors="pt")
            rows.append(model(**encoded).logits.squeeze(-1))
        return torch.cat(rows)

    return (scores(chosen) > scores(rejected)).float().mean().item()


def run_trl(objective: str, split: tuple[list, list], work: Path, args: argparse.Namespace) -> dict:
    """One TRL RewardTrainer run on one objective's pairs: seconds, pairs dropped, held-out accuracy."""
    from datasets import Dataset
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from trl import RewardTrainer

    from rm_worker.training import default_backbone

    train_pairs, held_out = split
    dataset = Dataset.from_list([dict(zip(("chosen", "rejected"), chosen_and_rejected(p))) for p in train_pairs])
    started, cpu_started = time.monotonic(), time.process_time()
    model = AutoModelForSequenceClassification.from_pretrained(default_backbone(), num_labels=1, local_files_only=True)
    tokenizer = AutoTokenizer.from_pretrained(default_backbone(), local_files_only=True)
    trainer = RewardTrainer(
        model=model,
        args=trl_config(work / f"trl-{objective}", args, tokenizer.sep_token),
        train_dataset=dataset,
        processing_class=tokenizer,
    )
    trainer.train()
    accuracy = held_out_accuracy(model, tokenizer, held_out, args.max_length, tokenizer.eos_token)
    return {
        "seconds": time.monotonic() - started,
        "cpu": time.process_time() - cpu_started,
        "train_pairs": len(dataset),
        "dropped": len(dataset) - len(trainer.train_dataset),
        "accuracy": accuracy,
    }


def print_comparison(morm: dict, trl: dict, splits: dict) -> None:
    trl_seconds = sum(run["seconds"] for run in trl.values())
    trl_cpu = sum(run["cpu"] for run in trl.values())
    print(f"\n{'run':<20}{'wall s':>8}{'CPU s':>8}{'train pairs':>13}{'TRL dropped':>13}{'held-out':>10}{'acc':>7}")
    for objective in OBJECTIVES:
        run = trl[objective]
        print(f"{'TRL ' + objective:<20}{run['seconds']:>8.1f}{run['cpu']:>8.1f}{run['train_pairs']:>13}"
              f"{run['dropped']:>13}{len(splits[objective][1]):>10}{run['accuracy']:>7.3f}")
    print(f"{'TRL sum':<20}{trl_seconds:>8.1f}{trl_cpu:>8.1f}")
    train_pairs = sum(len(train_pairs) for train_pairs, _ in splits.values())
    print(f"{'morm multi_head':<20}{morm['seconds']:>8.1f}{morm['cpu']:>8.1f}{train_pairs:>13}{0:>13}")
    for objective in OBJECTIVES:
        print(f"{'  head ' + objective:<20}{'':>42}{len(splits[objective][1]):>10}{morm['accuracy'][objective]:>7.3f}")
    print(f"ratio morm / TRL sum: wall {morm['seconds'] / trl_seconds:.3f}, CPU {morm['cpu'] / trl_cpu:.3f}")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=60, help="optimizer steps of every run (S)")
    parser.add_argument("--batch-size", type=int, default=16, help="pairs per step (B)")
    parser.add_argument("--lr", type=float, default=3e-5, help="backbone learning rate (morm) / learning rate (TRL)")
    parser.add_argument("--max-length", type=int, default=256)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    require_data()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    pairs = three_objective_pairs(load_hh_pairs())
    splits = split_by_objective(pairs)
    print(f"{len(pairs)} HH harmless pairs in three disjoint id-hash thirds labeled {', '.join(OBJECTIVES)} "
          "(all three are harmlessness preferences); per objective train/held-out: "
          + ", ".join(f"{o} {len(t)}/{len(h)}" for o, (t, h) in splits.items()))
    print(f"S={args.steps} steps, B={args.batch_size} pairs, lr={args.lr}, max_length={args.max_length}; "
          f"{load_average()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="morm-bench-") as work:
        work = Path(work)
        morm = run_morm(pairs, work, args)
        trl = {objective: run_trl(objective, splits[objective], work, args) for objective in OBJECTIVES}
        print_comparison(morm, trl, splits)
        print(load_average(), flush=True)
        settings = {**FROZEN, "objectives": OBJECTIVES, "cache_dir": str(work / "embeddings")}
        print_frozen(frozen_retrain(pairs, settings, work))
    print(load_average())


if __name__ == "__main__":
    main()
