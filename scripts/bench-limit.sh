#!/usr/bin/env bash
# How close Sundial's request paths come to what this machine can answer at all.
#
# The same wrk load (same threads, connections, length and Lua request generator, one
# POST with a JSON body per request, a fresh event id each) goes, in interleaved rounds,
# to:
#   trivial  nginx from Debian answering every request `return 202` (no logging);
#   events   Sundial's POST /v1/events (one CloudEvent per request, matching no
#            trigger: acknowledged once committed to the store);
#   runs     Sundial's POST /v1/tasks/bench/run (a manual run of the bundled echo
#            plugin: acknowledged once queued durably; runs complete meanwhile).
# It prints each round, the median of each target, and the ratios to the trivial server.
# Only 2xx answers count (manual runs past the queue limit are answered 429).
#
#   scripts/bench-limit.sh [ROUNDS] [SECONDS] [CONNECTIONS] [THREADS]
#
# Defaults: 5 rounds of 10 s, 32 connections, 2 wrk threads. Needs curl, wrk and nginx (it
# installs Debian's `wrk` and `nginx-light` with apt-get when they are missing, and
# says so) and a release build (built when missing). Not part of the test command.
set -euo pipefail

ROUNDS=${1:-5}
SECS=${2:-10}
CONNS=${3:-32}
THREADS=${4:-2}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=scripts/bench-lib.sh
. "$ROOT/scripts/bench-lib.sh"
BIN=${SUNDIAL_BIN:-$ROOT/target/release/sundial}
WORK=$(mktemp -d /tmp/sundial-bench-limit.XXXXXX)
NGINX_PORT=${NGINX_PORT:-18080}
SUNDIAL_PORT=${SUNDIAL_PORT:-18780}
PIDS=()
cleanup() {
    local rc=$?
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    [ -f "$WORK/nginx.pid" ] && kill "$(cat "$WORK/nginx.pid")" 2>/dev/null || true
    wait 2>/dev/null || true
    if [ "$rc" = 0 ]; then rm -rf "$WORK"; else echo "bench-limit: logs kept in $WORK" >&2; fi
}
trap cleanup EXIT
fail() { echo "bench-limit: $*" >&2; exit 1; }

missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || missing+=(nginx-light)
if [ ${#missing[@]} -gt 0 ]; then
    echo "bench-limit: installing ${missing[*]} with apt-get (Debian packages)" >&2
    SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
    $SUDO apt-get update -qq && $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
if [ ! -x "$BIN" ]; then
    echo "bench-limit: building the release binary (cargo build --release -p sundial)" >&2
    (cd "$ROOT" && cargo build --release -q -p sundial)
fi

# The trivial server: as many workers as cores, no logs, 202 to everything.
mkdir -p "$WORK/nginx"
cat > "$WORK/nginx.conf" <<EOF
worker_processes auto;
pid $WORK/nginx.pid;
error_log $WORK/nginx/error.log;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $WORK/nginx;
    proxy_temp_path $WORK/nginx;
    fastcgi_temp_path $WORK/nginx;
    uwsgi_temp_path $WORK/nginx;
    scgi_temp_path $WORK/nginx;
    keepalive_requests 1000000;
    server {
        listen 127.0.0.1:$NGINX_PORT;
        location / { return 202 '{"accepted":true}'; }
    }
}
EOF
"$NGINX" -c "$WORK/nginx.conf" -p "$WORK/nginx"

# Sundial on its embedded default store, in a scratch data directory.
"$BIN" serve --data "$WORK/data" --listen "127.0.0.1:$SUNDIAL_PORT" \
    > "$WORK/sundial.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 200); do
    curl -sf "http://127.0.0.1:$SUNDIAL_PORT/healthz" >/dev/null 2>&1 && break
    sleep 0.1
done
TOKEN=$(cat "$WORK/data/admin.token")
curl -sf -X POST "http://127.0.0.1:$SUNDIAL_PORT/v1/tasks" \
    -H "authorization: Bearer $TOKEN" -H 'content-type: application/json' \
    -d '{"name": "bench", "plugin": "echo"}' >/dev/null

# wrk's requests/s counting 2xx only: "REQ_PER_S NOT_2XX".
load() { # NAME URL_PATH PORT ROUND
    local out total us bad
    out=$(wrk -t"$THREADS" -c"$CONNS" -d"${SECS}s" -s "$POST_LUA" \
        -H "authorization: Bearer $TOKEN" -H 'content-type: application/json' \
        "http://127.0.0.1:$3$2" -- "$1$4" bench.limit 2>&1) || fail "wrk against $1 failed: $out"
    echo "$out" > "$WORK/$1-$4.txt"
    read -r total us bad < <(echo "$out" | awk '$1 == "SUMMARY" {print $2, $3, $4}')
    [[ "$total" =~ ^[0-9]+$ && "$us" =~ ^[0-9]+$ && "$us" -gt 0 ]] || fail "no summary from wrk against $1: $out"
    awk -v t="$total" -v b="$bad" -v us="$us" 'BEGIN {printf "%.0f %d\n", (t - b) / (us / 1e6), b}'
}

# Until Sundial has no run queued, waiting or running (so the next load, whichever
# target it is, does not share the machine with the last one's runs).
settle() {
    for _ in $(seq 1 1200); do
        busy=$(curl -s -H "authorization: Bearer $TOKEN" "http://127.0.0.1:$SUNDIAL_PORT/metrics" |
            awk '/^sundial_(run_queue_depth|run_backlog|runs_running) / {s += $2} END {print s + 0}')
        [ "$busy" = 0 ] && return 0
        sleep 0.1
    done
    echo "bench-limit: runs still busy after 120 s" >&2
}

echo "bench-limit: $ROUNDS rounds of $SECS s, wrk -t$THREADS -c$CONNS, on $(nproc) cores; load $(cut -d' ' -f1-3 /proc/loadavg)"
declare -A all
for r in $(seq 1 "$ROUNDS"); do
    for target in trivial events runs; do
        case $target in
            trivial) res=$(load trivial /v1/events "$NGINX_PORT" "$r") ;;
            events) res=$(load events /v1/events "$SUNDIAL_PORT" "$r") ;;
            runs) res=$(load runs /v1/tasks/bench/run "$SUNDIAL_PORT" "$r") ;;
        esac
        set -- $res
        [ $# = 2 ] || fail "unexpected result from $target: $res"
        all[$target]="${all[$target]:-} $1"
        printf 'round %d  %-8s %8s req/s (2xx)  non-2xx %s\n' "$r" "$target" "$1" "$2"
        settle
    done
done

t=$(echo "${all[trivial]}" | median)
e=$(echo "${all[events]}" | median)
u=$(echo "${all[runs]}" | median)
echo
printf 'median  trivial %s req/s (%s)\n' "$t" "$(echo "${all[trivial]}" | spread)"
printf 'median  events  %s req/s (%s)  = %s%% of trivial\n' "$e" "$(echo "${all[events]}" | spread)" \
    "$(awk -v a="$e" -v b="$t" 'BEGIN {printf "%.1f", 100 * a / b}')"
printf 'median  runs    %s req/s (%s)  = %s%% of trivial\n' "$u" "$(echo "${all[runs]}" | spread)" \
    "$(awk -v a="$u" -v b="$t" 'BEGIN {printf "%.1f", 100 * a / b}')"
printf 'sundial RSS at the end: %s MiB\n' "$(awk '/VmRSS/ {printf "%.0f", $2 / 1024}' "/proc/${PIDS[0]}/status")"
