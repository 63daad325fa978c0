#!/usr/bin/env bash
# Bring a Debian 12 machine (as root) to what HQ's tests need; idempotent, safe to run twice.
# Installs what is missing (docker.io, docker-registry, debootstrap, chromium, chromium-driver),
# starts dockerd --bridge=none if the engine does not answer, and makes sure PostgreSQL answers on
# 127.0.0.1:5432. What it starts is recorded under $HQ_TEST_STATE (default /tmp/hq-test) so that
# tests/infra/down.sh stops exactly that. The registry is started by the pytest fixture, not here.
set -euo pipefail

STATE="${HQ_TEST_STATE:-/tmp/hq-test}"
mkdir -p "$STATE"
export DEBIAN_FRONTEND=noninteractive

log() { echo "[infra/up] $*"; }

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

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

# -- packages ----------------------------------------------------------------------------------
missing=()
for pkg in docker.io docker-registry debootstrap chromium chromium-driver; do
    installed "$pkg" || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
    apt_install "${missing[@]}"
else
    log "packages present"
fi

# -- Docker engine -----------------------------------------------------------------------------
if docker info > /dev/null 2>&1; then
    log "docker engine answers"
else
    log "starting dockerd --bridge=none"
    setsid dockerd --bridge=none > "$STATE/dockerd.log" 2>&1 < /dev/null &
    echo $! > "$STATE/dockerd.pid"
    for _ in $(seq 1 60); do
        docker info > /dev/null 2>&1 && break
        sleep 0.5
    done
    if ! docker info > /dev/null 2>&1; then
        log "dockerd did not answer within 30 s:"
        tail -30 "$STATE/dockerd.log"
        exit 1
    fi
    log "dockerd up (pid $(cat "$STATE/dockerd.pid"))"
fi

# -- PostgreSQL on 127.0.0.1:5432 --------------------------------------------------------------
pg_answers() { pg_isready -q -h 127.0.0.1 -p 5432 > /dev/null 2>&1; }

trust_loopback() {
    # Trust auth for 127.0.0.1 (a test machine only): the first matching pg_hba line wins.
    local hba="/etc/postgresql/$1/main/pg_hba.conf"
    if ! grep -qE '^host\s+all\s+all\s+127\.0\.0\.1/32\s+trust' "$hba"; then
        sed -i '1i host all all 127.0.0.1/32 trust' "$hba"
        log "trust auth for 127.0.0.1 in $hba"
    fi
}

if command -v pg_isready > /dev/null 2>&1 && pg_answers; then
    log "postgresql answers on 127.0.0.1:5432"
else
    fresh_pg=0
    if [ ! -d /etc/postgresql ] || [ -z "$(ls /etc/postgresql 2>/dev/null)" ]; then
        apt_install postgresql
        fresh_pg=1
    fi
    version="$(ls /etc/postgresql | sort -V | tail -1)"
    if [ ! -d "/etc/postgresql/$version/main" ]; then
        pg_createcluster "$version" main > /dev/null
    fi
    if [ "$fresh_pg" = 1 ]; then trust_loopback "$version"; fi
    log "starting postgresql $version/main"
    pg_ctlcluster --skip-systemctl-redirect "$version" main start
    echo "$version main" > "$STATE/postgres.cluster"
    for _ in $(seq 1 40); do
        pg_answers && break
        sleep 0.5
    done
    pg_answers || { log "postgresql does not answer on 127.0.0.1:5432"; exit 1; }
    log "postgresql up"
fi
log "ready"
