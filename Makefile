# Rampart: the two commands a newcomer needs are `make run` and `make test`.
# `make test` is exactly what CI runs (.ci/run calls it).

CARGO ?= cargo
BROWSER_DIR := tests/browser

.PHONY: run run-debug run-llm run-redis run-cluster run-sentinel run-redis-haproxy run-redis-cluster cluster-deps fake-llm load load-peers redis-deps test fmt-check clippy unit browser-test browser-deps bench check-config conformance schemathesis python-deps fuzz chaos chaos-deps clean chaos-ten

# $(call need-deb,COMMAND,PACKAGE,WHAT NEEDS IT): installs Debian's PACKAGE when COMMAND is
# missing (as root), or says how and stops.
need-deb = @if ! command -v $(1) >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = "0" ]; then \
	    echo "installing Debian's $(2) for $(3)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(2) >/dev/null; \
	  else \
	    echo "Debian's $(2) is missing (for $(3)): run 'sudo apt-get install $(2)' and retry" >&2; exit 1; \
	  fi; \
	fi

## make run: the server with the shipped configuration on http://localhost:8080
run:
	$(CARGO) run --release --bin rampart -- --config server_config.yaml

run-debug:
	$(CARGO) run --bin rampart -- --config server_config.yaml

## make test: formatting, lints, the config check, the browser test, the WebSocket
## conformance cases, the OpenAPI contract (schemathesis), then every cargo test (the
## chaos harness's 30-second smoke of each scenario among them)
test: fmt-check clippy check-config browser-test conformance schemathesis chaos-deps unit

fmt-check:
	$(CARGO) fmt --all -- --check

clippy:
	$(CARGO) clippy --all-targets --all-features -- -D warnings

unit:
	$(CARGO) test --all-targets

check-config:
	$(CARGO) run --quiet --bin rampart -- --config server_config.yaml --check

## The browser test needs Debian's chromium (and promtool, from Debian's prometheus, to
## check /metrics) and npm's playwright-core; install what is missing.
browser-deps:
	@missing=""; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	command -v promtool >/dev/null 2>&1 || missing="$$missing prometheus"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = "0" ]; then \
	    echo "installing Debian packages for the browser test:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	  else \
	    echo "the browser test needs:$$missing. Run 'sudo apt-get install$$missing' and retry" >&2; exit 1; \
	  fi; \
	fi
	@command -v npm >/dev/null 2>&1 || { echo "the browser test needs node and npm: run 'sudo apt-get install nodejs npm'" >&2; exit 1; }
	@if [ ! -d $(BROWSER_DIR)/node_modules/playwright-core ]; then \
	  cd $(BROWSER_DIR) && npm ci --no-audit --no-fund --loglevel=error; \
	fi

## The Redis tests start their own private redis-server (Debian package redis-server).
redis-deps:
	$(call need-deb,redis-server,redis-server,the Redis tests (each starts its own private server))

browser-test: browser-deps
	$(CARGO) build --quiet --bin rampart
	bash $(BROWSER_DIR)/run.sh target/debug/rampart

## Python tools (kosoku, schemathesis) run from venvs the scripts make under target/; they
## need Debian's python3-venv.
python-deps:
	@python3 -c 'import venv, ensurepip' 2>/dev/null || { \
	  if [ "$$(id -u)" = "0" ]; then \
	    echo "installing Debian's python3-venv for the conformance and contract checks"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-venv >/dev/null; \
	  else \
	    echo "the conformance and contract checks need python3-venv: run 'sudo apt-get install python3-venv' and retry" >&2; exit 1; \
	  fi; \
	}

## make conformance: Autobahn cases 1-7 (kosoku, PyPI) against a conformance build's /ws/echo
conformance: python-deps
	bash scripts/conformance.sh

## make schemathesis: the live server checked against its own /api/v1/openapi.json
## (schemathesis, PyPI, in a venv under target/; a bounded number of examples, fixed seed)
schemathesis: python-deps
	bash scripts/schemathesis.sh

## make chaos: the chaos harness, every scenario at full length (panic storm, Redis dies and Redis forgets,
## instance dies, memory pressure, LLM storm, Redis failover under Sentinel and HAProxy, a Redis Cluster
## primary killed, an owner paused past its lease, an instance cut off from Redis in a network namespace);
## one summary line each, non-zero on a broken promise. Not part of make test (its 30-second smoke is). Figures in RELIABILITY.md.
chaos: chaos-deps
	bash scripts/chaos.sh

