# Sourced by the run-* scripts that start several Rampart instances on one shared Redis
# behind HAProxy (scripts/cluster.sh, scripts/sentinel.sh): the parts they share.
#   front_setup NAME        release build, a log directory $dir, $pids stopped on exit
#                           (and every node with a $dir/redis-*.pid, restarted by hand or not)
#   wait_pong PORT          until the Redis on PORT answers PING
#   start_instances ENV…    $instances instances, each with ENV (how it reaches Redis)
#   start_haproxy           HAProxy on 127.0.0.1:$port balancing them; sets $haproxy
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

front_setup() { # NAME
  cargo build --release --quiet --bin rampart
  dir=$(mktemp -d "${TMPDIR:-/tmp}/rampart-$1.XXXXXX")
  pids=()
  trap front_cleanup EXIT INT TERM
}

front_cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  # A node restarted by hand is not in pids: stop every node by its pid file.
  for f in "$dir"/redis-*.pid; do [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null || true; done
  wait 2>/dev/null || true
  echo "stopped; logs kept in $dir"
}

wait_pong() { # PORT
  for _ in $(seq 1 100); do
    [ "$(redis-cli -p "$1" PING 2>/dev/null)" = "PONG" ] && return 0
    sleep 0.1
  done
  echo "nothing answers on port $1 (see $dir)" >&2
  return 1
}

start_instances() { # ENV… (each instance's way to Redis)
  # Every instance must hash seat tokens with the same key.
  local key i p
  key=$(od -vN 32 -An -tx1 /dev/urandom | tr -d ' \n')
  backends=""
  for i in $(seq 1 "$instances"); do
    p=$(free_port)
    env "$@" RAMPART_BIND="127.0.0.1:$p" RAMPART__STORAGE__BACKEND=redis \
      RAMPART_SESSION_KEY="$key" RAMPART__CLUSTER__INSTANCE_ID="rampart-$i" \
      RAMPART__SERVER__TRUSTED_PROXIES='["127.0.0.1"]' \
      target/release/rampart --config server_config.yaml >"$dir/rampart-$i.log" 2>&1 &
    pids+=($!)
    echo $! >"$dir/rampart-$i.pid"
    backends+="  server rampart-$i 127.0.0.1:$p check inter 1s fall 2 rise 1"$'\n'
    echo "instance rampart-$i on 127.0.0.1:$p (pid $!, log $dir/rampart-$i.log)"
  done
}

start_haproxy() {
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
}
