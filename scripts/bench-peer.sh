#!/usr/bin/env bash
# Sundial beside n8n, on the same machine, with the same load, in interleaved rounds.
#
#   n8n      n8n 2.x (from npm, into a scratch folder) with one workflow: a Webhook
#            trigger (POST /webhook/bench, answered on receipt) into a NoOp node, with
#            execution data saved for successful runs (its default). SQLite, regular
#            execution mode: n8n's out-of-the-box single instance.
#   sundial  `sundial serve` on its embedded default (redb): a trigger on the event type
#            `bench.peer` starting a task of the bundled echo plugin; POST /v1/events.
#
# The same wrk load (threads, connections, length; one POST with a small JSON body per
# request, a fresh id each; a thread that is answered 429 or 503 waits 20 ms before
# its next request) goes to each. Counted afterwards, once the backlog has
# drained (at most 120 s): executions completed (n8n: rows of execution_entity with
# status success; Sundial: sundial_runs_finished_total{status="succeeded"}), divided by
# the time from the start of the load to the last completion. Also printed: wrk's
# acknowledgement latency (p50/p99) and the peak RSS of each process tree, sampled
# every 0.2 s (n8n's includes its task-runner child, which 2.x always starts). Then the
# medians and the ratios.
#
# The acknowledgements differ: n8n answers on receipt (`responseMode: onReceived`) and
# runs the workflow afterwards; Sundial answers once the event and the run it starts are
# committed to disk. Sundial also refuses work past `max_queued_runs` (10 000 waiting
# runs): events past it are stored but start nothing, counted by
# sundial_events_stopped_total{reason="queue_full"}, printed with each round.
#
#   scripts/bench-peer.sh [ROUNDS] [SECONDS] [CONNECTIONS] [THREADS]
#
# Defaults: 3 rounds of 10 s, 32 connections, 2 wrk threads. Needs curl, python3, wrk,
# node/npm and a
# release build; installs wrk with apt-get and n8n with npm when missing, and says so.
# N8N_VERSION (default ^2) picks n8n; SUNDIAL_ARGS adds flags to `sundial serve`; BENCH_PEER_DIR (default target/bench-peer) keeps
# the npm install between runs. Not part of the test command.
set -euo pipefail

ROUNDS=${1:-3}
SECS=${2:-10}
CONNS=${3:-32}
THREADS=${4:-2}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=scripts/bench-lib.sh
. "$ROOT/scripts/bench-lib.sh"
BIN=${SUNDIAL_BIN:-$ROOT/target/release/sundial}
PEER_DIR=${BENCH_PEER_DIR:-$ROOT/target/bench-peer}
N8N_VERSION=${N8N_VERSION:-^2}
N8N_PORT=${N8N_PORT:-18678}
SUNDIAL_ARGS=${SUNDIAL_ARGS:-}
SUNDIAL_PORT=${SUNDIAL_PORT:-18781}
WORK=$(mktemp -d /tmp/sundial-bench-peer.XXXXXX)
PID=
stop() {
    if [ -n "$PID" ]; then
        local children
        children=$(pgrep -P "$PID" 2>/dev/null || true)
        kill -TERM "$PID" 2>/dev/null || true
        for _ in $(seq 1 100); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$PID" $children 2>/dev/null || true
        wait "$PID" 2>/dev/null || true
    fi
    PID=
}
cleanup() {
    local rc=$?
    stop
    if [ "$rc" = 0 ]; then rm -rf "$WORK"; else echo "bench-peer: logs kept in $WORK" >&2; fi
}
trap cleanup EXIT
fail() { echo "bench-peer: $*" >&2; exit 1; }

if ! command -v wrk >/dev/null; then
    echo "bench-peer: installing wrk with apt-get (Debian package)" >&2
    SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
    $SUDO apt-get update -qq && $SUDO apt-get install -y -qq wrk >/dev/null
fi
if [ ! -x "$BIN" ]; then
    echo "bench-peer: building the release binary (cargo build --release -p sundial)" >&2
    (cd "$ROOT" && cargo build --release -q -p sundial)
fi
N8N=$PEER_DIR/n8n/node_modules/.bin/n8n
if [ ! -x "$N8N" ]; then
    # n8n's xlsx dependency is a tarball outside the npm registry: pin the registry's
    # last release instead.
    echo "bench-peer: installing n8n@$N8N_VERSION with npm into $PEER_DIR/n8n (a few minutes)" >&2
    mkdir -p "$PEER_DIR/n8n"
    cat > "$PEER_DIR/n8n/package.json" <<EOF
{
  "name": "sundial-bench-peer",
  "private": true,
  "dependencies": { "n8n": "$N8N_VERSION" },
  "overrides": { "xlsx": "0.18.5" }
}
EOF
    (cd "$PEER_DIR/n8n" && npm install --no-audit --no-fund --loglevel=error >&2)
fi

