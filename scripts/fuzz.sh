#!/usr/bin/env bash
# Run every fuzz target for a bounded time (default 60 s each) with cargo-fuzz.
#
#   scripts/fuzz.sh            # 60 s per target
#   scripts/fuzz.sh 3600       # an hour per target
#   scripts/fuzz.sh 30 schedule filter
#
# Builds with optimisations and debug assertions (overflow checks on), with
# AddressSanitizer. Needs cargo-fuzz (`cargo install cargo-fuzz`). cargo-fuzz wants nightly for the
# sanitizer flags; on a stable toolchain RUSTC_BOOTSTRAP=1 lets the stable compiler
# accept them. Corpora live in fuzz/corpus/TARGET (seeds are committed); crashes land in
# fuzz/artifacts/TARGET and each one found becomes a regression test.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(schedule cloudevent filter signature declarative plugin)
fi
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz
export RUSTC_BOOTSTRAP=1
cargo fuzz build -O -a
mkdir -p fuzz/reports
for t in "${targets[@]}"; do
  mkdir -p "fuzz/corpus/$t"
  echo "== $t: ${seconds}s"
  cargo fuzz run -O -a "$t" "fuzz/corpus/$t" -- -max_total_time="$seconds" -rss_limit_mb=4096 \
    -timeout=10 2>&1 | tee "fuzz/reports/$t.log" | grep -E "^#[0-9]+.*(DONE|pulse)|Done|ERROR|SUMMARY" || true
  grep -E "^Done [0-9]+ runs" "fuzz/reports/$t.log" | tail -1 || true
done
