# Shared by the scripts/bench-*.sh scripts (sourced). The functions below that say so
# need the caller's `fail MESSAGE` (print and exit).

# The median and the range ("LO-HI") of the numbers on stdin, space-separated.
median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
spread() { tr ' ' '\n' | grep -v '^$' | sort -n | awk 'NR==1 {lo=$1} {hi=$1} END {print lo "-" hi}'; }

# wrk's request generator (see the file).
POST_LUA=$(dirname "${BASH_SOURCE[0]}")/bench-post.lua

# Install Debian's wrk with apt-get when it is missing, saying so as NAME.
need_wrk() { # NAME
    command -v wrk >/dev/null && return 0
    echo "$1: installing wrk with apt-get (Debian package)" >&2
    local sudo=; [ "$(id -u)" = 0 ] || sudo=sudo
    $sudo apt-get update -qq && $sudo apt-get install -y -qq wrk >/dev/null
}

# At exit (`trap 'bench_cleanup NAME' EXIT`): stop the daemon DAEMON (if set) and
# remove WORK, or keep WORK and say so as NAME when the script failed.
bench_cleanup() { # NAME
    local rc=$?
    [ -n "$DAEMON" ] && kill "$DAEMON" 2>/dev/null || true
    wait 2>/dev/null || true
    if [ "$rc" = 0 ]; then rm -rf "$WORK"; else echo "$1: logs kept in $WORK" >&2; fi
}

# Build the release binary BIN when it is missing, saying so as NAME.
need_release() { # NAME BIN ROOT
    [ -x "$2" ] && return 0
    echo "$1: building the release binary (cargo build --release -p sundial)" >&2
    (cd "$3" && cargo build --release -q -p sundial)
}

# What a load of TARGET posts: sets TARGET_PATH and TARGET_KIND (the event type) for
#   events  POST /v1/events, a CloudEvent matching no trigger;
#   runs    POST /v1/tasks/bench/run, a manual run of the bundled echo plugin;
#   peer    POST /v1/events of type bench.peer, which a trigger turns into an echo run.
bench_target() { # TARGET (uses fail)
    case $1 in
        events) TARGET_PATH=/v1/events TARGET_KIND=bench.limit ;;
        runs) TARGET_PATH=/v1/tasks/bench/run TARGET_KIND=unused ;;
        peer) TARGET_PATH=/v1/events TARGET_KIND=bench.peer ;;
        *) fail "unknown target $1 (events, runs or peer)" ;;
    esac
}

# Start BIN serving DATA on 127.0.0.1:PORT (its output in LOG) and set it up for TARGET:
# the `bench` task of echo, and for peer the trigger on bench.peer. Sets DAEMON (its
# pid) and TOKEN (the admin token).
start_bench_daemon() { # BIN DATA PORT LOG TARGET (uses fail)
    "$1" serve --data "$2" --listen "127.0.0.1:$3" > "$4" 2>&1 &
    DAEMON=$!
    for _ in $(seq 1 300); do
        curl -sf "http://127.0.0.1:$3/healthz" >/dev/null 2>&1 && break
        sleep 0.1
    done
    curl -sf "http://127.0.0.1:$3/healthz" >/dev/null || fail "the daemon did not start (see $4)"
    TOKEN=$(cat "$2/admin.token")
    local api=(-sf -X POST -H "authorization: Bearer $TOKEN" -H 'content-type: application/json')
    curl "${api[@]}" "http://127.0.0.1:$3/v1/tasks" -d '{"name": "bench", "plugin": "echo"}' >/dev/null ||
        fail "cannot create the task"
    if [ "$5" = peer ]; then
        curl "${api[@]}" "http://127.0.0.1:$3/v1/triggers" \
            -d '{"name": "bench", "on": {"type": "bench.peer"}, "targets": [{"task": "bench"}]}' >/dev/null ||
            fail "cannot create the trigger"
    fi
}
