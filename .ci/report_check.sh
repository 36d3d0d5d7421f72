#!/usr/bin/env bash
# The Snakemake report of the demo run that .ci/slurm_demo.sh just made: build it, check captions
# and params (.ci/check_report.py), and screenshot it in headless Chromium for the README.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p results/ci
.venv/bin/snakemake --configfile config/config.yaml config/slurm_local.yaml --report results/ci/report.html
.venv/bin/python .ci/check_report.py results/ci/report.html
.venv/bin/python .ci/screenshot_report.py results/ci/report.html results/ci/report.png
test -s results/ci/report.png
echo "report: results/ci/report.html, screenshot results/ci/report.png"
