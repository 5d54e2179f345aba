"""Benchmark: the cost of one reward-model optimizer step, full fine-tuning vs LoRA adapters, side by side.

Same backbone, data, batches (16 HH harmless pairs per step, 128 tokens, response pooling), seed and
device; the only differences are ``lora_r`` and the learning rate. Each run trains ``--steps`` steps
through ``train_reward_model`` (the worker's code path) on the HH harmless dev pairs
(``<repo>/../shared/data/hh_harmless_dev.jsonl.gz``), timing every step from the progress callback;
the first step (allocator and thread-pool warm-up) is left out of the median. Each run has its own
process, so its peak RSS (also printed) is its own: once as of the last step's end (training), once
after the run (the export included).

    HF_HUB_OFFLINE=1 .venv/bin/python bench/rm_lora_step.py                 # SmolLM2-135M, CPU
    HF_HUB_OFFLINE=1 .venv/bin/python bench/rm_lora_step.py --backbone minilm --steps 10
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import statistics
import tempfile
import time
from pathlib import Path

from rm_real_data import load_average, load_hh_pairs, require_data

SMOLLM2_LINEAR = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
MINILM_LINEAR = ["query", "key", "value", "dense"]


def timed_run(pairs: list, settings: dict, steps: int, output_dir: Path) -> dict:
    """Train ``steps`` steps; returns the median step's seconds and this process's peak RSS."""
    from rm_worker.training import Callbacks, RewardModelConfig, train_reward_model

    stamps, training_peak = [time.perf_counter()], []
    config = RewardModelConfig(
        objectives=["harmless"], max_steps=steps, eval_every=10_000, eval_fraction=0.2, **settings
    )
    def on_progress(step: int, total: int) -> None:
        stamps.append(time.perf_counter())
        training_peak[:] = [peak_rss_mb()]

    callbacks = Callbacks(on_progress=on_progress)
    # The clock starts at the first step's end: model loading and tokenizing are not a step's cost.
    result = train_reward_model(config, pairs, output_dir, callbacks=callbacks)
    step_seconds = [b - a for a, b in zip(stamps[1:], stamps[2:])]
    return {
        "steps": result.steps,
        "median_step_s": statistics.median(step_seconds),
        "training_peak_rss_mb": training_peak[0],
        "peak_rss_mb": peak_rss_mb(),
    }


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbone", choices=("smollm2", "minilm"), default="smollm2")
    parser.add_argument("--steps", type=int, default=6, help="optimizer steps per run (the first is not timed)")
    parser.add_argument("--lora-r", type=int, default=16)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    require_data()

    from rm_worker.training import default_policy
    from rm_worker.training.ppo_config import DEFAULT_POLICY_GGUF

    shared = {"batch_size": 16, "max_length": 128, "pooling": "response", "seed": 0, "device": args.device}
    if args.backbone == "smollm2":
        shared |= {"backbone": default_policy(), "backbone_gguf_file": DEFAULT_POLICY_GGUF}
        targets = SMOLLM2_LINEAR
    else:
        targets = MINILM_LINEAR
    runs = {
        "full fine-tuning": {"learning_rate": 5e-5},
        f"LoRA r={args.lora_r}": {
            "learning_rate": 5e-4, "lora_r": args.lora_r, "lora_alpha": 2 * args.lora_r, "lora_target_modules": targets,
        },
    }
    pairs = load_hh_pairs()
    print(f"{args.backbone}, {args.device}, {args.steps} steps of 16 pairs x 128 tokens; {load_average()}", flush=True)
    results = {}
    spawn = multiprocessing.get_context("spawn")
    with tempfile.TemporaryDirectory(prefix="morm-lora-bench-") as work:
        for number, (name, settings) in enumerate(runs.items()):
            with spawn.Pool(1) as pool:  # one process per run: its peak RSS is its own
                figures = pool.apply(timed_run, (pairs, {**shared, **settings}, args.steps, Path(work) / str(number)))
            results[name] = figures
            print(f"  {name}: {figures['median_step_s']:.2f} s/step (median of {figures['steps'] - 1}), "
                  f"peak RSS {figures['training_peak_rss_mb']:.0f} MB training, {figures['peak_rss_mb']:.0f} MB "
                  f"with the export; {load_average()}", flush=True)
    full, lora = results.values()
    print(f"LoRA / full seconds per step: {lora['median_step_s'] / full['median_step_s']:.3f}")


if __name__ == "__main__":
    main()
