#!/usr/bin/env bash
# Stops the local development cluster started by up.sh: every process with a pid file in
# STATE_DIR/pids (so anything else the Makefile starts, such as the manager, can drop its
# pid file there too). --purge also deletes STATE_DIR (certs, etcd data, registry, logs).
#
# usage: down.sh [STATE_DIR] [--purge]     (STATE_DIR defaults to bin/dev)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
state=$root/bin/dev purge=false
for a in "$@"; do
  case $a in
    --purge) purge=true ;;
    -*) echo "usage: $0 [STATE_DIR] [--purge]" >&2; exit 2 ;;
    *) state=$a ;;
  esac
done
pids=$state/pids
# The real node first: its pods, mounts, bridge and iptables rules (needs the API server up).
"$root/e2e/cluster/node-down.sh" "$state"

# alive PID: an exited process stays a zombie until init reaps it, so ask ps, not `kill -0`.
alive() {
  local stat
  stat=$(ps -o stat= -p "$1") && [[ $stat != Z* ]]
}
# ours FILE: the pid in FILE is alive and started before FILE was written, so it is not an
# unrelated process that got the same pid after a reboot.
ours() {
  local stat etimes
  read -r stat etimes < <(ps -o stat=,etimes= -p "$(cat "$1")") || return 1
  [[ $stat != Z* ]] && (($(date +%s) - etimes <= $(stat -c %Y "$1") + 1))
}

# Clients before servers, etcd last, so nothing logs a storm of connection errors.
order=(manager kwok kube-scheduler kube-controller-manager kube-apiserver registry etcd)
names=()
for f in "$pids"/*.pid; do
  [ -e "$f" ] || continue
  n=$(basename "$f" .pid)
  [[ " ${order[*]} " == *" $n "* ]] || names+=("$n")
done
for n in "${order[@]}"; do [ -e "$pids/$n.pid" ] && names+=("$n"); done

for n in "${names[@]}"; do
  pid=$(cat "$pids/$n.pid")
  if ours "$pids/$n.pid" && kill "$pid" 2>/dev/null; then
    # Up to 10 s to exit cleanly (etcd flushes), then force.
    for _ in $(seq 50); do alive "$pid" || break; sleep 0.2; done
    if alive "$pid"; then
      echo "$n (pid $pid) did not stop; killing it" >&2
      kill -9 "$pid" 2>/dev/null || true
    fi
    echo "stopped $n"
  fi
  rm -f "$pids/$n.pid"
done

if $purge; then
  rm -rf "$state"
  echo "removed $state"
fi
