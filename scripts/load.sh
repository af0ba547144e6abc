#!/usr/bin/env bash
# The admission load check (issue: health monitor, admission, waitlist). Starts a release
# server on a free port with low admission limits, runs loadgen against it (200 games
# played while game creation floods at 10x the configured rate for 30 s), prints the JSON
# report and stops the server. Not part of `make test`; figures go in BENCHMARKS.md.
#   make load                      # the embedded waitlist
#   BACKEND=redis make load        # the Redis waitlist (starts a private redis-server)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet --bin rampart --bin loadgen
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
log=${SERVER_LOG:-/tmp/rampart-load-server.log}
cleanup() { kill "$server" 2>/dev/null || true; if [ -n "${redis:-}" ]; then kill "$redis" 2>/dev/null || true; fi; }
trap cleanup EXIT
extra=()
if [ "${BACKEND:-memory}" = "redis" ]; then
  rport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
  redis-server --port "$rport" --bind 127.0.0.1 --save "" --appendonly no >/dev/null 2>&1 &
  redis=$!
  extra=(RAMPART__STORAGE__BACKEND=redis RAMPART_REDIS_URL="redis://127.0.0.1:$rport")
fi
# Configured creation rate 20/s (burst 20); the flood is 10x that. The line drains at 100/s.
env "${extra[@]}" RAMPART_BIND="127.0.0.1:$port" RAMPART_LOG=warn \
  RAMPART__ADMISSION__RATE_PER_SEC=20 RAMPART__ADMISSION__BURST=20 RAMPART__ADMISSION__ADMIT_PER_SEC=100 \
  RAMPART__HEALTH__MAX_CREATE_RATE_PER_SEC=40 RAMPART__HEALTH__INTERVAL_MS=250 RAMPART__HEALTH__DWELL_MS=2000 \
  RAMPART__SERVER__WORKERS=2 RAMPART__ADMISSION__CLIENT_CREATIONS_PER_SEC=100000 \
  RAMPART__ADMISSION__CLIENT_CREATION_BURST=100000 RAMPART__ADMISSION__MAX_TICKETS_PER_CLIENT=1000000 target/release/rampart --config server_config.yaml >"$log" 2>&1 &
server=$!
for _ in $(seq 1 200); do
  curl -fs "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break
  kill -0 "$server" 2>/dev/null || { cat "$log"; exit 1; }
  sleep 0.05
done
target/release/loadgen --url "http://127.0.0.1:$port" --games "${GAMES:-200}" --flood-per-sec "${FLOOD:-200}" \
  --flood-secs "${FLOOD_SECS:-30}" --baseline-secs "${BASELINE_SECS:-10}"
echo "server log: $log ($(grep -c . "$log") lines)" >&2
