#!/usr/bin/env bash
# Bring a Debian 12 machine (as root) to what HQ's tests need; idempotent, safe to run twice.
# The one host set-up script (images/host-setup.sh, mode test) does it, as it does `make run`'s
# (mode run): installs what is missing (docker.io, docker-registry, debootstrap, chromium,
# chromium-driver, PostgreSQL), starts dockerd --bridge=none if the engine does not answer, and
# makes sure PostgreSQL answers on 127.0.0.1:5432. What it starts is recorded under
# $HQ_TEST_STATE (default /tmp/hq-test) so that tests/infra/down.sh stops exactly that. The
# registry is started by the pytest fixture, not here. Arguments pass through (--dry-run).
set -euo pipefail
export HQ_SETUP_STATE="${HQ_TEST_STATE:-/tmp/hq-test}"
exec bash "$(dirname "$0")/../../images/host-setup.sh" test "$@"
