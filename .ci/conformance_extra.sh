#!/usr/bin/env bash
# The conformance matrix and the docker smoke, for .ci/run (after the README
# test command has run the full native Autobahn gate on uvloop over ws://).
#
#   install   apt-get install docker.io debootstrap (in the foreground: apt
#             must not run while install_wstest.sh runs apt-get later)
#   prepare   (in the background, while the tests run) start a Docker engine
#             on its own socket if none answers, build the stand-in images
#             (conformance/docker/build_images.sh)
#   matrix    the gate on the other loop/transport entries, native wstest,
#             the non-compression categories, both directions each:
#             asyncio over ws://, asyncio over wss://, uvloop over wss://
#   docker    wait for `prepare`, then a case subset through the runner's
#             docker backend (Docker SDK) and through docker-compose.yml
#             (conformance/docker/compose_smoke.sh), both directions, gated
#   stop      stop the engine `prepare` started (if any)
#
#   PICOWS_REQUIRE_DOCKER=0  an engine that cannot be had skips the docker
#                            smoke (default 1: it fails CI, like the other
#                            PICOWS_REQUIRE_* switches)
#   PICOWS_DOCKER_SMOKE_CASES, PICOWS_MATRIX_CASES  other case subsets
#
# The engine started here listens on unix:///run/picows-docker.sock, not the
# default socket, so the README's `tox -e conformance` (--backend auto) keeps
# using native wstest. Logs and reports: conformance/reports/ci/.
set -euo pipefail
cd "$(dirname "$0")/.."

STATE=conformance/reports/ci
SOCK=/run/picows-docker.sock
PY="${PICOWS_CI_PYTHON:-.tox/conformance/bin/python}"  # the README command's tox env
MATRIX_CASES="${PICOWS_MATRIX_CASES:-1.*,2.*,3.*,4.*,5.*,6.*,7.*,9.*,10.*}"
SMOKE_CASES="${PICOWS_DOCKER_SMOKE_CASES:-1.*,2.*,7.*,12.1.1,12.1.2,12.1.3,12.1.4,12.1.5,12.1.6}"
mkdir -p "$STATE"

log() { echo "== $*"; }

engine_answers() { docker info >/dev/null 2>&1; }

prepare() {
    local started=$SECONDS
    if engine_answers; then
        echo "a Docker engine already answers on ${DOCKER_HOST:-the default socket}"
        echo "${DOCKER_HOST:-}" >"$STATE/docker_host"
    else
        # Host networking only (docker-compose.yml, the runner): no bridge,
        # no iptables, which this machine class does not offer.
        dockerd --host "unix://$SOCK" --pidfile /run/picows-dockerd.pid \
            --iptables=false --ip6tables=false --bridge=none >"$STATE/dockerd.log" 2>&1 &
        export DOCKER_HOST="unix://$SOCK"
        for _ in $(seq 60); do engine_answers && break; sleep 0.5; done
        engine_answers || { tail -n 20 "$STATE/dockerd.log"; return 1; }
        echo "$DOCKER_HOST" >"$STATE/docker_host"
        echo "dockerd started on $DOCKER_HOST: $((SECONDS - started)) s"
    fi
    local images=$SECONDS
    bash conformance/docker/build_images.sh
    echo "stand-in images: $((SECONDS - images)) s; prepare: $((SECONDS - started)) s"
}

matrix() {
    local rc=0 entry started
    for entry in "asyncio ws" "asyncio wss" "uvloop wss"; do
        set -- $entry
        started=$SECONDS
        log "conformance matrix: $1 loop over $2://, cases $MATRIX_CASES"
        "$PY" -m conformance --backend native --loop "$1" $([ "$2" = wss ] && echo --tls) \
            --cases "$MATRIX_CASES" --reports "$STATE/matrix-$1-$2" >"$STATE/matrix-$1-$2.log" 2>&1 \
            || { rc=1; cat "$STATE/matrix-$1-$2.log"; }
        grep -E '^conformance: (server|client|[0-9]+/[0-9]+)' "$STATE/matrix-$1-$2.log" || true
        log "conformance matrix $1 $2: $((SECONDS - started)) s"
    done
    return $rc
}

docker_smoke() {
    local rc=0 started=$SECONDS
    for _ in $(seq 1200); do [ -f "$STATE/prepare.rc" ] && break; sleep 1; done
    log "docker prepare (ran in the background):"
    cat "$STATE/prepare.log" 2>/dev/null || true
    if [ "$(cat "$STATE/prepare.rc" 2>/dev/null || echo none)" != 0 ]; then
        if [ "${PICOWS_REQUIRE_DOCKER:-1}" = 0 ]; then
            log "docker smoke SKIPPED: no engine or no images (PICOWS_REQUIRE_DOCKER=0)"
            return 0
        fi
        log "docker smoke FAILED: no engine or no images (see above)"
        return 1
    fi
    log "waited $((SECONDS - started)) s for the images"
    DOCKER_HOST="$(cat "$STATE/docker_host")"
    if [ -n "$DOCKER_HOST" ]; then export DOCKER_HOST; else unset DOCKER_HOST; fi

    started=$SECONDS
    log "docker smoke: runner, --backend docker (Docker SDK), cases $SMOKE_CASES"
    "$PY" -m conformance --backend docker --cases "$SMOKE_CASES" \
        --reports "$STATE/docker-sdk" >"$STATE/docker-sdk.log" 2>&1 \
        || { rc=1; cat "$STATE/docker-sdk.log"; }
    grep -E '^conformance: (backend|server|client|[0-9]+/[0-9]+)' "$STATE/docker-sdk.log" || true
    log "docker smoke, SDK backend: $((SECONDS - started)) s"

    started=$SECONDS
    log "docker smoke: docker-compose.yml, cases $SMOKE_CASES"
    PICOWS_PYTHON="$PY" bash conformance/docker/compose_smoke.sh "$SMOKE_CASES" \
        >"$STATE/compose.log" 2>&1 || { rc=1; cat "$STATE/compose.log"; }
    grep -E '^(compose_smoke|conformance): ' "$STATE/compose.log" || true
    log "docker smoke, docker-compose: $((SECONDS - started)) s"
    return $rc
}

stop_engine() {
    if [ -f /run/picows-dockerd.pid ]; then
        local pid
        pid=$(cat /run/picows-dockerd.pid)
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 30); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    fi
}

install() {
    local started=$SECONDS
    rm -f "$STATE/prepare.rc" "$STATE/docker_host"
    if ! command -v dockerd >/dev/null || ! command -v debootstrap >/dev/null; then
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            docker.io debootstrap >/dev/null ||
            echo "could not install docker.io and debootstrap"
    fi
    log "docker.io, debootstrap: $((SECONDS - started)) s"
}

case "${1:-}" in
    install) install ;;
    prepare)
        rc=0
        prepare >"$STATE/prepare.log" 2>&1 || rc=$?
        echo "$rc" >"$STATE/prepare.rc"
        exit "$rc" ;;
    matrix) matrix ;;
    docker) docker_smoke ;;
    stop) stop_engine ;;
    *) echo "usage: $0 install|prepare|matrix|docker|stop" >&2; exit 2 ;;
esac
