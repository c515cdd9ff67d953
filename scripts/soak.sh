#!/usr/bin/env bash
# Soak: a steady mixed load against the release daemon for a bounded time (default 600 s),
# sampled every 5 s into docs/soak.csv, then plotted into docs/soak.png.
#
#   scripts/soak.sh          # 10 minutes
#   scripts/soak.sh 60       # one minute
#
# The load is described in tests/examples/soak.rs. Plotting needs python3 (a venv with
# matplotlib is created in target/plot-venv).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-600}"
cargo build --release -p sundial
cargo build --release -p sundial-tests --example soak
target/release/examples/soak "$seconds" docs/soak.csv | tee target/soak.log
venv=target/plot-venv
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import matplotlib" 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet matplotlib
fi
"$venv/bin/python" scripts/plot_soak.py docs/soak.csv docs/soak.png
