#!/usr/bin/env bash
# make conformance: the Autobahn TestSuite's cases 1-7 (framing, pings and pongs, reserved
# bits and opcodes, fragmentation, UTF-8, close handling) run by kosoku (PyPI) against
# /ws/echo of a conformance build (`--features conformance`), which uses the same upgrade,
# frame guard and socket skeleton as the game and lobby sockets. Fails if any case fails;
# the report is in target/conformance/report (index.html), its summary printed last.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=target/conformance/venv
kosoku_version=0.1.0
if [ ! -x "$venv/bin/kosoku" ]; then
  echo "installing kosoku $kosoku_version (PyPI) in $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "kosoku==$kosoku_version"
fi
cargo build --quiet --features conformance --bin rampart
dir=target/conformance
rm -rf "$dir/report"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
# The echo carries Autobahn's payloads (up to 64 KiB a frame, 16 MiB hard) at its pace.
RAMPART_BIND="127.0.0.1:$port" RAMPART_LOG=warn RAMPART__SERVER__MAX_FRAME_BYTES=1048576 \
  RAMPART__SERVER__RATE_LIMIT_FRAMES_PER_SEC=100000 RAMPART__SERVER__RATE_LIMIT_BURST=100000 \
  target/debug/rampart >"$dir/server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true; wait $server 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/health', timeout=1)" 2>/dev/null && break
  sleep 0.1
done
status=0
"$venv/bin/kosoku" -i '1.*' -i '2.*' -i '3.*' -i '4.*' -i '5.*' -i '6.*' -i '7.*' -o "$dir/report" \
  "ws://127.0.0.1:$port/ws/echo" || status=$?
kill -0 $server 2>/dev/null || { echo "conformance: the server died (see $dir/server.log)" >&2; exit 1; }
python3 - "$dir/report/index.json" <<'PY'
import collections, json, sys
index = json.load(open(sys.argv[1]))
cases = next(iter(index.values()))
counts = collections.Counter(c["behavior"] for c in cases.values())
closes = collections.Counter(c.get("behaviorClose") for c in cases.values())
bad = sorted(k for k, c in cases.items() if c["behavior"] in ("FAILED", "UNIMPLEMENTED") or c.get("behaviorClose") == "FAILED")
print(f"conformance: Autobahn cases 1-7: {len(cases)} run; behaviour {dict(counts)}; close {dict(closes)}; failed {bad or 'none'}")
sys.exit(1 if bad else 0)
PY
exit $status