# Peak RSS in MiB of the process tree under $1, sampled until the file $2 exists.
peak_rss() {
    local peak=0 now
    while [ ! -e "$2" ]; do
        now=$(for p in $1 $(pgrep -P "$1" 2>/dev/null) $(pgrep -P "$(pgrep -P "$1" 2>/dev/null | tr '\n' ',' | sed 's/,$//')" 2>/dev/null); do
            awk '/VmRSS/ {print $2}' "/proc/$p/status" 2>/dev/null
        done | awk '{s += $1} END {printf "%d", s / 1024}')
        [ "${now:-0}" -gt "$peak" ] && peak=$now
        sleep 0.2
    done
    echo "$peak" > "$2.rss"
}

wait_http() { # URL
    for _ in $(seq 1 600); do
        curl -s -o /dev/null "$1" && return 0
        sleep 0.2
    done
    echo "bench-peer: $1 did not answer" >&2
    return 1
}

# Completed executions once the count has not moved for 3 s (at most 120 s), and when
# it last moved.
drain() { # COUNT_FUNCTION START_NS
    local last=-1 t_last=$2 n deadline=$(($(date +%s) + 120))
    while :; do
        n=$($1)
        if [ "$n" != "$last" ]; then
            last=$n; t_last=$(date +%s%N)
        elif [ $(($(date +%s%N) - t_last)) -ge 3000000000 ]; then
            break
        fi
        if [ "$(date +%s)" -ge "$deadline" ]; then
            echo "bench-peer: still completing after 120 s; counted what was done" >&2
            break
        fi
        sleep 0.1
    done
    echo "$last $t_last"
}

n8n_count() {
    python3 - "$WORK/n8n/.n8n/database.sqlite" <<'EOF'
import sqlite3, sys
db = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True, timeout=5)
print(db.execute("SELECT COUNT(*) FROM execution_entity WHERE status = 'success'").fetchone()[0])
EOF
}
sundial_dropped() {
    curl -s -H "authorization: Bearer $TOKEN" "http://127.0.0.1:$SUNDIAL_PORT/metrics" |
        awk '/^sundial_events_stopped_total\{reason="queue_full"\}/ {print $2; f=1} END {if (!f) print 0}'
}
sundial_count() {
    curl -s -H "authorization: Bearer $TOKEN" "http://127.0.0.1:$SUNDIAL_PORT/metrics" |
        awk '/^sundial_runs_finished_total\{status="succeeded"\}/ {print $2; f=1} END {if (!f) print 0}'
}

start_n8n() {
    rm -rf "$WORK/n8n"; mkdir -p "$WORK/n8n"
    cat > "$WORK/workflow.json" <<'EOF'
[{
  "id": "benchpeer000001",
  "name": "bench",
  "active": true,
  "nodes": [
    {"id": "a1", "name": "Webhook", "type": "n8n-nodes-base.webhook", "typeVersion": 2,
     "position": [0, 0], "webhookId": "7f8c1c52-0d3a-4b39-9c55-3d1f0c1e0001",
     "parameters": {"httpMethod": "POST", "path": "bench", "responseMode": "onReceived", "options": {}}},
    {"id": "a2", "name": "NoOp", "type": "n8n-nodes-base.noOp", "typeVersion": 1,
     "position": [200, 0], "parameters": {}}
  ],
  "connections": {"Webhook": {"main": [[{"node": "NoOp", "type": "main", "index": 0}]]}},
  "settings": {"saveDataSuccessExecution": "all", "saveManualExecutions": false},
  "pinData": {}
}]
EOF
    export N8N_USER_FOLDER=$WORK/n8n N8N_PORT N8N_LISTEN_ADDRESS=127.0.0.1 \
        N8N_DIAGNOSTICS_ENABLED=false N8N_PERSONALIZATION_ENABLED=false \
        N8N_VERSION_NOTIFICATIONS_ENABLED=false N8N_SECURE_COOKIE=false \
        N8N_ENFORCE_SETTINGS_FILE_PERMISSIONS=false \
        EXECUTIONS_DATA_SAVE_ON_SUCCESS=all N8N_LOG_LEVEL=warn
    "$N8N" import:workflow --input="$WORK/workflow.json" > "$WORK/n8n-import.log" 2>&1
    # n8n 2.x imports workflows inactive: publish (activate) it. The webhook probe
    # below fails the run when this did not work.
    "$N8N" publish:workflow --id=benchpeer000001 >> "$WORK/n8n-import.log" 2>&1 || true
    "$N8N" start > "$WORK/n8n.log" 2>&1 &
    PID=$!
    wait_http "http://127.0.0.1:$N8N_PORT/healthz"
    # The webhook answers once the workflow is active.
    for _ in $(seq 1 300); do
        code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'content-type: application/json' \
            -d '{}' "http://127.0.0.1:$N8N_PORT/webhook/bench")
        [ "$code" = 200 ] && return 0
        sleep 0.2
    done
    fail "the n8n webhook never answered 200 (see $WORK/n8n.log, $WORK/n8n-import.log)"
}

