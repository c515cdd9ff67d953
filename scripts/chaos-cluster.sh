#!/usr/bin/env bash
# The cluster chaos run (docs/RELIABILITY.md): three nodes on a PostgreSQL server of
# their own (Debian's initdb/pg_ctl), mixed load, a random node SIGKILLed every KILL_S
# seconds and PostgreSQL crashed and restarted every PG_S seconds, for MINUTES minutes;
# then every invariant is checked. Defaults: 10 minutes, 5 s, 60 s.
#   scripts/chaos-cluster.sh [MINUTES] [KILL_S] [PG_S]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p sundial
exec cargo run --release -p sundial-tests --example chaos_cluster -- "${1:-10}" "${2:-5}" "${3:-60}"
