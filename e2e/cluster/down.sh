#!/usr/bin/env bash
# Stops the local development cluster started by up.sh: every process with a pid file in
# STATE_DIR/pids (so anything else the Makefile starts, such as the manager, can drop its
# pid file there too). --purge also deletes STATE_DIR (certs, etcd data, registry, logs).
#
# usage: down.sh [STATE_DIR] [--purge]     (STATE_DIR defaults to bin/dev)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=e2e/cluster/lib.sh
. "$root/e2e/cluster/lib.sh"
state=$root/bin/dev purge=false
for a in "$@"; do
  case $a in
    --purge) purge=true ;;
    -*) echo "usage: $0 [STATE_DIR] [--purge]" >&2; exit 2 ;;
    *) state=$a ;;
  esac
done
pids=$state/pids

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
  if stop "$n" "$pids/$n.pid"; then echo "stopped $n"; fi
  rm -f "$pids/$n.pid"
done

if $purge; then
  rm -rf "$state"
  echo "removed $state"
fi
