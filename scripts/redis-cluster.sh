#!/usr/bin/env bash
# make run-redis-cluster: a Redis Cluster as operators run one — three primaries and three
# replicas (appendonly, cluster-node-timeout 2000, min-replicas-to-write 1) on private
# ports, joined by `redis-cli --cluster create … --cluster-replicas 1` — and Rampart
# instances on it (redis.cluster_nodes, redis.min_replicas_acked 1), behind HAProxy on :8080
# (PORT=… INSTANCES=… to change). Ctrl-C stops them all.
# What to try: play a game at http://localhost:8080, find the primary of its slot
# (`redis-cli -p PORT CLUSTER KEYSLOT 'rampart:g:{GAME_ID}:snap'`, then `CLUSTER NODES`) and
# kill it (`kill -9 $(cat $dir/redis-PORT.pid)`), keep playing: the cluster promotes its
# replica, and the game goes on once that shard has a replica again (start the killed node
# again with `redis-server $dir/PORT/redis.conf &`: it comes back as the new primary's replica).
#   PORT=8080 INSTANCES=2 make run-redis-cluster
set -euo pipefail
cd "$(dirname "$0")/.."
port=${PORT:-8080}
instances=${INSTANCES:-2}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
cargo build --release --quiet --bin rampart
dir=$(mktemp -d "${TMPDIR:-/tmp}/rampart-redis-cluster.XXXXXX")
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  # A node restarted by hand is not in pids: stop every node of this cluster by its pid file.
  for f in "$dir"/redis-*.pid; do [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null || true; done
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

# Six nodes, each from a config file of its own; the cluster bus on a free port of its own
# (cluster-port; the default, the port plus 10000, may be taken).
seeds=""
addresses=()
for _ in 1 2 3 4 5 6; do
  p=$(free_port)
  bus=$(free_port)
  mkdir -p "$dir/$p"
  cat >"$dir/$p/redis.conf" <<CFG
port $p
bind 127.0.0.1
dir $dir/$p
logfile $dir/$p/redis.log
pidfile $dir/redis-$p.pid
appendonly yes
appendfsync everysec
save ""
cluster-enabled yes
cluster-port $bus
cluster-config-file nodes.conf
cluster-node-timeout 2000
min-replicas-to-write 1
min-replicas-max-lag 10
CFG
  redis-server "$dir/$p/redis.conf" &
  pids+=($!)
  wait_pong "$p"
  addresses+=("127.0.0.1:$p")
  seeds+="${seeds:+,}127.0.0.1:$p"
  first=${first:-$p}
done
redis-cli --cluster create "${addresses[@]}" --cluster-replicas 1 --cluster-yes >"$dir/create.log"
for _ in $(seq 1 100); do
  redis-cli -p "$first" CLUSTER INFO | grep -q 'cluster_state:ok' && break
  sleep 0.1
done

# Every instance must hash seat tokens with the same key. RAMPART_REDIS_URL's address is
# not used with a cluster (only a password in it would be).
key=$(od -vN 32 -An -tx1 /dev/urandom | tr -d ' \n')
backends=""
for i in $(seq 1 "$instances"); do
  p=$(free_port)
  RAMPART_BIND="127.0.0.1:$p" RAMPART__STORAGE__BACKEND=redis \
    RAMPART__REDIS__CLUSTER_NODES="$seeds" RAMPART__REDIS__MIN_REPLICAS_ACKED=1 \
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
echo "Redis Cluster nodes: $seeds (logs and configs in $dir)"
echo "HAProxy on http://localhost:$port balancing $instances instances"
echo "the nodes and their slots:   redis-cli -p $first CLUSTER NODES"
echo "a game's slot:               redis-cli -p $first CLUSTER KEYSLOT 'rampart:g:{GAME_ID}:snap'"
echo "kill a node:                 kill -9 \$(cat $dir/redis-PORT.pid)"
echo "start it again (a replica):  redis-server $dir/PORT/redis.conf &"
wait "$haproxy" || true
