#!/usr/bin/env bash
# Bring a Debian or Ubuntu host to what HQ needs; idempotent, safe to run twice. Used by
# `make run` (mode run) and tests/infra/up.sh (mode test).
#   bash images/host-setup.sh run|test [--dry-run]        (or HQ_SETUP_DRY_RUN=1)
# run:  docker.io and debootstrap installed; the Docker engine answering (if it does not,
#       `dockerd --bridge=none` is started with setsid: no container ever sits on a bridge).
# test: that, plus docker-registry, chromium, chromium-driver, and PostgreSQL answering on
#       127.0.0.1:5432 (installed, its cluster created and started as needed, trust on loopback
#       when this script installed it).
# It installs with apt as root. Not root and something missing: it stops before doing anything
# and prints the exact commands to run as root. --dry-run prints what it would do and does none
# of it. What it starts is recorded under $HQ_SETUP_STATE (test mode: $HQ_TEST_STATE, default
# /tmp/hq-test; run mode: /tmp/hq-run), so tests/infra/down.sh stops exactly that. It never stops
# or restarts an engine or a database that is already running.
set -euo pipefail

MODE="${1:-}"
DRY_RUN="${HQ_SETUP_DRY_RUN:-0}"
for arg in "${@:2}"; do
    case "$arg" in
        --dry-run) DRY_RUN=1 ;;
        *) echo "usage: $0 run|test [--dry-run]" >&2; exit 2 ;;
    esac
done
case "$MODE" in
    run) PACKAGES=(docker.io debootstrap); DEFAULT_STATE=/tmp/hq-run ;;
    test) PACKAGES=(docker.io docker-registry debootstrap chromium chromium-driver)
          DEFAULT_STATE="${HQ_TEST_STATE:-/tmp/hq-test}" ;;
    *) echo "usage: $0 run|test [--dry-run]" >&2; exit 2 ;;
esac
STATE="${HQ_SETUP_STATE:-$DEFAULT_STATE}"
export DEBIAN_FRONTEND=noninteractive

log() { echo "[host-setup] $*"; }
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
engine_answers() { docker info > /dev/null 2>&1; }
pg_answers() { command -v pg_isready > /dev/null 2>&1 && pg_isready -q -h 127.0.0.1 -p 5432; }
pg_version() { ls /etc/postgresql 2>/dev/null | sort -V | tail -1; }

# -- decide ------------------------------------------------------------------------------------
missing=()
for pkg in "${PACKAGES[@]}"; do
    installed "$pkg" || missing+=("$pkg")
done
# make run creates a virtualenv first: Debian's python3 needs python3-venv for that.
if ! "${PYTHON:-python3}" -c 'import ensurepip, venv' > /dev/null 2>&1; then missing+=(python3-venv); fi
start_engine=0
engine_answers || start_engine=1
pg_action=none   # none | start | install
if [ "$MODE" = test ] && ! pg_answers; then
    if [ -z "$(pg_version)" ]; then pg_action=install; else pg_action=start; fi
fi
if [ "$pg_action" = install ]; then missing+=(postgresql); fi

commands=()
if [ "${#missing[@]}" -gt 0 ]; then
    commands+=("apt-get update && apt-get install -y ${missing[*]}")
fi
if [ "$start_engine" = 1 ]; then
    commands+=("mkdir -p $STATE && setsid dockerd --bridge=none > $STATE/dockerd.log 2>&1 < /dev/null &")
fi
if [ "$pg_action" = install ]; then
    commands+=("sed -i '1i host all all 127.0.0.1/32 trust' /etc/postgresql/*/main/pg_hba.conf")
fi
if [ "$pg_action" != none ]; then
    commands+=("pg_ctlcluster --skip-systemctl-redirect \$(ls /etc/postgresql | sort -V | tail -1) main start")
fi

if [ "${#commands[@]}" = 0 ]; then
    log "nothing to do: packages present, docker engine answers"
    if [ "$MODE" = test ]; then log "postgresql answers on 127.0.0.1:5432"; fi
    exit 0
fi
if [ "$(id -u)" != 0 ]; then
    log "not root, and this host needs:"
    printf '    %s\n' "${commands[@]}"
    log "run those as root (e.g. with sudo), or this script as root; nothing was changed"
    exit 1
fi
if [ "$DRY_RUN" = 1 ]; then
    log "dry run; would run:"
    printf '    %s\n' "${commands[@]}"
    exit 0
fi

# -- act ---------------------------------------------------------------------------------------
mkdir -p "$STATE"
APT_UPDATED=0
apt_install() {
    # No service may start while packages install (docker.io's or docker-registry's init scripts
    # would start daemons with their packaged settings): a policy-rc.d that says no, if none exists.
    local policy=/usr/sbin/policy-rc.d added_policy=0
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' > "$policy"
        chmod 755 "$policy"
        added_policy=1
    fi
    if [ "$APT_UPDATED" = 0 ]; then
        log "apt-get update"
        apt-get update -qq
        APT_UPDATED=1
    fi
    log "apt-get install $*"
    local rc=0
    apt-get install -y -qq "$@" > "$STATE/apt.log" 2>&1 || rc=$?
    if [ "$added_policy" = 1 ]; then rm -f "$policy"; fi
    if [ "$rc" != 0 ]; then
        tail -30 "$STATE/apt.log"
        log "apt-get install failed ($rc)"
        exit 1
    fi
}

if [ "${#missing[@]}" -gt 0 ]; then apt_install "${missing[@]}"; else log "packages present"; fi

if [ "$start_engine" = 1 ]; then
    log "starting dockerd --bridge=none"
    setsid dockerd --bridge=none > "$STATE/dockerd.log" 2>&1 < /dev/null &
    echo $! > "$STATE/dockerd.pid"
    for _ in $(seq 1 60); do
        engine_answers && break
        sleep 0.5
    done
    if ! engine_answers; then
        log "dockerd did not answer within 30 s:"
        tail -30 "$STATE/dockerd.log"
        exit 1
    fi
    log "dockerd up (pid $(cat "$STATE/dockerd.pid"))"
else
    log "docker engine answers"
fi

trust_loopback() {
    # Trust auth for 127.0.0.1 (a test machine only): the first matching pg_hba line wins.
    local hba="/etc/postgresql/$1/main/pg_hba.conf"
    if ! grep -qE '^host\s+all\s+all\s+127\.0\.0\.1/32\s+trust' "$hba"; then
        sed -i '1i host all all 127.0.0.1/32 trust' "$hba"
        log "trust auth for 127.0.0.1 in $hba"
    fi
}

if [ "$pg_action" != none ]; then
    version="$(pg_version)"
    if [ ! -d "/etc/postgresql/$version/main" ]; then
        pg_createcluster "$version" main > /dev/null
    fi
    if [ "$pg_action" = install ]; then trust_loopback "$version"; fi
    log "starting postgresql $version/main"
    pg_ctlcluster --skip-systemctl-redirect "$version" main start
    echo "$version main" > "$STATE/postgres.cluster"
    for _ in $(seq 1 40); do
        pg_answers && break
        sleep 0.5
    done
    pg_answers || { log "postgresql does not answer on 127.0.0.1:5432"; exit 1; }
    log "postgresql up"
elif [ "$MODE" = test ]; then
    log "postgresql answers on 127.0.0.1:5432"
fi
log "ready"
