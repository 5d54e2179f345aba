#!/usr/bin/env bash
# Real PPO run on CPU, through the same commands a user runs (issue: PPO against the
# scalarized multi-objective reward). In a scratch var dir, so the dev database is untouched:
#   1. the demo project (36 comparisons written for morm, with the authors' labels on all
#      three objectives) plus the 1849 HH-RLHF harmless dev pairs as `harmless` labels;
#   2. a `frozen` reward model on that snapshot (MiniLM-L6 backbone, heads only);
#   3. PPO on SmolLM2-135M-Instruct (GGUF, LoRA r=8), 20 steps x 4 prompts, twice:
#      weights harmless=1.0, then the default helpful 0.40 / harmless 0.45 / honest 0.15.
# Prints each run's JSON (seconds per step, held-out reward per objective before/after).
#
#   bash bench/ppo_real.sh            # STEPS=20 BATCH=4 by default
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=../shared/data/hh_harmless_dev.jsonl.gz
[ -f "$DATA" ] || { echo "needs $DATA (../shared/data beside the repo)" >&2; exit 2; }
export MORM_VAR_DIR=${MORM_VAR_DIR:-$(mktemp -d /tmp/morm-ppo-bench.XXXX)} HF_HUB_OFFLINE=1
unset DATABASE_URL CELERY_BROKER_URL
STEPS=${STEPS:-20}
BATCH=${BATCH:-4}
manage() { .venv/bin/python manage.py "$@"; }

manage migrate --verbosity 0
manage seed_demo > /dev/null
manage import_pairs demo "$DATA" --format hh --objective harmless
# pooling=auto (mean for MiniLM): what the recorded run used, before response pooling became the default.
time manage train_rm demo --set mode=frozen --set epochs=20 --set head_learning_rate=0.003 \
    --set batch_size=32 --set max_length=256 --set pooling=auto --wait | tee "$MORM_VAR_DIR/rm.json"
RM=$(.venv/bin/python -c "import json,sys; print(json.load(open(sys.argv[1]))['run'])" "$MORM_VAR_DIR/rm.json")
PPO=(--set steps=$STEPS --set batch_size=$BATCH --set mini_batch_size=2 --set max_new_tokens=48
     --set eval_max_prompts=16 --set sample_every=5)
time manage run_ppo demo --reward-run "$RM" --weights helpful=0,harmless=1.0,honest=0 "${PPO[@]}" --wait \
    | tee "$MORM_VAR_DIR/ppo_harmless.json"
time manage run_ppo demo --reward-run "$RM" "${PPO[@]}" --wait | tee "$MORM_VAR_DIR/ppo_default.json"
echo "results in $MORM_VAR_DIR"
