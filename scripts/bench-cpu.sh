#!/usr/bin/env bash
# The daemon's CPU per acknowledged request, per thread, under the load of
# scripts/bench-limit.sh, with the group-commit writer's counters.
#
# Starts a fresh daemon (release build, embedded redb store, a scratch data directory),
# puts wrk -t2 -c32 on one target for SECONDS (one small JSON POST per request, a fresh
# id each, scripts/bench-post.lua; a thread answered 429 or 503 waits 20 ms), and over
# the middle of the load reads the daemon's CPU time per thread from
# /proc/PID/task/*/stat and the machine's idle share from /proc/stat. Targets:
#   events  POST /v1/events, a CloudEvent matching no trigger;
#   runs    POST /v1/tasks/bench/run, a manual run of the bundled echo plugin;
#   peer    POST /v1/events of type bench.peer, which a trigger turns into an echo run.
#
#   scripts/bench-cpu.sh TARGET [SECONDS]
#
# Default 10 s (the CPU is read over the 5 s after the first 2). Prints the requests
# acknowledged per second, the daemon's cores in all and per thread name, its CPU in
# microseconds per acknowledged request, and the writer's commits per second,
# mutations per commit and CPU per commit. SUNDIAL_BIN picks the binary (default
# target/release/sundial); DATA_PARENT the directory the scratch data directory goes
# in (default /tmp; a tmpfs such as /dev/shm shows what the disk's commit costs).
# Needs curl and wrk (installs Debian's wrk with apt-get when missing, and says so).
# Not part of the test command.
set -euo pipefail

TARGET=${1:?usage: scripts/bench-cpu.sh events|runs|peer [SECONDS]}
SECS=${2:-10}
[ "$SECS" -ge 8 ] || { echo "bench-cpu: SECONDS must be at least 8" >&2; exit 1; }
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${SUNDIAL_BIN:-$ROOT/target/release/sundial}
PORT=${SUNDIAL_PORT:-18791}
WORK=$(mktemp -d "${DATA_PARENT:-/tmp}/sundial-bench-cpu.XXXXXX")
# shellcheck source=scripts/bench-lib.sh
. "$ROOT/scripts/bench-lib.sh"
DAEMON=
trap 'bench_cleanup bench-cpu' EXIT
fail() { echo "bench-cpu: $*" >&2; exit 1; }

bench_target "$TARGET"
need_wrk bench-cpu
need_release bench-cpu "$BIN" "$ROOT"
start_bench_daemon "$BIN" "$WORK/data" "$PORT" "$WORK/sundial.log" "$TARGET"

# The writer's counters: "COMMITS MUTATIONS".
writer() {
    curl -sf -H "authorization: Bearer $TOKEN" "http://127.0.0.1:$PORT/metrics" |
        awk '$1 == "sundial_store_commit_seconds_count" {c = $2} $1 == "sundial_store_batch_size_sum" {m = $2}
             END {print c + 0, m + 0}'
}
# CPU ticks per thread: "NAME TICKS" lines.
threads() {
    for t in /proc/"$DAEMON"/task/*; do
        printf '%s %s\n' "$(tr ' ' '_' < "$t/comm")" "$(awk '{print $14 + $15}' "$t/stat" 2>/dev/null || echo 0)"
    done
}
# Busy and idle ticks of the whole machine: "BUSY IDLE".
machine() { awk '$1 == "cpu" {print $2 + $3 + $4 + $7 + $8 + $9, $5 + $6}' /proc/stat; }

wrk -t2 -c32 -d"${SECS}s" -s "$POST_LUA" -H "authorization: Bearer $TOKEN" \
    -H 'content-type: application/json' "http://127.0.0.1:$PORT$TARGET_PATH" -- "cpu-$TARGET" "$TARGET_KIND" backoff \
    > "$WORK/wrk.txt" 2>&1 &
load=$!
sleep 2
read -r c1 m1 < <(writer)
read -r busy1 idle1 < <(machine)
threads > "$WORK/threads1"
sleep 5
read -r c2 m2 < <(writer)
read -r busy2 idle2 < <(machine)
threads > "$WORK/threads2"
wait "$load" || fail "wrk failed: $(cat "$WORK/wrk.txt")"

hz=$(getconf CLK_TCK)
rate=$(awk '$1 == "SUMMARY" {printf "%.0f", ($2 - $4) / ($3 / 1e6)}' "$WORK/wrk.txt")
[[ "$rate" =~ ^[0-9]+$ && "$rate" -gt 0 ]] || fail "no summary from wrk: $(cat "$WORK/wrk.txt")"
echo "bench-cpu: $TARGET, wrk -t2 -c32 for ${SECS}s on $(nproc) cores, data in ${DATA_PARENT:-/tmp}"
printf 'acknowledged      %s requests/s (2xx)\n' "$rate"
per_thread=$(awk -v hz="$hz" 'NR == FNR {before[$1] += $2; next} {after[$1] += $2}
    END {for (n in after) {d = (after[n] - before[n]) / hz / 5; total += d
             if (d > 0.005) printf "  thread %-16s %.2f cores\n", n, d}
         printf "daemon            %.2f cores\n", total}' "$WORK/threads1" "$WORK/threads2")
echo "$per_thread" | tail -1
echo "$per_thread" | sed '$d'
cores=$(echo "$per_thread" | tail -1 | awk '{print $2}')
awk -v c="$cores" -v r="$rate" 'BEGIN {printf "daemon CPU        %.1f us per acknowledged request\n", c * 1e6 / r}'
awk -v b="$((busy2 - busy1))" -v i="$((idle2 - idle1))" 'BEGIN {printf "machine idle      %.0f %%\n", 100 * i / (b + i)}'
writer_cores=$(awk -v hz="$hz" 'NR == FNR {if ($1 == "sundial-store-w") b += $2; next} $1 == "sundial-store-w" {a += $2}
    END {printf "%.4f", (a - b) / hz / 5}' "$WORK/threads1" "$WORK/threads2")
awk -v c="$((c2 - c1))" -v m="$m1" -v n="$m2" -v w="$writer_cores" 'BEGIN {
    if (c > 0) printf "writer            %.0f commits/s, %.1f mutations per commit, %.0f us of CPU per commit\n",
        c / 5, (n - m) / c, w * 5 * 1e6 / c }'
