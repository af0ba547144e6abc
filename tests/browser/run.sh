#!/usr/bin/env bash
# Starts the built server on a free port with the embedded defaults and a random admin
# token, runs the headless Chromium tests against it (the game page, the operator
# dashboard, the waiting line under a forced overload, then the lobby's pages), checks
# /metrics with promtool, and always stops the server.
set -euo pipefail
binary=${1:?usage: run.sh path/to/rampart}
here=$(cd "$(dirname "$0")" && pwd)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
log=$(mktemp)
# A fresh admin token for this run only, shared by the server and the dashboard and waitlist
# tests; never printed.
RAMPART_ADMIN_TOKEN=$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))')
export RAMPART_ADMIN_TOKEN
RAMPART_BIND="127.0.0.1:$port" RAMPART__AI__THINK_DELAY_MS=100 "$binary" >"$log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true; wait $server 2>/dev/null || true; rm -f "$log"' EXIT
for _ in $(seq 1 200); do
  if python3 -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:$port/health', timeout=1)" 2>/dev/null; then break; fi
  if ! kill -0 $server 2>/dev/null; then echo "the server exited:"; cat "$log"; exit 1; fi
  sleep 0.05
done
for test in play.mjs cycles.mjs dashboard.mjs waitlist.mjs lobby.mjs; do
  if ! RAMPART_URL="http://127.0.0.1:$port" node "$here/$test"; then
    echo "--- server log ---"; tail -n 50 "$log"; exit 1
  fi
done
# The server has now served a game: its /metrics must pass promtool (docs/PROTOCOL.md).
python3 -c "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:$port/metrics').read().decode(), end='')" > "$log.metrics"
if promtool check metrics < "$log.metrics"; then
  echo "promtool: 1 passed, 0 failed"
else
  echo "promtool: 0 passed, 1 failed"; rm -f "$log.metrics"; exit 1
fi
rm -f "$log.metrics"
