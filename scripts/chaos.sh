#!/usr/bin/env bash
# make chaos: the chaos harness (src/bin/chaos/). Builds the release binaries and runs
# every scenario (panic-storm 180 s, redis-failover and cluster-failover about 80 s, the
# others 60 s each), each printing one summary line; exits non-zero when a promise broke. Needs redis-server, stress-ng,
# haproxy and iproute2 (Debian packages) and root for the memory cgroup and the partition's
# network namespace. Extra arguments go to the harness:
#   make chaos                                  # everything, full length
#   bash scripts/chaos.sh --smoke               # about 30 s per scenario
#   SCENARIO=redis-dies bash scripts/chaos.sh --duration 90 --seed 7
#   SCENARIO=issue-23 bash scripts/chaos.sh --runs 10   # make chaos-ten: each ten times, a table
set -euo pipefail
cd "$(dirname "$0")/.."
for pair in redis-server:redis-server stress-ng:stress-ng haproxy:haproxy ip:iproute2; do
  tool=${pair%%:*} package=${pair#*:}
  command -v "$tool" >/dev/null 2>&1 || echo "chaos: $tool is not installed (apt-get install $package); its scenarios will fail" >&2
done
cargo build --release --quiet --bin rampart --bin fake_llm --bin chaos
exec target/release/chaos --scenario "${SCENARIO:-all}" "$@"
