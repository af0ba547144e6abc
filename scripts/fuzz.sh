#!/usr/bin/env bash
# Fuzzing (issue 10, item 2): runs every cargo-fuzz target in fuzz/ for FUZZ_SECONDS each
# (default 60) on the stable toolchain, and fails if any target finds a crash. Installs
# cargo-fuzz when it is missing. Each target starts from its committed seeds
# (fuzz/seeds/<target>/, never written to), copied into a scratch corpus
# (fuzz/corpus/<target>/, git-ignored) that grows from run to run; a crash lands in
# fuzz/artifacts/<target>/ and the full libFuzzer log in fuzz/artifacts/<target>.log.
# The fuzz crate is its own workspace and builds into fuzz/target, so it never shares a
# lock with the main build. Prints one line per target: runs, runs/s, corpus, result.
#   make fuzz                                   # every target, 60 s each
#   FUZZ_SECONDS=600 FUZZ_TARGETS="config" bash scripts/fuzz.sh
#   cargo fuzz run --sanitizer none config fuzz/artifacts/config/crash-…   # replay one
#
# Stable works because `--sanitizer none` leaves out -Zsanitizer, the only nightly flag
# cargo-fuzz passes; coverage comes from -Cpasses=sancov-module and -Cllvm-args, which are
# stable. Without AddressSanitizer a crash is a panic, an abort, a stack overflow, a
# timeout or running out of memory; Rust's own checks (bounds, overflow, debug asserts)
# stay on.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${FUZZ_SECONDS:-60}
# A single input taking longer than this is a hang, reported like a crash.
timeout_secs=${FUZZ_TIMEOUT_SECS:-10}

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi

# The fuzzed library is built with the versions the main build uses: start the fuzz
# crate's lock from the main one (cargo then adds libfuzzer-sys and arbitrary).
cp Cargo.lock fuzz/Cargo.lock

targets=${FUZZ_TARGETS:-$(cargo fuzz list)}
fuzz=(--sanitizer none --target-dir fuzz/target)
cargo fuzz build "${fuzz[@]}"

# What libFuzzer writes when it finds something (slow units are not findings).
findings() { find "$1" -type f \( -name 'crash-*' -o -name 'timeout-*' -o -name 'oom-*' -o -name 'leak-*' \) | wc -l; }

failed=0
for target in $targets; do
  corpus=fuzz/corpus/$target
  artifacts=fuzz/artifacts/$target
  log=fuzz/artifacts/$target.log
  mkdir -p "$corpus" "$artifacts"
  if [ -d "fuzz/seeds/$target" ]; then
    cp -n fuzz/seeds/"$target"/* "$corpus"/ 2>/dev/null || true
  fi
  echo "fuzzing $target for ${seconds}s" >&2
  before=$(findings "$artifacts")
  status=0
  cargo fuzz run "${fuzz[@]}" "$target" "$corpus" -- \
    -max_total_time="$seconds" -timeout="$timeout_secs" -print_final_stats=1 \
    -artifact_prefix="$artifacts/" >"$log" 2>&1 || status=$?
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  size=$(find "$corpus" -type f | wc -l)
  after=$(findings "$artifacts")
  if [ "$status" -eq 0 ] && [ "$after" -eq "$before" ]; then
    result=ok
  else
    failed=1
    found=$(sed -n 's/.*Test unit written to //p' "$log" | tail -1)
    result="CRASH (exit $status) ${found:-see $log}"
  fi
  printf '%-14s runs=%-10s runs/s=%-7s corpus=%-6s %s\n' "$target" "${runs:-?}" "${rate:-?}" "$size" "$result"
done

if [ "$failed" -ne 0 ]; then
  echo "a target crashed: replay with cargo fuzz run --sanitizer none <target> <file>; logs in fuzz/artifacts/" >&2
  exit 1
fi
