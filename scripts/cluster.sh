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
. scripts/front.sh
front_setup cluster
rport=$(free_port)
redis-server --port "$rport" --bind 127.0.0.1 --appendonly yes --dir "$dir" >"$dir/redis.log" 2>&1 &
pids+=($!)
start_instances RAMPART_REDIS_URL="redis://127.0.0.1:$rport"
start_haproxy
echo "Redis on 127.0.0.1:$rport; HAProxy on http://localhost:$port balancing $instances instances (logs in $dir)"
echo "kill an instance with: kill -9 \$(cat $dir/rampart-1.pid)   (restart it: see the log's first line for its port)"
# Instances may be killed and restarted by hand; the cluster runs until HAProxy stops or Ctrl-C.
wait "$haproxy" || true
