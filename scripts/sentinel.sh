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
. scripts/front.sh
front_setup sentinel
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

# RAMPART_REDIS_URL's address is not used with Sentinels (only a password and a database
# in it would be).
start_instances RAMPART__REDIS__SENTINELS="$sentinels" RAMPART__REDIS__MASTER_NAME="$master"
start_haproxy
echo "Redis primary on 127.0.0.1:$primary, replica on 127.0.0.1:$replica, Sentinels on $sentinels (name $master)"
echo "HAProxy on http://localhost:$port balancing $instances instances (logs in $dir)"
echo "kill the primary:      kill -9 \$(cat $dir/redis-primary.pid)"
echo "planned switchover:    redis-cli -p $first_sentinel SENTINEL FAILOVER $master"
echo "which node is primary: redis-cli -p $first_sentinel SENTINEL get-master-addr-by-name $master"
wait "$haproxy" || true
