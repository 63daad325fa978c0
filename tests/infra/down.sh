#!/usr/bin/env bash
# Stop exactly what tests/infra/up.sh started (by its records under $HQ_TEST_STATE), nothing else.
set -uo pipefail

STATE="${HQ_TEST_STATE:-/tmp/hq-test}"
log() { echo "[infra/down] $*"; }

if [ -f "$STATE/dockerd.pid" ]; then
    pid="$(cat "$STATE/dockerd.pid")"
    if kill -0 "$pid" 2> /dev/null; then
        log "stopping dockerd (pid $pid)"
        kill -TERM "$pid"
        for _ in $(seq 1 60); do
            kill -0 "$pid" 2> /dev/null || break
            sleep 0.5
        done
        kill -0 "$pid" 2> /dev/null && log "dockerd (pid $pid) still running after 30 s"
    fi
    rm -f "$STATE/dockerd.pid"
fi

if [ -f "$STATE/postgres.cluster" ]; then
    read -r version cluster < "$STATE/postgres.cluster"
    log "stopping postgresql $version/$cluster"
    pg_ctlcluster --skip-systemctl-redirect "$version" "$cluster" stop || true
    rm -f "$STATE/postgres.cluster"
fi
log "done"
