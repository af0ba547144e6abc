#!/usr/bin/env bash
# make load: the capacity scenarios (not part of make test; figures go in BENCHMARKS.md).
# Each scenario starts fresh release servers on free ports, runs the load tool from a
# separate process on the same two cores, prints one table, and stops the servers:
#
#   sockets  N joined idle seats (SOCKETS, default 19800) on Rampart, then on the bare
#            actix-ws relay (examples/bare_relay.rs): connect rate, RSS per socket, a probe
#            game's latency for mover and opponent while they stay open
#   play     GAMES (default 2000) two-human games, offered moves/s stepped up (STEPS) until
#            p99 passes STOP_P99_MS (50): moves/s, frames/s, p50/p99/p999 for both seats,
#            server and client CPU; Rampart, then the bare relay, in the same run
#   flood    the admission check: 200 games played while creation floods at 10x the
#            configured rate (loadgen; BACKEND=redis for the Redis line)
#   cluster  `play` across three instances on one private Redis (both seats on the owner)
#   durable  `play` on one instance with the Redis backend (appendonly yes, fsync every
#            second, one replica): moves shown write-behind, then durable (shown once
#            Redis holds them), then durable with the replica's acknowledgement
#            (redis.min_replicas_acked 1), then the bare relay (docs/DESIGN.md D18)
#   restart  a panic injected into each system actor and task (ROUNDS times, default 20): how long
#            until it runs again and until a game can be created
#
#   make load                      # every scenario
#   SCENARIO=play GAMES=500 STEPS=10000,20000 make load
#   make load-peers                # sockets and play with Colyseus rows too (PEERS=1)
#
# With BEFORE=/path/to/an/older/rampart (a release binary of another commit) the sockets and
# play tables get rows labelled "Rampart (before)": the same measurement against that binary,
# started with the same environment and with BEFORE_CONFIG (default: this tree's
# server_config.yaml; pass the other tree's own file, which is then the working directory of
# that server), just before this tree's build, whose rows are then labelled "Rampart (after)".
# Unset, nothing changes. The binaries are taken from $CARGO_TARGET_DIR/release (default
# target/release), where the build at the start puts them.
#
#   BEFORE=/tmp/old/target/release/rampart BEFORE_CONFIG=/tmp/old/server_config.yaml \
#     SCENARIO=play make load
#
# With PEERS=1 the sockets and play tables get a third row set: Colyseus 0.18
# (bench/peers/colyseus: a minimal room, and its load driver with Colyseus's own client,
# because its protocol is msgpack over its own handshake; Node 22 from npm).
#
# Rampart's load runs raise only what the load itself trips (admission caps and per-client
# limits, the connection ceiling): its bounded queues, slow-client closes, frame limits and
# supervision stay as shipped. The open-file limit is raised to the hard limit (20000 here);
# 20k sockets need the client and the server in separate processes, as here.
set -euo pipefail
cd "$(dirname "$0")/.."
scenario=${SCENARIO:-all}
rel=$(realpath -m "${CARGO_TARGET_DIR:-target}")/release
before=${BEFORE:-}
if [ -n "$before" ]; then
  before=$(realpath "$before")
  before_config=$(realpath "${BEFORE_CONFIG:-server_config.yaml}")
  [ -x "$before" ] || { echo "load: BEFORE=$before is not an executable" >&2; exit 1; }
  [ -f "$before_config" ] || { echo "load: BEFORE_CONFIG=$before_config is not a file" >&2; exit 1; }
fi
cargo build --release --quiet --bin rampart --bin loadgen --bin loadbench --example bare_relay
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if [ "$(ulimit -n)" -lt 20000 ]; then
  echo "load: the open-file limit is $(ulimit -n); the 20k-socket scenario needs 20000 (ulimit -Hn)" >&2
