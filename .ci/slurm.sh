#!/usr/bin/env bash
# Single-node Slurm for CI and local tests on Debian 12, as root, without systemd.
#   slurm.sh install   apt packages (quick no-op when already there)
#   slurm.sh start     config + munged + slurmctld + slurmd, waits for the node to be usable
#   slurm.sh stop      cancels jobs, stops the daemons; safe when nothing runs
#   slurm.sh status    sinfo/squeue
set -euo pipefail

# slurm-wlm is only a metapackage of the first three.
PKGS=(slurmctld slurmd slurm-client munge)
CONF=/etc/slurm/slurm.conf # the path the Debian build of the client commands reads
LIB=/var/lib/slurm LOG=/var/log/slurm RUN=/run/slurm
MUNGE_PID=/run/munge/munged.pid
TIMEOUT=${SLURM_START_TIMEOUT:-60}
# Slurm names the node by the short hostname (gethostname up to the first dot).
HOST=$(hostname -s)

say() { echo "slurm.sh: $*" >&2; }

# A pid file can outlive its daemon (killed machine, reused pid), and a killed daemon
# lingers as a zombie until pid 1 reaps it: check the name and that it is not a zombie.
alive() { # PIDFILE COMM
  local pid stat
  pid=$(cat "$1" 2>/dev/null) && [[ -n $pid ]] || return 1
  stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1 # "pid (comm) state ..."
  [[ $stat == *"($2) "[^Z]* ]]
}

dump_logs() {
  for f in "$LOG/slurmctld.log" "$LOG/slurmd.log" /var/log/munge/munged.log; do
    [[ -f $f ]] && { echo "--- tail $f"; tail -n 20 "$f"; }
  done >&2
  sinfo -N -l >&2 2>&1 || true
  sinfo -R >&2 2>&1 || true
}

fail() { say "$*"; dump_logs; exit 1; }

install() {
  if [[ $(dpkg-query -W -f='${db:Status-Status}\n' "${PKGS[@]}" 2>/dev/null | grep -c '^installed$') == "${#PKGS[@]}" ]]; then
    say "already installed"; return
  fi
  # The postinst scripts start no daemon here: invoke-rc.d finds no runlevel without an init.
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${PKGS[@]}" >/dev/null
}

write_conf() {
  # slurmd -C measures this machine (CPUs, sockets, cores, RealMemory): a node whose
  # config promises more than it has is drained, and without RealMemory any --mem fails.
  local node
  node=$(slurmd -C | head -n 1) || fail "slurmd -C failed"
  [[ $node == "NodeName=$HOST "* ]] || fail "unexpected slurmd -C output: $node"
  mkdir -p /etc/slurm
  # Addresses are pinned to loopback so a hostname missing from /etc/hosts cannot break it.
  cat >"$CONF.new" <<EOF
ClusterName=ci
SlurmctldHost=$HOST(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/pgid
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
# Debian has no mail program; this silences "Configured MailProg is invalid".
MailProg=/bin/true
# A node that went DOWN (e.g. slurmd restarted) comes back by itself on registration.
ReturnToService=2
# Short grace between SIGTERM and SIGKILL so scancel/stop are quick.
KillWait=5
StateSaveLocation=$LIB/slurmctld
SlurmdSpoolDir=$LIB/slurmd
SlurmctldPidFile=$RUN/slurmctld.pid
SlurmdPidFile=$RUN/slurmd.pid
SlurmctldLogFile=$LOG/slurmctld.log
SlurmdLogFile=$LOG/slurmd.log
$node NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=main Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
  # A running daemon keeps the config it read, so restart them on change (jobs survive:
  # slurmctld saves its state, slurmstepd outlives slurmd).
  if cmp -s "$CONF.new" "$CONF"; then rm "$CONF.new"; return; fi
  mv "$CONF.new" "$CONF"
  stop_pid "$RUN/slurmd.pid" slurmd
  stop_pid "$RUN/slurmctld.pid" slurmctld
}

start_munge() {
  # munged runs as the munge user and needs these dirs, which a fresh /run lacks.
  mkdir -p /run/munge /var/log/munge /var/lib/munge
  chown munge:munge /run/munge /var/log/munge /var/lib/munge
  chmod 0755 /run/munge
  if [[ ! -s /etc/munge/munge.key ]]; then
    mungekey --create --keyfile=/etc/munge/munge.key
    chown munge:munge /etc/munge/munge.key && chmod 0600 /etc/munge/munge.key
  fi
  alive "$MUNGE_PID" munged || runuser -u munge -- /usr/sbin/munged
  munge -n | unmunge >/dev/null || fail "munge round trip failed"
}

start() {
  command -v slurmctld >/dev/null || { say "not installed: run '$0 install' first"; exit 1; }
  mkdir -p "$LIB/slurmctld" "$LIB/slurmd" "$LOG" "$RUN"
  write_conf
  start_munge
  # Each daemon forks into the background and writes its pid file; skip those already up.
  alive "$RUN/slurmctld.pid" slurmctld || slurmctld || fail "slurmctld failed to start"
  alive "$RUN/slurmd.pid" slurmd || slurmd || fail "slurmd failed to start"

  local state="" t0=$SECONDS
  while ((SECONDS - t0 < TIMEOUT)); do
    # Both fork before they bind their ports, so an early exit shows only here; the grace
    # is for the child, which writes its pid file a moment after the parent returns.
    if ((SECONDS - t0 >= 2)); then
      alive "$RUN/slurmctld.pid" slurmctld || fail "slurmctld exited"
      alive "$RUN/slurmd.pid" slurmd || fail "slurmd exited"
    fi
    state=$(sinfo -h -N -n "$HOST" -o %T 2>/dev/null || true)
    # allocated/mixed: start while jobs run is fine too. A trailing '*' means not responding.
    case $state in idle | mixed | allocated | completing) say "node $HOST $state"; return ;; esac
    sleep 0.5
  done
  fail "node $HOST not usable after ${TIMEOUT}s (state: '${state:-no answer}')"
}

stop_pid() { # PIDFILE COMM: TERM, bounded wait, then KILL
  alive "$1" "$2" || { rm -f "$1"; return 0; }
  local pid i
  pid=$(cat "$1")
  kill "$pid" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do alive "$1" "$2" || break; sleep 0.2; done
  if alive "$1" "$2"; then kill -9 "$pid" 2>/dev/null || true; fi
  rm -f "$1"
}

stop() {
  # slurmstepd and job processes outlive slurmd, so let Slurm end them first (KillWait=5).
  if alive "$RUN/slurmctld.pid" slurmctld && alive "$RUN/slurmd.pid" slurmd; then
    local i
    squeue -h -o %A 2>/dev/null | xargs -r scancel 2>/dev/null || true
    for ((i = 0; i < 40; i++)); do
      [[ -z $(squeue -h -t running,completing -o %A 2>/dev/null) ]] && break
      sleep 0.5
    done
  fi
  stop_pid "$RUN/slurmd.pid" slurmd
  stop_pid "$RUN/slurmctld.pid" slurmctld
  stop_pid "$MUNGE_PID" munged
  say "stopped"
}

status() { sinfo -N -l; squeue; }

case ${1:-} in
  install | start | stop | status) "$1" ;;
  *) echo "usage: $0 install|start|stop|status" >&2; exit 2 ;;
esac
