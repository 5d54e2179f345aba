#!/usr/bin/env bash
# Two rounds of the loop (issue 20) on CPU, through what a user runs, in a scratch var dir (SQLite, the
# filesystem broker), so the dev database is untouched:
#   1. the demo project (36 comparisons with the authors' labels on three objectives) plus one half of the
#      1849 HH-RLHF harmless dev pairs (split by a hash of each line) as `harmless` labels;
#   2. the ORACLE: a project `oracle` with the other half and the demo's 36, and a frozen MiniLM reward
#      model on it. It is the AUTOMATIC ANNOTATOR (user `auto-annotator`): every label the loop gets is
#      its judgment, never a person's;
#   3. the demo's web server and both Celery workers (config/run_demo.sh) in the background;
#   4. bench/loop_real.py drives the REST API: the loop's settings (retrain_every = PAIRS, a frozen
#      retrain, PPO of STEPS steps on SmolLM2-135M, an `uncertain` generation of PAIRS pairs), a bootstrap
#      generation from the base policy, then the automatic annotator labels; the app runs each round
#      (snapshot -> reward run -> PPO -> generation) by itself. Prints a markdown report.
#
#   nice -n 10 bash bench/loop_real.sh        # PAIRS=24 SAMPLES=4 STEPS=8 PORT=8765 by default
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-../shared/data/hh_harmless_dev.jsonl.gz}
[ -f "$DATA" ] || { echo "needs $DATA (../shared/data beside the repo)" >&2; exit 2; }
export MORM_VAR_DIR=${MORM_VAR_DIR:-$(mktemp -d /tmp/morm-loop-bench.XXXX)} HF_HUB_OFFLINE=1
# Frozen retrains embed only the texts they have not seen (per project).
export MORM_EMBEDDING_CACHE_DIR=$MORM_VAR_DIR/embeddings
# The workers and the driver import this tree's code, whatever an editable install points at.
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
unset DATABASE_URL CELERY_BROKER_URL CELERY_RESULT_BACKEND
PAIRS=${PAIRS:-24} SAMPLES=${SAMPLES:-4} STEPS=${STEPS:-8} PORT=${PORT:-8765}
manage() { .venv/bin/python manage.py "$@"; }
stamp() { echo "[loop $(date +%T)] $*"; }

manage migrate --verbosity 0
manage seed_demo > /dev/null
.venv/bin/python bench/loop_real.py split "$DATA" "$MORM_VAR_DIR"
manage import_pairs demo "$MORM_VAR_DIR/loop.jsonl" --format hh --objective harmless
.venv/bin/python bench/loop_real.py setup
manage import_pairs oracle "$MORM_VAR_DIR/oracle.jsonl" --format hh --objective harmless
manage import_pairs oracle annotate_app/demo/comparisons.jsonl --format native
stamp "training the oracle (automatic annotator's reward model)"
SECONDS=0
manage train_rm oracle --set mode=frozen --wait > "$MORM_VAR_DIR/oracle.json"
stamp "oracle trained in ${SECONDS} s"
ORACLE=$(.venv/bin/python -c "import json,sys; print(json.load(open(sys.argv[1]))['run'])" "$MORM_VAR_DIR/oracle.json")

bash config/run_demo.sh .venv/bin 127.0.0.1 "$PORT" > "$MORM_VAR_DIR/serve.log" 2>&1 &
SERVE=$!
trap 'kill -TERM $SERVE 2>/dev/null; wait $SERVE 2>/dev/null || true' EXIT
for _ in $(seq 60); do
    curl -s -o /dev/null "http://127.0.0.1:$PORT/api/v1/" && break
    sleep 1
done
.venv/bin/python bench/loop_real.py drive --url "http://127.0.0.1:$PORT" --oracle-run "$ORACLE" \
    --pairs "$PAIRS" --samples "$SAMPLES" --steps "$STEPS" --out "$MORM_VAR_DIR/report.md" \
    --state "$MORM_VAR_DIR/state.json"
echo "results in $MORM_VAR_DIR (report.md, serve.log)"
