#!/usr/bin/env bash
# The fuzzer (tests/fuzz.rs) for longer than the test suite's bounded run,
# in a release build: both targets (a shard, the proxy with embedded
# shards) are fuzzed side by side for the given minutes each.
#   scripts/fuzz.sh --minutes 30 [--seed 0x1234]
# Without --seed the seed is taken from the clock and printed, so every
# long run explores new cases; a finding prints its case and the
# PGVSHARD_FUZZ_CASE=... to replay it. If the process aborts (no panic
# message can be printed then), the case being played is in
# target/tmp/fuzz-<target>.last-case.txt, shown below.
set -euo pipefail
cd "$(dirname "$0")/.."

minutes=5
seed=""
while [ $# -gt 0 ]; do
  case "$1" in
    --minutes) minutes="$2"; shift 2 ;;
    --seed) seed="$2"; shift 2 ;;
    *) echo "usage: $0 [--minutes N] [--seed S]" >&2; exit 2 ;;
  esac
done
seed="${seed:-$(date +%s)}"
echo "fuzzing for ${minutes} min per target, seed ${seed}"

status=0
PGVSHARD_FUZZ_SECONDS=$((minutes * 60)) PGVSHARD_FUZZ_SEED="$seed" \
  cargo test --release --test fuzz -- --nocapture --test-threads 2 || status=$?
if [ "$status" -ne 0 ]; then
  echo "fuzz run failed (exit $status); last cases played:" >&2
  for f in target/tmp/fuzz-*.last-case.txt; do
    [ -f "$f" ] && { echo "== $f"; cat "$f"; } >&2
  done
fi
exit "$status"