## make chaos-ten: issue 23's scenarios (redis-failover, cluster-failover, owner-paused, partition) ten
## times each at full length (about 50 min), then a table: runs passed, moves lost, games with two
## owners, games lost.
chaos-ten: chaos-deps
	SCENARIO=issue-23 bash scripts/chaos.sh --runs 10

## The chaos harness (and its smoke in make test) needs redis-server, stress-ng, haproxy and iproute2's ip.
chaos-deps: redis-deps
	$(call need-deb,stress-ng,stress-ng,the chaos harness's memory-pressure scenario)
	$(call need-deb,haproxy,haproxy,the chaos harness's redis-failover scenario)
	$(call need-deb,ip,iproute2,the chaos harness's partition scenario)

## make fuzz: every cargo-fuzz target (fuzz/) for 60 s on stable (--sanitizer none);
## installs cargo-fuzz if missing. Not part of make test.
fuzz:
	bash scripts/fuzz.sh

## make bench: criterion benchmarks (not part of make test); figures go in BENCHMARKS.md
bench:
	$(CARGO) bench --bench actors --bench breaker

## make run-redis: the server with its games, sessions and waitlist in a local Redis
## (redis-server on :6379 that persists, e.g. `redis-server --appendonly yes` in another
## terminal: a Redis that keeps nothing on disk loses the line and the games on a restart)
run-redis:
	RAMPART__STORAGE__BACKEND=redis $(CARGO) run --release --bin rampart -- --config server_config.yaml

## make run-cluster: a private redis-server, three instances on it and Debian's haproxy on
## :8080 balancing them (PORT=… INSTANCES=… to change); kill one instance and keep playing.
run-cluster: cluster-deps
	bash scripts/cluster.sh

## make run-sentinel: Redis for failover — a private primary, two replicas and three Sentinels —
## and two instances that find the primary through the Sentinels (redis.sentinels), behind
## Debian's haproxy on :8080 (PORT=… INSTANCES=…); kill the primary or ask the Sentinels for
## a switchover (the script prints how) and keep playing.
run-sentinel: cluster-deps
	bash scripts/sentinel.sh

## make run-redis-haproxy: the same Redis, the instances reaching it through HAProxy in front
## of the nodes (routing to whichever answers role:master; docs/OPERATIONS.md) instead.
run-redis-haproxy: cluster-deps
	VIA=haproxy bash scripts/sentinel.sh

## make run-redis-cluster: a Redis Cluster — three primaries and three replicas on private
## ports, joined by redis-cli --cluster create — and two instances on it
## (redis.cluster_nodes), behind Debian's haproxy on :8080 (PORT=… INSTANCES=…); kill a
## primary (the script prints how) and keep playing.
run-redis-cluster: cluster-deps
	bash scripts/redis-cluster.sh

cluster-deps: redis-deps
	$(call need-deb,haproxy,haproxy,make run-cluster)

## make load: the capacity scenarios against Rampart and the bare actix-ws relay (sockets,
## play, cluster, durable) and the admission flood check (SCENARIO=… for one; BACKEND=redis for the
## Redis line). Not part of make test; figures go in BENCHMARKS.md.
load: redis-deps
	bash scripts/load.sh

## make load-peers: sockets and play with Colyseus 0.18 beside Rampart and the bare relay
## (bench/peers/colyseus; npm installs Colyseus and Node 22). Never part of make test.
load-peers: redis-deps
	@command -v npm >/dev/null 2>&1 || { echo "make load-peers needs npm: run 'sudo apt-get install nodejs npm'" >&2; exit 1; }
	@if [ ! -x bench/peers/colyseus/node_modules/.bin/node ]; then \
	  cd bench/peers/colyseus && npm ci --no-audit --no-fund --loglevel=error; \
	fi
	PEERS=1 SCENARIO=$${SCENARIO:-peers} bash scripts/load.sh

## make fake-llm: the bundled OpenAI-compatible fake on :8089 (fault modes: see README)
fake-llm:
	$(CARGO) run --release --bin fake_llm -- --listen 127.0.0.1:8089

## make run-llm: the server with its AI chatting through the fake (start `make fake-llm` first)
run-llm:
	RAMPART__LLM__BASE_URL=http://127.0.0.1:8089 $(CARGO) run --release --bin rampart -- --config server_config.yaml

clean:
	$(CARGO) clean
	rm -rf $(BROWSER_DIR)/node_modules
