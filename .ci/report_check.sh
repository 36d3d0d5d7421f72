#!/usr/bin/env bash
# The Snakemake report of the demo run that .ci/slurm_demo.sh just made: build it, check captions
# and params (.ci/check_report.py), and screenshot it in headless Chromium for the README.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p results/ci
.venv/bin/snakemake --configfile config/config.yaml config/slurm_local.yaml --report results/ci/report.html
.venv/bin/python .ci/check_report.py results/ci/report.html
profile=$(mktemp -d /tmp/san-chromium.XXXXXX)
timeout -s KILL 120 chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync --user-data-dir="$profile" \
  --window-size=1400,1000 --virtual-time-budget=15000 --screenshot="$PWD/results/ci/report.png" \
  "file://$PWD/results/ci/report.html" >/dev/null 2>&1
rm -rf "$profile"
test -s results/ci/report.png
echo "report: results/ci/report.html, screenshot results/ci/report.png"
