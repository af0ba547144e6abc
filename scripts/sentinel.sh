#!/usr/bin/env bash
# make run-sentinel: Redis as operators run it for failover — a private primary, a replica
# and three Sentinels (quorum 2, down-after-milliseconds 1000, failover-timeout 3000) — and
# Rampart instances that find the primary through the Sentinels (redis.sentinels), behind
# HAProxy on :8080 (PORT=… INSTANCES=… to change). Ctrl-C stops them all.
# What to try: play a game at http://localhost:8080, then kill the primary
# (`kill -9 $(cat $dir/redis-primary.pid)`) or ask for a planned switchover
# (`redis-cli -p SENTINEL_PORT SENTINEL FAILOVER mymaster`) and keep playing: the instances
# log the primary the Sentinels name ("the Redis Sentinels name the primary") and follow it.
#   PORT=8080 INSTANCES=2 make run-sentinel
set -euo pipefail
cd "$(dirname "$0")/.."
port=${PORT:-8080}
instances=${INSTANCES:-2}
master=mymaster
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
cargo build --release --quiet --bin rampart
dir=$(mktemp -d "${TMPDIR:-/tmp}/rampart-sentinel.XXXXXX")
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  echo "stopped; logs kept in $dir"
}
trap cleanup EXIT INT TERM
wait_pong() {
  for _ in $(seq 1 100); do
    [ "$(redis-cli -p "$1" PING 2>/dev/null)" = "PONG" ] && return 0
    sleep 0.1
  done
  echo "nothing answers on port $1 (see $dir)" >&2
  return 1
}

# The data nodes, each from a config file of its own (Sentinel rewrites it at a failover).
node() { # NAME PORT [PRIMARY_PORT]
  mkdir -p "$dir/$1"
  {
    echo "port $2"; echo "bind 127.0.0.1"; echo "dir $dir/$1"; echo "logfile $dir/$1/redis.log"
    echo "appendonly yes"; echo "appendfsync everysec"; echo 'save ""'
    if [ -n "${3:-}" ]; then echo "replicaof 127.0.0.1 $3"; fi
  } >"$dir/$1/redis.conf"
  redis-server "$dir/$1/redis.conf" &
  pids+=($!)
  echo $! >"$dir/redis-$1.pid"
  wait_pong "$2"
}
primary=$(free_port)
node primary "$primary"
replica=$(free_port)
node replica "$replica" "$primary"

sentinels=""
for i in 1 2 3; do
  s=$(free_port)
  mkdir -p "$dir/sentinel-$i"
  cat >"$dir/sentinel-$i/sentinel.conf" <<CFG
port $s
bind 127.0.0.1
dir $dir/sentinel-$i
logfile $dir/sentinel-$i/sentinel.log
sentinel monitor $master 127.0.0.1 $primary 2
sentinel down-after-milliseconds $master 1000
sentinel failover-timeout $master 3000
sentinel parallel-syncs $master 1
CFG
  redis-server "$dir/sentinel-$i/sentinel.conf" --sentinel &
  pids+=($!)
  wait_pong "$s"
  sentinels+="${sentinels:+,}127.0.0.1:$s"
  first_sentinel=${first_sentinel:-$s}
done

# Every instance must hash seat tokens with the same key. RAMPART_REDIS_URL's address is
# not used with Sentinels (only a password and a database in it would be).
key=$(od -vN 32 -An -tx1 /dev/urandom | tr -d ' \n')
backends=""
for i in $(seq 1 "$instances"); do
  p=$(free_port)
  RAMPART_BIND="127.0.0.1:$p" RAMPART__STORAGE__BACKEND=redis \
    RAMPART__REDIS__SENTINELS="$sentinels" RAMPART__REDIS__MASTER_NAME="$master" \
    RAMPART_SESSION_KEY="$key" RAMPART__CLUSTER__INSTANCE_ID="rampart-$i" \
    RAMPART__SERVER__TRUSTED_PROXIES='["127.0.0.1"]' \
    target/release/rampart --config server_config.yaml >"$dir/rampart-$i.log" 2>&1 &
  pids+=($!)
  echo $! >"$dir/rampart-$i.pid"
  backends+="  server rampart-$i 127.0.0.1:$p check inter 1s fall 2 rise 1"$'\n'
  echo "instance rampart-$i on 127.0.0.1:$p (pid $!, log $dir/rampart-$i.log)"
done
cat >"$dir/haproxy.cfg" <<CFG
global
  maxconn 9000
defaults
  mode http
  timeout connect 2s
  timeout client 60s
  timeout server 60s
  timeout tunnel 1h
  retries 3
  option redispatch
  option forwardfor
frontend rampart
  bind 127.0.0.1:$port
  default_backend instances
backend instances
  balance roundrobin
  option httpchk GET /health
  http-check expect status 200
$backends
CFG
haproxy -f "$dir/haproxy.cfg" -db >"$dir/haproxy.log" 2>&1 &
haproxy=$!
pids+=($haproxy)
for _ in $(seq 1 100); do
  curl -fs "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break
  sleep 0.1
done
echo "Redis primary on 127.0.0.1:$primary, replica on 127.0.0.1:$replica, Sentinels on $sentinels (name $master)"
echo "HAProxy on http://localhost:$port balancing $instances instances (logs in $dir)"
echo "kill the primary:      kill -9 \$(cat $dir/redis-primary.pid)"
echo "planned switchover:    redis-cli -p $first_sentinel SENTINEL FAILOVER $master"
echo "which node is primary: redis-cli -p $first_sentinel SENTINEL get-master-addr-by-name $master"
wait "$haproxy" || true