fi

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
pids=()
stop_all() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do
    for _ in $(seq 1 200); do kill -0 "$p" 2>/dev/null || break; sleep 0.05; done
    kill -9 "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
  pids=()
}
trap stop_all EXIT
wait_up() { # URL PID
  for _ in $(seq 1 200); do
    curl -fs -o /dev/null "$1" 2>/dev/null && return 0
    kill -0 "$2" 2>/dev/null || { echo "load: the server on $1 exited" >&2; exit 1; }
    sleep 0.05
  done
  echo "load: $1 did not come up" >&2; exit 1
}
# Only what the load trips: admission caps, per-client limits (every client is local: a few
# loopback addresses, so one address's share of the connections is all of them), the
# connection ceiling.
rampart_env=(RAMPART_LOG=warn RAMPART__ADMISSION__MAX_GAMES=100000 RAMPART__ADMISSION__RATE_PER_SEC=100000
  RAMPART__ADMISSION__BURST=100000 RAMPART__ADMISSION__CLIENT_CREATIONS_PER_SEC=100000
  RAMPART__ADMISSION__CLIENT_CREATION_BURST=100000 RAMPART__ADMISSION__MAX_TICKETS_PER_CLIENT=1000000
  RAMPART__SERVER__MAX_CONNECTIONS=100000 RAMPART__SERVER__MAX_CLIENT_CONNECTIONS_PCT=100)
