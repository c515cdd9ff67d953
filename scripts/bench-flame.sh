#!/usr/bin/env bash
# Flame graphs of Sundial's request paths, under the load of scripts/bench-limit.sh.
#
# For each target it starts a fresh daemon (release build, embedded redb store, a
# scratch data directory), puts the same wrk load on it as bench-limit.sh does (one
# POST with a small JSON body per request, a fresh id each), and records the daemon's
# threads with `perf record --call-graph dwarf` during the middle of the load. The
# stacks are folded and drawn with inferno (from crates.io) into one SVG per target:
#   events  POST /v1/events, a CloudEvent matching no trigger (acknowledged once
#           committed to the store);
#   runs    POST /v1/tasks/bench/run, a manual run of the bundled echo plugin
#           (acknowledged once queued durably; the runs complete meanwhile, so
#           their execution is in the graph too);
#   peer    POST /v1/events of type bench.peer, which a trigger turns into an echo
#           run: the Sundial half of scripts/bench-peer.sh.
#
#   scripts/bench-flame.sh [SECONDS] [OUT_DIR] [TARGET...]
#
# Defaults: 12 s of load per target (perf records the 6 s in its middle), OUT_DIR
# docs/flamegraphs, every target. Prints each target's wrk rate and where the SVG went;
# with KEEP_FOLDED=1 it also writes OUT_DIR/TARGET.folded (the folded stacks, 10 MB or
# so each, for inferno-diff-folded or a script). Takes about 2 min per target, most of
# it `perf script` unwinding the stacks. Needs
# perf (linux-perf), wrk and inferno: installs wrk with apt-get and inferno with
# `cargo install --locked inferno --root target/tools` when missing, and says so.
# Not part of the test command. perf needs kernel.perf_event_paranoid <= 1 or root.
set -euo pipefail

SECS=${1:-12}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${2:-$ROOT/docs/flamegraphs}
shift $(($# > 2 ? 2 : $#))
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(events runs peer)
BIN=${SUNDIAL_BIN:-$ROOT/target/release/sundial}
PORT=${SUNDIAL_PORT:-18790}
TOOLS=$ROOT/target/tools
WORK=$(mktemp -d /tmp/sundial-bench-flame.XXXXXX)
# shellcheck source=scripts/bench-lib.sh
. "$ROOT/scripts/bench-lib.sh"
DAEMON=
trap 'bench_cleanup bench-flame' EXIT
fail() { echo "bench-flame: $*" >&2; exit 1; }

command -v perf >/dev/null || fail "needs perf (Debian: apt-get install linux-perf)"
need_wrk bench-flame
if [ ! -x "$TOOLS/bin/inferno-flamegraph" ]; then
    echo "bench-flame: installing inferno from crates.io (cargo install --locked inferno --root target/tools)" >&2
    cargo install -q --locked inferno --root "$TOOLS"
fi
need_release bench-flame "$BIN" "$ROOT"
mkdir -p "$OUT"

for target in "${TARGETS[@]}"; do
    bench_target "$target"
    start_bench_daemon "$BIN" "$WORK/data-$target" "$PORT" "$WORK/sundial-$target.log" "$target"
    wrk -t2 -c32 -d"${SECS}s" -s "$POST_LUA" -H "authorization: Bearer $TOKEN" \
        -H 'content-type: application/json' "http://127.0.0.1:$PORT$TARGET_PATH" -- "flame-$target" "$TARGET_KIND" backoff \
        > "$WORK/wrk-$target.txt" 2>&1 &
    load=$!
    sleep $((SECS / 4))
    perf record -q -F 499 --call-graph dwarf,16384 -p "$DAEMON" -o "$WORK/perf-$target.data" \
        -- sleep $((SECS / 2)) 2> "$WORK/perf-$target.log" || fail "perf record failed: $(cat "$WORK/perf-$target.log")"
    wait "$load" || fail "wrk failed: $(cat "$WORK/wrk-$target.txt")"
    rate=$(awk '$1 == "SUMMARY" {printf "%.0f", ($2 - $4) / ($3 / 1e6)}' "$WORK/wrk-$target.txt")
    kill "$DAEMON"
    wait "$DAEMON" 2>/dev/null || true
    DAEMON=
    folded=$WORK/$target.folded
    [ "${KEEP_FOLDED:-0}" = 1 ] && folded=$OUT/$target.folded
    perf script -i "$WORK/perf-$target.data" 2> /dev/null |
        "$TOOLS/bin/inferno-collapse-perf" --all > "$folded"
    rm -f "$WORK/perf-$target.data"
    "$TOOLS/bin/inferno-flamegraph" --title "Sundial: $target, POST $TARGET_PATH under wrk -t2 -c32 ($rate req/s 2xx)" \
        --minwidth 0.2 < "$folded" > "$OUT/$target.svg"
    printf 'bench-flame: %-6s %8s req/s (2xx)  %s\n' "$target" "$rate" "$OUT/$target.svg"
done