start_sundial() {
    rm -rf "$WORK/data"
    # shellcheck disable=SC2086
    "$BIN" serve --data "$WORK/data" --listen "127.0.0.1:$SUNDIAL_PORT" $SUNDIAL_ARGS > "$WORK/sundial.log" 2>&1 &
    PID=$!
    wait_http "http://127.0.0.1:$SUNDIAL_PORT/healthz"
    TOKEN=$(cat "$WORK/data/admin.token")
    local api=(-sf -H "authorization: Bearer $TOKEN" -H 'content-type: application/json')
    curl "${api[@]}" -X POST "http://127.0.0.1:$SUNDIAL_PORT/v1/tasks" \
        -d '{"name": "bench", "plugin": "echo"}' >/dev/null
    curl "${api[@]}" -X POST "http://127.0.0.1:$SUNDIAL_PORT/v1/triggers" \
        -d '{"name": "bench", "on": {"type": "bench.peer"}, "targets": [{"task": "bench"}]}' >/dev/null
}

# One measured round against a started peer:
# "EXEC_PER_S P50 P99 RSS_MIB NOT_2XX".
measure() { # NAME URL COUNT_FUNCTION ROUND
    local before start out p50 p99 total bad done_n t_end rate
    before=$($3)
    rm -f "$WORK/stop"
    peak_rss "$PID" "$WORK/stop" &
    local sampler=$!
    start=$(date +%s%N)
    out=$(wrk -t"$THREADS" -c"$CONNS" -d"${SECS}s" --latency -s "$POST_LUA" \
        -H "authorization: Bearer ${TOKEN:-none}" -H 'content-type: application/json' \
        "$2" -- "$1$4" bench.peer backoff 2>&1) || { touch "$WORK/stop"; fail "wrk against $1 failed: $out"; }
    echo "$out" > "$WORK/$1-$4.txt"
    read -r done_n t_end < <(drain "$3" "$start")
    touch "$WORK/stop"; wait "$sampler"
    p50=$(echo "$out" | awk '$1 == "50%" {print $2}')
    p99=$(echo "$out" | awk '$1 == "99%" {print $2}')
    read -r total bad < <(echo "$out" | awk '$1 == "SUMMARY" {print $2, $4}')
    [[ "$total" =~ ^[0-9]+$ && "$done_n" =~ ^[0-9]+$ && "$before" =~ ^[0-9]+$ ]] ||
        fail "no figures from $1 (wrk: $out; completed: $done_n, before: $before)"
    rate=$(awk -v n="$((done_n - before))" -v a="$start" -v b="$t_end" 'BEGIN {printf "%.0f", n / ((b - a) / 1e9)}')
    echo "$rate ${p50:-?} ${p99:-?} $(cat "$WORK/stop.rss") $bad"
}

echo "bench-peer: $ROUNDS rounds of $SECS s, wrk -t$THREADS -c$CONNS, on $(nproc) cores; load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "n8n $("$N8N" --version 2>/dev/null | tail -1), sundial $("$BIN" --version)"
declare -A rate rss
for r in $(seq 1 "$ROUNDS"); do
    for peer in n8n sundial; do
        if [ "$peer" = n8n ]; then
            start_n8n
            res=$(measure n8n "http://127.0.0.1:$N8N_PORT/webhook/bench" n8n_count "$r")
        else
            start_sundial
            res=$(measure sundial "http://127.0.0.1:$SUNDIAL_PORT/v1/events" sundial_count "$r")
            res="$res $(sundial_dropped) events refused for a full queue"
        fi
        stop
        set -- $res
        [ $# -ge 5 ] || fail "unexpected result from $peer: $res"
        rate[$peer]="${rate[$peer]:-} $1"
        rss[$peer]="${rss[$peer]:-} $4"
        printf 'round %d  %-8s %7s executions/s  ack p50 %-8s p99 %-8s  peak RSS %5s MiB  non-2xx %s %s\n' \
            "$r" "$peer" "$1" "$2" "$3" "$4" "$5" "${*:6}"
    done
done

rn=$(echo "${rate[n8n]}" | median); rs=$(echo "${rate[sundial]}" | median)
mn=$(echo "${rss[n8n]}" | median); ms=$(echo "${rss[sundial]}" | median)
echo
printf 'median  n8n      %s executions/s (%s), peak RSS %s MiB\n' "$rn" "$(echo "${rate[n8n]}" | spread)" "$mn"
printf 'median  sundial  %s executions/s (%s), peak RSS %s MiB\n' "$rs" "$(echo "${rate[sundial]}" | spread)" "$ms"
printf 'sundial/n8n: %sx the executions/s, %s of the memory\n' \
    "$(awk -v a="$rs" -v b="$rn" 'BEGIN {printf "%.1f", a / b}')" \
    "$(awk -v a="$ms" -v b="$mn" 'BEGIN {printf "1/%.1f", b / a}')"