start_server() { # BINARY CONFIG extra env… ; sets $url $pid (the server runs in CONFIG's directory)
  local bin=$1 config=$2 port; shift 2; port=$(free_port)
  (cd "$(dirname "$config")" && exec env "${rampart_env[@]}" "$@" RAMPART_BIND="127.0.0.1:$port" "$bin" \
    --config "$(basename "$config")") >"${LOG_DIR:-/tmp}/rampart-load-$port.log" 2>&1 &
  pid=$!; pids+=("$pid"); url="http://127.0.0.1:$port"; wait_up "$url/health" "$pid"
}
start_rampart() { start_server "$rel/rampart" "$PWD/server_config.yaml" "$@"; } # extra env…
start_before() { start_server "$before" "$before_config" "$@"; }   # extra env…
# The label of this tree's rows: "Rampart (after)" beside a BEFORE build, else as it was.
now_label=rampart
[ -z "$before" ] || now_label="Rampart (after)"
start_colyseus() {
  local port; port=$(free_port)
  (cd bench/peers/colyseus && exec node_modules/.bin/node server.mjs "$port") >"${LOG_DIR:-/tmp}/colyseus-load-$port.log" 2>&1 &
  pid=$!; pids+=("$pid"); url="http://127.0.0.1:$port"
  for _ in $(seq 1 200); do (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0; sleep 0.05; done
  echo "load: the Colyseus peer did not come up" >&2; exit 1
}
colyseus() { (cd bench/peers/colyseus && node_modules/.bin/node driver.mjs "$@"); }
start_relay() {
  local port; port=$(free_port)
  "$rel"/examples/bare_relay "127.0.0.1:$port" 2 >"${LOG_DIR:-/tmp}/relay-load-$port.log" 2>&1 &
  pid=$!; pids+=("$pid"); url="http://127.0.0.1:$port"
  for _ in $(seq 1 100); do (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0; sleep 0.05; done
  echo "load: the relay did not come up" >&2; exit 1
}
header() { echo; echo "$1 ($(date -u +%FT%TZ), load average $(cut -d' ' -f1-3 /proc/loadavg))"; echo; echo "$2"; echo "$3"; }

if [ "$scenario" = sockets ] || [ "$scenario" = all ] || [ "$scenario" = peers ]; then
  n=${SOCKETS:-19800}
  header "sockets: $n joined idle seats" \
    "| server | open | connected in | RSS before → after | per socket | probe mover p50 / p99 / p999 ms | probe opponent p50 / p99 / p999 ms | still open | load |" \
    "|---|---|---|---|---|---|---|---|---|"
  if [ -n "$before" ]; then
    start_before; "$rel"/loadbench sockets --url "$url" --pid "$pid" --sockets "$n" --sources 8 --label "Rampart (before)" | grep '^|'; stop_all
  fi
  start_rampart; "$rel"/loadbench sockets --url "$url" --pid "$pid" --sockets "$n" --sources 8 --label "$now_label" | grep '^|'; stop_all
  start_relay; "$rel"/loadbench sockets --url "$url" --pid "$pid" --sockets "$n" --sources 8 --label "bare relay" | grep '^|'; stop_all
  if [ "${PEERS:-0}" = 1 ]; then
    start_colyseus; colyseus sockets --url "$url" --pid "$pid" --sockets "$n" | grep '^|'; stop_all
  fi
fi

play_header() {
  header "$1" \
    "| server | games | offered moves/s | moves/s | frames out/s | mover p50 / p99 / p999 ms | opponent p50 / p99 / p999 ms | server cores | client cores | errors | load |" \
    "|---|---|---|---|---|---|---|---|---|---|---|"
}
games=${GAMES:-2000}
steps=${STEPS:-10000,20000,30000,40000,50000,60000}
if [ "$scenario" = play ] || [ "$scenario" = all ] || [ "$scenario" = peers ]; then
  play_header "play: $games two-human games, offered moves/s stepped up"
  if [ -n "$before" ]; then
    start_before; "$rel"/loadbench play --url "$url" --pid "$pid" --games "$games" --steps "$steps" \
      --stop-p99-ms "${STOP_P99_MS:-50}" --sources 8 --label "Rampart (before)" | grep '^|'; stop_all
  fi
  start_rampart; "$rel"/loadbench play --url "$url" --pid "$pid" --games "$games" --steps "$steps" \
    --stop-p99-ms "${STOP_P99_MS:-50}" --sources 8 --label "$now_label" | grep '^|'; stop_all
  start_relay; "$rel"/loadbench play --url "$url" --pid "$pid" --games "$games" --steps "$steps" \
    --stop-p99-ms "${STOP_P99_MS:-50}" --sources 8 --label "bare relay" | grep '^|'; stop_all
  if [ "${PEERS:-0}" = 1 ]; then
    start_colyseus; colyseus play --url "$url" --pid "$pid" --games "$games" --steps "$steps" \
      --stop-p99-ms "${STOP_P99_MS:-50}" | grep '^|'; stop_all
  fi
fi

if [ "$scenario" = restart ] || [ "$scenario" = all ]; then
  echo; echo "restart: a panic in each system actor, ${ROUNDS:-20} times each, restart policy immediate ($(date -u +%FT%TZ), load average $(cut -d' ' -f1-3 /proc/loadavg))"; echo
  policy=()
  for actor in BREAKERS HEALTH ADMISSION LOBBY GAMES KEEPER EVENTS; do
    policy+=("RAMPART__SUPERVISION__SYSTEM__${actor}__STRATEGY=immediate" "RAMPART__SUPERVISION__SYSTEM__${actor}__MAX_RESTARTS=1000")
  done
  token=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
  start_rampart RAMPART_ADMIN_TOKEN="$token" "${policy[@]}"
  "$rel"/loadbench restart --url "$url" --admin-token "$token" --rounds "${ROUNDS:-20}" | grep '^|'; stop_all
fi

if [ "$scenario" = cluster ] || [ "$scenario" = all ]; then
  rport=$(free_port)
  redis-server --port "$rport" --bind 127.0.0.1 --save "" --appendonly no >/dev/null 2>&1 &
  pids+=("$!")
  urls=(); cpids=()
  for _ in 1 2 3; do
    start_rampart RAMPART__STORAGE__BACKEND=redis RAMPART_REDIS_URL="redis://127.0.0.1:$rport" \
      RAMPART_SESSION_KEY=load-session-key
    urls+=("$url"); cpids+=("$pid")
  done
  play_header "cluster: $games games over three instances on one Redis (both seats on the owner)"
  "$rel"/loadbench play --url "$(IFS=,; echo "${urls[*]}")" --pid "$(IFS=,; echo "${cpids[*]}")" \
    --games "$games" --steps "$steps" --stop-p99-ms "${STOP_P99_MS:-50}" --sources 8 --label "3 instances" | grep '^|'
  stop_all
fi

if [ "$scenario" = durable ] || [ "$scenario" = all ]; then
  rport=$(free_port); rrport=$(free_port)
  rdir=$(mktemp -d); mkdir -p "$rdir/replica"
  redis-server --port "$rport" --bind 127.0.0.1 --save "" --appendonly yes --appendfsync everysec \
    --dir "$rdir" >/dev/null 2>&1 &
  pids+=("$!")
  redis-server --port "$rrport" --bind 127.0.0.1 --save "" --appendonly no --replicaof 127.0.0.1 "$rport" --dir "$rdir/replica" \
    >/dev/null 2>&1 &
  pids+=("$!")
  for _ in $(seq 1 100); do
    redis-cli -p "$rport" info replication 2>/dev/null | grep -q 'state=online' && break; sleep 0.1
  done
  play_header "durable: $games games on one instance with Redis (AOF, fsync every second, one replica)"
  n=0
  for mode in write_behind durable durable+replica; do
    n=$((n + 1))
    acked=0; [ "$mode" = durable+replica ] && acked=1
    # Each mode under its own key prefix: the games of one run do not meet the next run's.
    start_rampart RAMPART__STORAGE__BACKEND=redis RAMPART_REDIS_URL="redis://127.0.0.1:$rport" \
      RAMPART__STORAGE__DURABILITY="${mode%+replica}" RAMPART__REDIS__MIN_REPLICAS_ACKED=$acked \
      RAMPART__REDIS__KEY_PREFIX="load$n"
    "$rel"/loadbench play --url "$url" --pid "$pid" --games "$games" --steps "$steps" \
      --stop-p99-ms "${STOP_P99_MS:-50}" --sources 8 --label "Redis, $mode" | grep '^|'
    kill "$pid"; wait "$pid" 2>/dev/null || true
  done
  start_relay; "$rel"/loadbench play --url "$url" --pid "$pid" --games "$games" --steps "$steps" \
    --stop-p99-ms "${STOP_P99_MS:-50}" --sources 8 --label "bare relay" | grep '^|'; stop_all
  rm -rf "$rdir"
fi

if [ "$scenario" = flood ] || [ "$scenario" = all ]; then
  echo; echo "flood: the admission check ($(date -u +%FT%TZ))"
  extra=()
  if [ "${BACKEND:-memory}" = "redis" ]; then
    rport=$(free_port)
    redis-server --port "$rport" --bind 127.0.0.1 --save "" --appendonly no >/dev/null 2>&1 &
    pids+=("$!")
    extra=(RAMPART__STORAGE__BACKEND=redis RAMPART_REDIS_URL="redis://127.0.0.1:$rport")
  fi
  # Configured creation rate 20/s (burst 20); the flood is 10x that. The line drains at 100/s.
  port=$(free_port)
  env "${extra[@]}" RAMPART_BIND="127.0.0.1:$port" RAMPART_LOG=warn \
    RAMPART__ADMISSION__RATE_PER_SEC=20 RAMPART__ADMISSION__BURST=20 RAMPART__ADMISSION__ADMIT_PER_SEC=100 \
    RAMPART__HEALTH__MAX_CREATE_RATE_PER_SEC=40 RAMPART__HEALTH__INTERVAL_MS=250 RAMPART__HEALTH__DWELL_MS=2000 \
    RAMPART__SERVER__WORKERS=2 RAMPART__ADMISSION__CLIENT_CREATIONS_PER_SEC=100000 \
    RAMPART__ADMISSION__CLIENT_CREATION_BURST=100000 RAMPART__ADMISSION__MAX_TICKETS_PER_CLIENT=1000000 \
    "$rel"/rampart --config server_config.yaml >"${LOG_DIR:-/tmp}/rampart-flood.log" 2>&1 &
  pid=$!; pids+=("$pid"); wait_up "http://127.0.0.1:$port/health" "$pid"
  "$rel"/loadgen --url "http://127.0.0.1:$port" --games "${FLOOD_GAMES:-200}" --flood-per-sec "${FLOOD:-200}" \
    --flood-secs "${FLOOD_SECS:-30}" --baseline-secs "${BASELINE_SECS:-10}"
  stop_all
fi
