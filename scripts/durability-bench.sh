#!/usr/bin/env bash
# The durability benchmarks (not part of `make test`; figures go in BENCHMARKS.md), each
# server a release build on a free port, each Redis a private redis-server:
#   1. a move's round trip, both seats, embedded vs Redis
#   2. a relayed move's extra latency: two instances, yellow's seat on the other one
#   3. move throughput: one instance vs three on one Redis (moves as fast as they are answered)
#   4. takeover: kill -9 of an owner to each player's next state through another instance
# With Redis a move is shown once its snapshot is durable (storage.durability auto);
# DURABILITY=write_behind measures the other choice.
#   GAMES=200 SECS=20 bash scripts/durability-bench.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet --bin rampart --bin loadgen
games=${GAMES:-200}; secs=${SECS:-20}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
dir=$(mktemp -d "${TMPDIR:-/tmp}/rampart-bench.XXXXXX")
# Helpers run in command substitutions (subshells): every pid goes to a file.
cleanup() { for f in "$dir"/*.pid; do kill "$(cat "$f")" 2>/dev/null || true; done; }
trap cleanup EXIT
redis() {
  local p; p=$(free_port)
  redis-server --port "$p" --bind 127.0.0.1 --save "" --appendonly no --dir "$dir" >/dev/null 2>&1 &
  echo $! >"$dir/redis-$p.pid"; echo "$p"
}
# server NAME [ENV=… …]: starts an instance, prints its URL; its pid is in $dir/NAME.pid.
server() {
  local name=$1; shift; local p; p=$(free_port)
  env "$@" RAMPART_BIND="127.0.0.1:$p" RAMPART_LOG=warn RAMPART__ADMISSION__RATE_PER_SEC=100000 \
    RAMPART__ADMISSION__BURST=100000 RAMPART__ADMISSION__CLIENT_CREATIONS_PER_SEC=100000 \
    RAMPART__ADMISSION__CLIENT_CREATION_BURST=100000 target/release/rampart --config server_config.yaml >"$dir/$name.log" 2>&1 &
  echo $! >"$dir/$name.pid"
  for _ in $(seq 1 200); do curl -fs "http://127.0.0.1:$p/health" >/dev/null 2>&1 && break; sleep 0.05; done
  echo "http://127.0.0.1:$p"
}
load() { target/release/loadgen --games "$games" --baseline-secs "$secs" --flood-secs 0 "$@"; }
on_redis() {
  echo RAMPART__STORAGE__BACKEND=redis RAMPART_REDIS_URL="redis://127.0.0.1:$1" RAMPART_SESSION_KEY=bench \
    RAMPART__STORAGE__DURABILITY="${DURABILITY:-auto}"
}

echo "== 1. move round trip, embedded vs Redis (${games} games, a move per seat every 100 ms)" >&2
mem=$(server memory)
r1=$(redis)
red=$(server redis $(on_redis "$r1"))
load --url "$mem" --move-every-ms 100 >"$dir/1-memory.json"
load --url "$red" --move-every-ms 100 >"$dir/1-redis.json"

echo "== 2. relayed moves: two instances on one Redis, yellow on the other one" >&2
r2=$(redis)
a=$(server a $(on_redis "$r2")); b=$(server b $(on_redis "$r2"))
load --url "$a,$b" --move-every-ms 100 --cross 0 >"$dir/2-local.json"
load --url "$a,$b" --move-every-ms 100 --cross 1 >"$dir/2-relayed.json"

echo "== 3. throughput: one instance vs three on one Redis (no pause between moves)" >&2
r3=$(redis)
one=$(server one $(on_redis "$r3"))
load --url "$one" --move-every-ms 0 >"$dir/3-one.json"
r4=$(redis)
t1=$(server t1 $(on_redis "$r4")); t2=$(server t2 $(on_redis "$r4")); t3=$(server t3 $(on_redis "$r4"))
load --url "$t1,$t2,$t3" --move-every-ms 0 >"$dir/3-three.json"

echo "== 4. takeover after kill -9 (lease 3000 ms)" >&2
r5=$(redis)
o=$(server owner $(on_redis "$r5")); n=$(server next $(on_redis "$r5"))
target/release/loadgen --takeover "${TAKEOVERS:-50}" --url "$o,$n" --kill-pid "$(cat "$dir/owner.pid")" >"$dir/4-takeover.json"

for f in "$dir"/*.json; do echo "--- $(basename "$f")"; cat "$f"; done
echo "reports in $dir" >&2
