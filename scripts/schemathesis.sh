#!/usr/bin/env bash
# Checks the running server against its own OpenAPI document with Schemathesis: every
# documented operation gets generated requests (valid and invalid), and every answer must be
# documented — status, content type, headers (Retry-After where required) and body schema —
# with no server error. Any finding fails the script.
#
#   bash scripts/schemathesis.sh            (make schemathesis)
#   SCHEMATHESIS_SEED=123 bash scripts/schemathesis.sh     another seed (default: fixed)
#   SCHEMATHESIS_EXAMPLES=100 bash scripts/schemathesis.sh more cases per operation
#
# What it does: a Python venv with a pinned Schemathesis in target/schemathesis-venv (made
# once), a debug build of `rampart` on a free loopback port with the shipped
# server_config.yaml and a random RAMPART_ADMIN_TOKEN (so the admin endpoints exist and are
# exercised with and without it), `schemathesis run` against /api/v1/openapi.json, then the
# server is stopped. Output and the server's log are in target/schemathesis/.
#
# Two things are configured on purpose (target/schemathesis/schemathesis.toml):
# - 503 is not a "server error" here: SERVER_BUSY (admission, the line, the connection
#   ceiling), DRAINING, GAME_RESTARTING and /health's 503 are the contract's overload and
#   recovery answers, each documented where it occurs. A creation flood from the run does
#   reach them. Any other 5xx (a 500) still fails.
# - The fault-injection drill is not driven with real game ids by the stateful phase (it
#   would crash and hang the games the run creates, by design); its auth, validation and
#   404 answers are still tested in the other phases.
# - The system actors' fault drill (/api/v1/admin/actors/{name}/fault) is not in this run:
#   with the admin token its panics and hangs do what they are for — a hang blocks the
#   server's main thread and ends the process (70), panics past the limit end it too — and
#   the run would lose its server. tests/openapi.rs checks its documented statuses and
#   tests/system_tree.rs its answers, errors included, against real processes.
# - The WebSocket upgrades (/ws/…) are in the document but not in this run: after a 101 the
#   connection speaks WebSocket, and an HTTP client that reuses it reads frames as HTTP.
#   tests/openapi.rs checks their 101, 400 and 404 with a real socket.
# And two checks are off: `unsupported_method` and `allow_header_conformance` expect 405
# for a method a path does not have; Rampart's contract answers 404 NOT_FOUND there
# (docs/PROTOCOL.md: "there is no 405").
set -euo pipefail

cd "$(dirname "$0")/.."

SCHEMATHESIS_VERSION=4.32.5
VENV=target/schemathesis-venv
OUT=target/schemathesis
SEED=${SCHEMATHESIS_SEED:-20261202}
EXAMPLES=${SCHEMATHESIS_EXAMPLES:-30}
mkdir -p "$OUT"

if ! "$VENV/bin/schemathesis" --version 2>/dev/null | grep -q "version $SCHEMATHESIS_VERSION\$"; then
  echo "schemathesis: installing schemathesis $SCHEMATHESIS_VERSION into $VENV"
  rm -rf "$VENV"
  if ! python3 -m venv "$VENV" 2>/dev/null; then
    # Debian's python3 makes venvs only with python3-venv.
    if [ "$(id -u)" = "0" ]; then
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
      rm -rf "$VENV"
      python3 -m venv "$VENV"
    else
      echo "schemathesis: python3 cannot make a venv: run 'sudo apt-get install python3-venv' and retry" >&2
      exit 1
    fi
  fi
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi

cargo build --quiet --bin rampart

PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
BASE="http://127.0.0.1:$PORT"
ADMIN_TOKEN=$(python3 -c 'import secrets; print(secrets.token_hex(16))')

RAMPART_BIND="127.0.0.1:$PORT" RAMPART_ADMIN_TOKEN="$ADMIN_TOKEN" \
  target/debug/rampart --config server_config.yaml >"$OUT/server.log" 2>&1 &
SERVER=$!
stop() {
  if kill -0 "$SERVER" 2>/dev/null; then
    kill -TERM "$SERVER" 2>/dev/null || true
    # The server drains within server.shutdown_grace_ms (10 s); after that, force it.
    for _ in $(seq 1 120); do kill -0 "$SERVER" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$SERVER" 2>/dev/null || true
  fi
  wait "$SERVER" 2>/dev/null || true
}
trap stop EXIT

up=""
for _ in $(seq 1 300); do
  if curl -fsS -o /dev/null "$BASE/health" 2>/dev/null; then up=1; break; fi
  kill -0 "$SERVER" 2>/dev/null || break
  sleep 0.1
done
if [ -z "$up" ]; then
  echo "schemathesis: the server did not come up on $BASE; its log:" >&2
  tail -n 40 "$OUT/server.log" >&2
  exit 1
fi

cat >"$OUT/schemathesis.toml" <<'EOF'
# Written by scripts/schemathesis.sh (see its header for why).
[checks.not_a_server_error]
expected-statuses = ["2xx", "3xx", "4xx", "503"]

[checks.unsupported_method]
enabled = false

[checks.allow_header_conformance]
enabled = false

[[operations]]
include-path = "/api/v1/admin/games/{id}/fault"
phases.stateful.enabled = false

# Enough creations from one address to pass the per-client limit (429 with Retry-After).
[[operations]]
include-operation-id = "create_game"
generation.max-examples = 120
EOF
# Failures found earlier are replayed first; keep that state in target/, not in the tree.
printf '\n[cache]\ndirectory = "%s"\n' "$PWD/$OUT/cache" >>"$OUT/schemathesis.toml"

echo "schemathesis: $SCHEMATHESIS_VERSION against $BASE/api/v1/openapi.json (seed $SEED, $EXAMPLES examples per operation)"
status=0
timeout 150 "$VENV/bin/schemathesis" --no-color --config-file "$OUT/schemathesis.toml" run \
  "$BASE/api/v1/openapi.json" \
  --header "Authorization: Bearer $ADMIN_TOKEN" \
  --max-examples "$EXAMPLES" \
  --seed "$SEED" \
  --request-timeout 10 \
  --exclude-path-regex '^/ws/' \
  --exclude-path '/api/v1/admin/actors/{name}/fault' \
  --report junit --report-junit-path "$OUT/junit.xml" \
  >"$OUT/run.log" 2>&1 || status=$?

# What the run provoked, by error code (from the server's own count).
echo "schemathesis: error answers the run provoked (rampart_http_errors_total):"
curl -fsS "$BASE/metrics" 2>/dev/null | grep '^rampart_http_errors_total' | grep -v ' 0$' | sed 's/^/  /' || true

# The summary (and any finding, with the curl line that reproduces it), without the token.
sed "s/$ADMIN_TOKEN/<admin token>/g" "$OUT/run.log" | sed -n '/FAILURES\|SUMMARY/,$p'
if [ "$status" -ne 0 ]; then
  [ "$status" -eq 124 ] && echo "schemathesis: the run took longer than 150 s" >&2
  echo "schemathesis: FAILED (exit $status); full output in $OUT/run.log, the server's log in $OUT/server.log" >&2
  exit "$status"
fi
echo "schemathesis: no finding"
