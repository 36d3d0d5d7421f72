#!/usr/bin/env bash
# The demo DAG through a real Slurm scheduler: start a single-node cluster, run
# `snakemake --profile slurm`, check that every job went through sbatch and completed, and that a
# job failing on its first attempt (SAN_FAIL_FIRST_ATTEMPT) was resubmitted with more memory.
# Stops only the daemons it started. Hard time-out with SIGKILL so CI never hangs.
#
#   .ci/slurm_demo.sh [snakemake targets...]      (default: the whole demo DAG)
set -euo pipefail
cd "$(dirname "$0")/.."
export SAN_SLURM_DIR=${SAN_SLURM_DIR:-$(mktemp -d /tmp/san-slurm.XXXXXX)}
FAULT_RULE=${FAULT_RULE:-make_tables}
LIMIT_S=${SLURM_DEMO_LIMIT_S:-2700}
log=results/logs/slurm_demo.log
mkdir -p results/logs

cleanup() {
  [ -n "${SLURM_CONF:-}" ] && timeout -s KILL 20 scancel --user "$(id -un)" >/dev/null 2>&1 || true
  scripts/slurm/local_cluster.sh stop || true
}
trap cleanup EXIT
eval "$(timeout -s KILL 300 scripts/slurm/local_cluster.sh start)"

export SAN_FAIL_FIRST_ATTEMPT=$FAULT_RULE
status=0
timeout -s KILL "$LIMIT_S" .venv/bin/snakemake --profile slurm \
  --configfile config/config.yaml config/slurm_local.yaml \
  --slurm-no-account --slurm-init-seconds-before-status-checks 5 --seconds-between-status-checks 5 \
  "$@" >"$log" 2>&1 || status=$?
tail -n 40 "$log"
[ "$status" -eq 0 ] || { echo "snakemake under Slurm failed (exit $status); see $log and results/logs/slurm/"; exit 1; }

.venv/bin/python .ci/check_slurm_run.py "$log" --fault-rule "$FAULT_RULE"
