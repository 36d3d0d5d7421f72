#!/usr/bin/env bash
# A single-node Slurm cluster on this machine, for CI and for trying the cluster profile locally.
#
#   scripts/slurm/local_cluster.sh start    install slurm-wlm + munge if missing, start munged,
#                                           slurmctld and slurmd as root; prints `export SLURM_CONF=...`
#   scripts/slurm/local_cluster.sh status   sinfo / squeue
#   scripts/slurm/local_cluster.sh stop     stop only the daemons this script started (by PID)
#
# No systemd, no cgroups (proctrack/linuxproc, task/none). Stand-in GPUs: Slurm 22.05 rejects a GPU
# gres entry without device files, so gres.conf points at stand-in files under the state folder;
# `--gpus=1` jobs then schedule (they get no real GPU: the code falls back to the CPU).
# The job-step executor of snakemake-executor-plugin-slurm strips SLURM_* variables (SLURM_CONF
# too) before its nested `srun`, so srun must find the config at Slurm's default path: `start`
# links /etc/slurm/slurm.conf to ours when that path is free, and `stop` removes only that link.
# No slurmdbd: status queries use squeue, so MinJobAge is set well above 3x the executor plugin's
# first status-check delay (see slurm/config.yaml).
set -euo pipefail

STATE=${SAN_SLURM_DIR:-/tmp/san-slurm}
HOST=$(hostname -s)
CPUS=$(nproc)
MEM_MB=$(awk '/MemTotal/ {print int($2 / 1024 * 0.9)}' /proc/meminfo)
GPUS=${SAN_SLURM_GPUS:-2}
SYSTEM_CONF=/etc/slurm/slurm.conf
MIN_JOB_AGE=${SAN_SLURM_MIN_JOB_AGE:-7200}

log() { echo "[local_cluster] $*" >&2; }

install_packages() {
  if command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v munged >/dev/null; then
    return
  fi
  log "installing slurm-wlm and munge (Debian packages)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends slurm-wlm munge >/dev/null
}

write_config() {
  mkdir -p "$STATE"/{munge,spool/ctld,spool/d,log,run,dev}
  chmod 700 "$STATE/munge"
  [ -f "$STATE/munge/munge.key" ] || { dd if=/dev/urandom bs=1 count=1024 of="$STATE/munge/munge.key" status=none; chmod 400 "$STATE/munge/munge.key"; }
  local gres_files=""
  for i in $(seq 0 $((GPUS - 1))); do
    touch "$STATE/dev/gpu$i"
    gres_files="$gres_files$STATE/dev/gpu$i,"
  done
  cat >"$STATE/gres.conf" <<EOF
NodeName=$HOST Name=gpu File=$STATE/dev/gpu[0-$((GPUS - 1))]
EOF
  cat >"$STATE/slurm.conf" <<EOF
ClusterName=san-local
SlurmctldHost=$HOST
AuthType=auth/munge
AuthInfo=socket=$STATE/munge/munge.socket
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
SlurmctldPort=${SAN_SLURM_CTLD_PORT:-16817}
SlurmdPort=${SAN_SLURM_D_PORT:-16818}
StateSaveLocation=$STATE/spool/ctld
SlurmdSpoolDir=$STATE/spool/d
SlurmctldPidFile=$STATE/run/slurmctld.pid
SlurmdPidFile=$STATE/run/slurmd.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
GresTypes=gpu
MpiDefault=none
ReturnToService=2
MinJobAge=$MIN_JOB_AGE
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=2
InactiveLimit=0
KillWait=5
Waittime=0
NodeName=$HOST CPUs=$CPUS RealMemory=$MEM_MB Gres=gpu:$GPUS State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
}

pid_alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

start() {
  install_packages
  write_config
  export SLURM_CONF="$STATE/slurm.conf"
  mkdir -p /etc/slurm
  if [ ! -e "$SYSTEM_CONF" ] || [ -L "$SYSTEM_CONF" ]; then
    ln -sfn "$SLURM_CONF" "$SYSTEM_CONF"
  elif ! cmp -s "$SYSTEM_CONF" "$SLURM_CONF"; then
    log "warning: $SYSTEM_CONF exists and is not ours; nested srun calls will read it"
  fi
  if ! pid_alive "$STATE/run/munged.pid"; then
    munged --force --key-file="$STATE/munge/munge.key" --socket="$STATE/munge/munge.socket" \
      --pid-file="$STATE/run/munged.pid" --log-file="$STATE/log/munged.log" --seed-file="$STATE/munge/seed"
  fi
  if ! pid_alive "$STATE/run/slurmctld.pid"; then
    slurmctld -i -f "$SLURM_CONF"
  fi
  if ! pid_alive "$STATE/run/slurmd.pid"; then
    slurmd -f "$SLURM_CONF"
  fi
  for _ in $(seq 1 60); do
    if timeout 5 sinfo -h -o '%T' 2>/dev/null | grep -qE '^(idle|mixed|allocated)'; then
      log "cluster up: $(timeout 5 sinfo -h -o '%P %D %T %C %G')"
      echo "export SLURM_CONF=$SLURM_CONF"
      return 0
    fi
    timeout 5 scontrol update nodename="$HOST" state=resume >/dev/null 2>&1 || true
    sleep 1
  done
  log "the node did not become idle; logs in $STATE/log"
  tail -n 20 "$STATE"/log/*.log >&2 || true
  return 1
}

stop() {
  for name in slurmd slurmctld munged; do
    local pidfile="$STATE/run/$name.pid"
    if pid_alive "$pidfile"; then
      local pid
      pid=$(cat "$pidfile")
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
      kill -9 "$pid" 2>/dev/null || true
      log "stopped $name (pid $pid)"
    fi
    rm -f "$pidfile"
  done
  if [ -L "$SYSTEM_CONF" ] && [ "$(readlink "$SYSTEM_CONF")" = "$STATE/slurm.conf" ]; then
    rm -f "$SYSTEM_CONF"
  fi
}

status() {
  export SLURM_CONF="$STATE/slurm.conf"
  timeout 5 sinfo || true
  timeout 5 squeue || true
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
