#!/usr/bin/env bash
# Autobahn through docker-compose.yml, both directions, on a case subset,
# gated like the runner (python -m conformance --gate-only):
#
#   server: `docker-compose run --rm fuzzingclient` (which starts the
#           picows-echo-server service: picows built from this tree in the
#           python:3.11-bookworm image) tests the picows server;
#   client: `docker-compose up -d fuzzingserver`, and conformance/echo_client.py
#           on this machine tests the picows client; side by side.
#
#   bash conformance/docker/compose_smoke.sh ['1.*,2.*,7.*']
#
#   PICOWS_PYTHON   the Python that runs echo_client.py and the gate (picows
#                   importable; default python3)
#
# The subset's specs and the reports go to conformance/reports/compose-smoke
# (inside the containers: /reports/compose-smoke), handed to the services with
# PICOWS_FUZZINGCLIENT_SPEC / PICOWS_FUZZINGSERVER_SPEC. Needs docker-compose,
# an engine and the two images (conformance/docker/build_images.sh without
# Docker Hub). Exit status: the gate's (0 pass, 1 fail, 2 could not run).
set -euo pipefail
cd "$(dirname "$0")/../.."

CASES="${1:-1.*,2.*,7.*}"
PY="${PICOWS_PYTHON:-python3}"
# A relative path (.tox/conformance/bin/python) made absolute, not resolved:
# a venv's python is a symlink that must stay one.
case "$PY" in */*) PY="$(cd "$(dirname "$PY")" && pwd)/$(basename "$PY")" ;; esac
NAME=compose-smoke
HOST_DIR="conformance/reports/$NAME"
IN_CONTAINER="/reports/$NAME"

log() { echo "compose_smoke: $*"; }

command -v docker-compose >/dev/null || { log "no docker-compose"; exit 2; }
rm -rf "$HOST_DIR"
mkdir -p "$HOST_DIR/config" "$HOST_DIR/logs"

# The committed specs with the subset, reports under /reports/compose-smoke.
"$PY" - "$CASES" "$HOST_DIR" "$IN_CONTAINER" <<'PY'
import json, sys
from pathlib import Path
sys.path.insert(0, ".")
from conformance import gate, run
cases_arg, host_dir, in_container = sys.argv[1:]
all_cases, _ = gate.load_case_list()
cases = gate.resolve(cases_arg.split(","), all_cases)
for direction, (spec_name, _mode, outname) in run.SPECS.items():
    spec = run.derive_spec(direction, cases, f"{in_container}/{outname}")
    Path(host_dir, "config", spec_name).write_text(json.dumps(spec, indent=2) + "\n")
print(f"compose_smoke: {len(cases)} cases ({cases_arg}) each way")
PY

# echo_client.py runs as a script: an installed picows, else this tree's
# in-place build (as the runner does).
if ! (cd / && "$PY" -c 'import picows.picows' 2>/dev/null); then
    export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
fi
export PICOWS_FUZZINGCLIENT_SPEC="$IN_CONTAINER/config/fuzzingclient.json"
export PICOWS_FUZZINGSERVER_SPEC="$IN_CONTAINER/config/fuzzingserver.json"
cleanup() { docker-compose down --remove-orphans >"$HOST_DIR/logs/down.log" 2>&1 || true; }
trap cleanup EXIT
started=$SECONDS

# server direction, in the background
log "server: docker-compose run --rm fuzzingclient (builds picows in the testee image)"
docker-compose run --rm fuzzingclient >"$HOST_DIR/logs/fuzzingclient.log" 2>&1 &
server_pid=$!

# client direction
log "client: docker-compose up -d fuzzingserver; echo_client.py on this machine"
docker-compose up -d fuzzingserver >"$HOST_DIR/logs/fuzzingserver-up.log" 2>&1
for _ in $(seq 120); do
    "$PY" -c 'import socket; socket.create_connection(("127.0.0.1", 9001), 1)' 2>/dev/null && break
    sleep 0.5
done
client_rc=0
"$PY" conformance/echo_client.py --url ws://127.0.0.1:9001 \
    >"$HOST_DIR/logs/echo_client.log" 2>&1 || client_rc=$?
docker-compose logs --no-color fuzzingserver >"$HOST_DIR/logs/fuzzingserver.log" 2>&1 || true
docker-compose stop fuzzingserver >/dev/null 2>&1 || true
log "client: echo_client.py exited with $client_rc after $((SECONDS - started)) s"

server_rc=0
wait "$server_pid" || server_rc=$?
docker-compose logs --no-color picows-echo-server >"$HOST_DIR/logs/echo_server.log" 2>&1 || true
log "server: docker-compose run exited with $server_rc after $((SECONDS - started)) s"
cleanup

rc=0
"$PY" -m conformance --gate-only --reports "$HOST_DIR" --cases "$CASES" || rc=$?
if [ "$client_rc" != 0 ]; then
    log "FAIL: echo_client.py exited with $client_rc; see $HOST_DIR/logs/echo_client.log"
    tail -n 15 "$HOST_DIR/logs/echo_client.log"
    rc=1
fi
if [ "$server_rc" != 0 ]; then
    log "FAIL: docker-compose run fuzzingclient exited with $server_rc; see $HOST_DIR/logs/"
    tail -n 15 "$HOST_DIR/logs/fuzzingclient.log"
    rc=1
fi
log "$([ $rc = 0 ] && echo PASS || echo FAIL) in $((SECONDS - started)) s"
exit $rc
