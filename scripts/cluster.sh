#!/usr/bin/env bash
# make run-cluster: a private redis-server, three Rampart instances on one Redis and HAProxy
# on :8080 balancing them round-robin (WebSocket upgrades included). Ctrl-C stops them all.
# What to try: play a game at http://localhost:8080, then kill the instance that owns it
# (the log says which; `kill -9 $(cat $dir/rampart-N.pid)`) and keep playing: the page
# reconnects through another instance, which takes the game over within cluster.lease_ms.
#   PORT=8080 INSTANCES=3 make run-cluster
set -euo pipefail
cd "$(dirname "$0")/.."
port=${PORT:-8080}
instances=${INSTANCES:-3}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
cargo build --release --quiet --bin rampart
dir=$(mktemp -d "${TMPDIR:-/tmp}/rampart-cluster.XXXXXX")
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  echo "stopped; logs kept in $dir"
}
trap cleanup EXIT INT TERM
rport=$(free_port)
redis-server --port "$rport" --bind 127.0.0.1 --appendonly yes --dir "$dir" >"$dir/redis.log" 2>&1 &
pids+=($!)
# Every instance must hash seat tokens with the same key.
key=$(od -vN 32 -An -tx1 /dev/urandom | tr -d ' \n')
backends=""
for i in $(seq 1 "$instances"); do
  p=$(free_port)
  RAMPART_BIND="127.0.0.1:$p" RAMPART__STORAGE__BACKEND=redis RAMPART_REDIS_URL="redis://127.0.0.1:$rport" \
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
  # Two descriptors a connection (client and server side), under the 20000 hard limit.
  maxconn 9000
defaults
  mode http
  timeout connect 2s
  timeout client 60s
  timeout server 60s
  # An upgraded WebSocket is a tunnel: it may stay quiet between heartbeats.
  timeout tunnel 1h
  # A connection refused by a dead instance is tried on another one.
  retries 3
  option redispatch
  # The client's address, for the instances' per-client limits (server.trusted_proxies).
  option forwardfor
frontend rampart
  bind 127.0.0.1:$port
  default_backend instances
backend instances
  balance roundrobin
  # /health answers 503 while an instance drains (SIGTERM) or is overloaded.
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
echo "Redis on 127.0.0.1:$rport; HAProxy on http://localhost:$port balancing $instances instances (logs in $dir)"
echo "kill an instance with: kill -9 \$(cat $dir/rampart-1.pid)   (restart it: see the log's first line for its port)"
# Instances may be killed and restarted by hand; the cluster runs until HAProxy stops or Ctrl-C.
wait "$haproxy" || true
