#!/usr/bin/env bash
# API robustness: schemathesis (from PyPI) against the daemon's own /openapi.json, once
# with a token of each role (admin, operator, viewer, ingest). Every check is on: no 5xx,
# statuses and bodies as the spec says, bad input refused. The daemon must survive the
# whole run; its log is searched for panics. scripts/schemathesis.toml lists the few
# operations whose bodies carry a language JSON Schema cannot describe (rules, filters,
# components, URLs): there a 400 naming the field may answer schema-valid input.
#
#   scripts/schemathesis.sh          # 100 examples per operation and role
#   scripts/schemathesis.sh 10       # a short bounded run
#
# Needs python3 (a venv with schemathesis is created in target/schemathesis-venv).
# Reports (JUnit XML) land in target/schemathesis/ROLE/. One worker: with two, the
# coverage phase sometimes dies inside schemathesis itself (a Python AST SystemError).
set -euo pipefail
cd "$(dirname "$0")/.."
examples="${1:-100}"
port="${PORT:-17781}"
venv=target/schemathesis-venv
if [ ! -x "$venv/bin/schemathesis" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet schemathesis
fi
cargo build --release -p sundial
# Each role gets a fresh daemon: the admin run's stateful phase creates and revokes
# tokens, which must not leak into the other roles' runs.
status=0
for role in admin operator viewer ingest; do
  data="$(mktemp -d)"
  target/release/sundial serve --data "$data" --listen "127.0.0.1:$port" 2>"$data/daemon.log" &
  pid=$!
  for _ in $(seq 100); do
    grep -q "sundial listening" "$data/daemon.log" 2>/dev/null && break
    sleep 0.1
  done
  token="$(cat "$data/admin.token")"
  # The document is read with the admin token: an ingest token may not read it.
  spec="target/schemathesis/openapi.json"
  mkdir -p target/schemathesis
  curl -sf "http://127.0.0.1:$port/openapi.json" -H "authorization: Bearer $token" -o "$spec"
  if [ "$role" != admin ]; then
    token="$(curl -sf -X POST "http://127.0.0.1:$port/v1/tokens" -H "authorization: Bearer $token" \
      -H 'content-type: application/json' -d "{\"name\": \"st-$role\", \"role\": \"$role\"}" |
      python3 -c 'import json,sys; print(json.load(sys.stdin)["secret"])')"
  fi
  echo "== schemathesis as $role ($examples examples per operation)"
  mkdir -p "target/schemathesis/$role"
  if ! "$venv/bin/schemathesis" --config-file scripts/schemathesis.toml run "$spec" --url "http://127.0.0.1:$port" \
      --header "Authorization: Bearer $token" \
      --checks all --max-examples "$examples" --workers 1 \
      --report junit --report-dir "target/schemathesis/$role"; then
    status=1
  fi
  if ! kill -0 "$pid"; then
    echo "the daemon died during the $role run"
    status=1
  fi
  if grep -n "panicked" "$data/daemon.log"; then
    echo "the daemon panicked during the $role run"
    status=1
  fi
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  rm -rf "$data"
done
exit "$status"
