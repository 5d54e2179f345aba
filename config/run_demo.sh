#!/usr/bin/env bash
# The processes of `make demo` (usage: run_demo.sh BIN HOST PORT): the web server and two Celery
# workers, as in docker-compose.yml: one for the `default` queue with the beat that runs crash
# recovery, one for the `training` queue, one run at a time. Embedded setup: SQLite and the
# filesystem broker under MORM_VAR_DIR.
#
# Runs until one of them exits or INT/TERM arrives, then stops them all and waits for them.
# The trap clears itself first, so the TERM sent to the children never re-enters it. A worker
# still busy after STOP_SECONDS is shut down cold: a run it was training resumes from its last
# checkpoint when the demo starts again.
set -u
bin=$1 host=$2 port=$3
STOP_SECONDS=${STOP_SECONDS:-6}
unset DATABASE_URL CELERY_BROKER_URL CELERY_RESULT_BACKEND

"$bin/celery" -A config worker -B --queues default --pool solo --hostname "default@%h" --loglevel INFO &
"$bin/celery" -A config worker --queues training --pool solo --hostname "training@%h" --loglevel INFO &
"$bin/python" manage.py runserver "$host:$port" --noreload &

# Wait up to $1 seconds for every child to exit; true if they all did.
children_exit_within() {
    local tenths=$(( $1 * 10 ))
    while [ -n "$(jobs -pr)" ] && [ "$tenths" -gt 0 ]; do
        sleep 0.1
        tenths=$(( tenths - 1 ))
    done
    [ -z "$(jobs -pr)" ]
}

stop() {
    trap '' INT TERM
    kill -TERM $(jobs -pr) 2>/dev/null
    children_exit_within "$STOP_SECONDS" || { kill -QUIT $(jobs -pr) 2>/dev/null; children_exit_within 2; } \
        || { for job in $(jobs -pr); do pkill -KILL -P "$job"; done; kill -KILL $(jobs -pr) 2>/dev/null; }
    wait
    exit "$1"
}
trap 'stop 130' INT
trap 'stop 143' TERM
wait -n  # the first child to exit (it could not start, or was killed) ends the demo
stop $?
