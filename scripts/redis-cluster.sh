#!/usr/bin/env bash
# make run-redis-cluster: a Redis Cluster as operators run one — three primaries and three
# replicas (appendonly, cluster-node-timeout 2000, cluster-require-full-coverage no,
# min-replicas-to-write 1) on private
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
. scripts/front.sh
front_setup redis-cluster

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
cluster-require-full-coverage no
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

# RAMPART_REDIS_URL's address is not used with a cluster (only a password in it would be).
start_instances RAMPART__REDIS__CLUSTER_NODES="$seeds" RAMPART__REDIS__MIN_REPLICAS_ACKED=1
start_haproxy
echo "Redis Cluster nodes: $seeds (logs and configs in $dir)"
echo "HAProxy on http://localhost:$port balancing $instances instances"
echo "the nodes and their slots:   redis-cli -p $first CLUSTER NODES"
echo "a game's slot:               redis-cli -p $first CLUSTER KEYSLOT 'rampart:g:{GAME_ID}:snap'"
echo "kill a node:                 kill -9 \$(cat $dir/redis-PORT.pid)"
echo "start it again (a replica):  redis-server $dir/PORT/redis.conf &"
wait "$haproxy" || true
