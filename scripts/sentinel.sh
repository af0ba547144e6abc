#!/usr/bin/env bash
# make run-sentinel: Redis as operators run it for failover — a private primary, two replicas
# and three Sentinels (quorum 2, down-after-milliseconds 1000, failover-timeout 3000) — and
# Rampart instances that find the primary through the Sentinels (redis.sentinels), behind
# HAProxy on :8080 (PORT=… INSTANCES=… to change). Ctrl-C stops them all.
# What to try: play a game at http://localhost:8080, then kill the primary
# (`kill -9 $(cat $dir/redis-primary.pid)`) or ask for a planned switchover
# (`redis-cli -p SENTINEL_PORT SENTINEL FAILOVER mymaster`) and keep playing: the instances
# log the primary the Sentinels name ("the Redis Sentinels name the primary") and follow it.
# With VIA=haproxy (make run-redis-haproxy) the instances reach Redis through HAProxy in
# front of the two nodes instead (the recipe in docs/OPERATIONS.md) and know no Sentinel.
#   PORT=8080 INSTANCES=2 make run-sentinel
set -euo pipefail
cd "$(dirname "$0")/.."
port=${PORT:-8080}
instances=${INSTANCES:-2}
master=mymaster
. scripts/front.sh
front_setup sentinel

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
# Two replicas, as docs/OPERATIONS.md recommends: with redis.min_replicas_acked 1 the
# promoted one still has a replica to acknowledge the games' writes after a primary dies.
replica2=$(free_port)
node replica2 "$replica2" "$primary"

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

if [ "${VIA:-sentinels}" = haproxy ]; then
  # The other recipe (docs/OPERATIONS.md, "Redis behind HAProxy"): the instances know one
  # address, HAProxy's, which routes to whichever node answers role:master, and cuts the
  # sessions of a node it marks down so that no client stays on a demoted primary.
  rp=$(free_port)
  cat >"$dir/haproxy-redis.cfg" <<CFG
defaults
  mode tcp
  timeout connect 1s
  timeout client 1h
  timeout server 1h
frontend redis
  bind 127.0.0.1:$rp
  default_backend redis
backend redis
  option tcp-check
  tcp-check connect
  tcp-check send PING\r\n
  tcp-check expect string +PONG
  tcp-check send info\ replication\r\n
  tcp-check expect string role:master
  tcp-check send QUIT\r\n
  tcp-check expect string +OK
  server primary 127.0.0.1:$primary check inter 500ms on-marked-down shutdown-sessions
  server replica 127.0.0.1:$replica check inter 500ms on-marked-down shutdown-sessions
  server replica2 127.0.0.1:$replica2 check inter 500ms on-marked-down shutdown-sessions
CFG
  haproxy -f "$dir/haproxy-redis.cfg" -db >"$dir/haproxy-redis.log" 2>&1 &
  pids+=($!)
  # HAProxy holds every server up until its first checks fail: wait until six connections
  # in a row (round-robin over three servers) reach the primary.
  for _ in $(seq 1 100); do
    masters=0
    for _ in 1 2 3 4 5 6; do
      [ "$(redis-cli -p "$rp" ROLE 2>/dev/null | head -1)" = master ] && masters=$((masters + 1))
    done
    [ "$masters" = 6 ] && break
    sleep 0.1
  done
  start_instances RAMPART_REDIS_URL="redis://127.0.0.1:$rp" RAMPART__REDIS__MIN_REPLICAS_ACKED=1
  echo "Redis behind HAProxy on 127.0.0.1:$rp (logs in $dir/haproxy-redis.log)"
else
  # RAMPART_REDIS_URL's address is not used with Sentinels (only a password and a database
  # in it would be).
  start_instances RAMPART__REDIS__SENTINELS="$sentinels" RAMPART__REDIS__MASTER_NAME="$master" \
    RAMPART__REDIS__MIN_REPLICAS_ACKED=1
fi
start_haproxy
echo "Redis primary on 127.0.0.1:$primary, replicas on 127.0.0.1:$replica and 127.0.0.1:$replica2, Sentinels on $sentinels (name $master)"
echo "HAProxy on http://localhost:$port balancing $instances instances (logs in $dir)"
echo "kill the primary:      kill -9 \$(cat $dir/redis-primary.pid)"
echo "planned switchover:    redis-cli -p $first_sentinel SENTINEL FAILOVER $master"
echo "which node is primary: redis-cli -p $first_sentinel SENTINEL get-master-addr-by-name $master"
wait "$haproxy" || true
