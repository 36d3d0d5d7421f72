#!/usr/bin/env bash
# GPU check of the paper preset's costs (see benchmarks/gpu_check.py for what it measures).
#
#   bash benchmarks/gpu_check.sh                      # on a GPU machine: results/bench/gpu_check.json
#   bash benchmarks/gpu_check.sh --dry-run            # same code path at tiny sizes, on the CPU (CI)
#   bash benchmarks/gpu_check.sh --out FILE [--scene FERN_DIR] [--nerf-seconds S]
#
# Installs nothing: it runs the checkout's `san` with the Python in $PYTHON (default: .venv/bin/python
# when present, else python3), which must already have torch and segment-anything. Exit status 1
# when any section failed (the JSON names it). Under 8 minutes on one H100/H200-class GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${PYTHON:-}" ]; then
  if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
out=results/bench/gpu_check.json
args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out="$2"; shift 2 ;;
    --dry-run) out=${out/gpu_check.json/gpu_check_dry.json}; args+=(--dry-run --device cpu); shift ;;
    *) args+=("$1"); shift ;;
  esac
done
mkdir -p "$(dirname "$out")"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
exec "$PYTHON" benchmarks/gpu_check.py --out "$out" "${args[@]}"
